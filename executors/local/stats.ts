/**
 * datasets_calculate_column_stats: the statistics the seed names, only those enabled per column,
 * in one scan (plus one for histograms, which need the bounds first), persisted in `_dpo.column_stats`
 * (recorded with the job, exactly once: effects.ts) and returned in the result's `columns`.
 *
 * The meanings are the shared definitions of `src/executor/column-stats.ts` (tested against its
 * reference implementation). Local choices within them:
 * - `approx_count_distinct` is EXACT here (`count(DISTINCT …)`, NaN one value): DuckDB's HyperLogLog
 *   was off by up to 35 % on a few thousand values, and an exact hash aggregate is cheap at the
 *   local data plane's sizes (it spills to the data directory beyond memory).
 * - bounds are typed: integers and decimals read as exact decimal text (numbers while safe, decimal
 *   strings beyond, decimals always strings), floating as numbers, booleans, strings by UTF-8 byte
 *   order (ENUMs as their text), dates `YYYY-MM-DD`, timestamps ISO-8601 with microseconds
 *   (`…Z` in UTC for TIMESTAMPTZ), times `HH:MM:SS[.ffffff]`; STRUCT, LIST, MAP, ARRAY and UNION
 *   columns have no bounds (null), never a JavaScript object's string form.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import type { InputOf } from '../../src/catalogue/index.ts';
import {
  type Bound,
  type ColumnKind,
  canonicalDecimal,
  finishColumnStats,
  isNumericKind,
  kindOfSqlType,
  typedBound,
} from '../../src/executor/column-stats.ts';
import { type ExecuteContext, JobError, type JobHandle } from '../../src/executor/index.ts';
import { requireDataset } from './catalog.ts';
import type { LocalConfig } from './config.ts';
import { exactlyOnce } from './effects.ts';
import { all, ident, literal, num, one, qualified, runSql } from './warehouse.ts';

/** A bound's aggregate as SQL whose JS value `typedBound` stores exactly (see the module's notes). */
function boundSql(agg: 'min' | 'max', c: string, valid: string, kind: ColumnKind, type: string): string {
  const v = `${agg}(${kind === 'string' ? `${c}::VARCHAR` : c}) FILTER (WHERE ${valid})`;
  switch (kind) {
    case 'composite':
      return 'NULL';
    case 'integer':
    case 'decimal':
      return `(${v})::VARCHAR`;
    case 'temporal':
      if (/^DATE$/.test(type)) return `strftime(${v}, '%Y-%m-%d')`;
      if (/WITH TIME ZONE|TIMESTAMPTZ/.test(type)) {
        return `strftime(timezone('UTC', ${v}), '%Y-%m-%dT%H:%M:%S.%fZ')`;
      }
      if (/^TIMESTAMP/.test(type)) return `strftime(${v}, '%Y-%m-%dT%H:%M:%S.%f')`;
      return `(${v})::VARCHAR`;
    default:
      return v;
  }
}

export async function calculateColumnStats(
  conn: DuckDBConnection,
  job: JobHandle<InputOf<'datasets_calculate_column_stats'>>,
  config: LocalConfig,
  ctx: ExecuteContext,
  /** The part of the job's effect this write is (materialize-view records its statistics apart). */
  part = '',
): Promise<unknown> {
  const { signal } = ctx;
  const ds = await requireDataset(conn, job.companyId, job.input.dataset_id);
  const described = await all(
    conn,
    `SELECT column_name, data_type FROM duckdb_columns()
      WHERE database_name = current_database() AND schema_name = ${literal(ds.schema)} AND table_name = ${literal(ds.table)}`,
  );
  const types = new Map(described.map((r) => [String(r.column_name), String(r.data_type)]));
  const missing = Object.keys(job.input.enabled_column_stats).filter((c) => !types.has(c));
  if (missing.length > 0) {
    throw new JobError('INVALID_INPUT', `no such column in dataset ${ds.datasetId}: ${missing.join(', ')}`, {
      retryable: false,
      details: { missing, columns: [...types.keys()] },
    });
  }

  // One aggregate per enabled statistic, all in a single scan; aliases are positional (c0_…).
  const selects: string[] = ['count(*) AS total'];
  const plan = Object.entries(job.input.enabled_column_stats).map(([column, spec], i) => {
    const type = types.get(column) as string;
    const kind = kindOfSqlType(type);
    const numeric = isNumericKind(kind);
    const floating = kind === 'floating';
    const c = ident(column);
    const valid = floating ? `${c} IS NOT NULL AND NOT isnan(${c})` : `${c} IS NOT NULL`;
    const on = spec.enabled_column_stats;
    const a = `c${i}`;
    const add = (stat: string, expr: string) => selects.push(`${expr} AS ${a}_${stat}`);
    if (on.null_value_count || on.completeness) add('nulls', `count(*) FILTER (WHERE ${c} IS NULL)`);
    if (on.nan_value_count) add('nans', floating ? `count(*) FILTER (WHERE isnan(${c}))` : '0');
    if (on.lower_bound || on.histogram) add('lower', boundSql('min', c, valid, kind, type));
    if (on.upper_bound || on.histogram) add('upper', boundSql('max', c, valid, kind, type));
    if (on.approx_count_distinct) add('distinct', `count(DISTINCT ${c})`);
    if (on.mean || on.standard_deviation) {
      add(
        'mean',
        numeric ? `fsum(${c}::DOUBLE) FILTER (WHERE ${valid}) / count(${c}) FILTER (WHERE ${valid})` : 'NULL',
      );
    }
    if (on.standard_deviation) add('valid', numeric ? `count(*) FILTER (WHERE ${valid})` : '0');
    return { column, alias: a, on, numeric, kind, valid, c };
  });

  const agg = await one(conn, `SELECT ${selects.join(', ')} FROM ${qualified(ds)}`).catch((err: unknown) => {
    if (signal.aborted) throw signal.reason;
    throw err;
  });
  if (!agg) throw new Error('the statistics query returned no row');
  const total = num(agg.total);
  // The sample deviation in a second pass around the first pass's mean, with compensated sums:
  // DuckDB's one-pass stddev_samp lost 6 digits on 64-bit ids (values near 5.8e18).
  const deviations = new Map<string, number | null>();
  const spread = plan.filter((p) => p.on.standard_deviation && p.numeric);
  if (spread.length > 0) {
    const parts = spread.map((p) => {
      const mean = finiteOrNull(agg[`${p.alias}_mean`]);
      return mean === null
        ? `NULL AS ${p.alias}_ss`
        : `fsum(power(${p.c}::DOUBLE - (${mean})::DOUBLE, 2)) FILTER (WHERE ${p.valid}) AS ${p.alias}_ss`;
    });
    const ss = await one(conn, `SELECT ${parts.join(', ')} FROM ${qualified(ds)}`).catch((err: unknown) => {
      if (signal.aborted) throw signal.reason;
      throw err;
    });
    for (const p of spread) {
      const n = num(agg[`${p.alias}_valid`]);
      const sum = finiteOrNull(ss?.[`${p.alias}_ss`]);
      deviations.set(p.column, n < 2 || sum === null ? null : Math.sqrt(sum / (n - 1)));
    }
  }
  const columns: Record<string, Record<string, unknown>> = {};
  for (const p of plan) {
    const get = (stat: string) => agg[`${p.alias}_${stat}`];
    const stats: Record<string, unknown> = {};
    const nulls = num(get('nulls'));
    if (p.on.value_count) stats.value_count = total;
    if (p.on.null_value_count) stats.null_value_count = nulls;
    if (p.on.nan_value_count) stats.nan_value_count = num(get('nans'));
    if (p.on.lower_bound) stats.lower_bound = bound(get('lower'), p.kind);
    if (p.on.upper_bound) stats.upper_bound = bound(get('upper'), p.kind);
    if (p.on.approx_count_distinct) stats.approx_count_distinct = num(get('distinct'));
    if (p.on.completeness) stats.completeness = total === 0 ? 1 : (total - nulls) / total;
    if (p.on.mean) stats.mean = finiteOrNull(get('mean'));
    if (p.on.standard_deviation) stats.standard_deviation = deviations.get(p.column) ?? null;
    if (p.on.histogram) {
      stats.histogram = p.numeric
        ? await histogram(
            conn,
            qualified(ds),
            p.c,
            p.valid,
            get('lower'),
            get('upper'),
            config.histogramBins,
            signal,
          )
        : [];
    }
    columns[p.column] = stats;
  }

  ctx.log.info('statistics computed', {
    table: `${ds.schema}.${ds.table}`,
    columns: plan.length,
    rows: total,
  });
  // Doubles under the 64-bit rule, checked against the result schema before anything is written.
  const finished = finishColumnStats(columns);
  return exactlyOnce(conn, job, { part, datasetId: ds.datasetId, log: ctx.log, signal }, async () => {
    for (const [column, stats] of Object.entries(finished)) {
      await conn.run(
        `INSERT OR REPLACE INTO _dpo.column_stats VALUES
           (${ds.datasetId}, ${literal(column)}, ${literal(JSON.stringify(stats))}, ${literal(job.id)}, now())`,
      );
    }
    return { type: 'datasets_calculate_column_stats', rows: total, columns: finished };
  });
}

/** Equal-width buckets over [lower, upper]; the last bucket includes `upper`. */
async function histogram(
  conn: DuckDBConnection,
  table: string,
  c: string,
  valid: string,
  lowerRaw: unknown,
  upperRaw: unknown,
  bins: number,
  signal: AbortSignal,
): Promise<Array<{ lower: number; upper: number; count: number }>> {
  if (lowerRaw === null || lowerRaw === undefined) return [];
  const lower = Number(lowerRaw);
  const upper = Number(upperRaw);
  const n = lower === upper ? 1 : bins;
  const width = (upper - lower) / n;
  const bucket = n === 1 ? '0' : `least(${n - 1}, floor((${c}::DOUBLE - ${lower}) / ${width}))::INTEGER`;
  const result = await runSql(
    conn,
    `SELECT ${bucket} AS b, count(*) AS n FROM ${table} WHERE ${valid} GROUP BY ALL ORDER BY b`,
    'histogram',
    signal,
  );
  const counts = new Map<number, number>();
  for (const [b, cnt] of await result.getRowsJS()) counts.set(num(b), num(cnt));
  return Array.from({ length: n }, (_, i) => ({
    lower: lower + i * width,
    upper: i === n - 1 ? upper : lower + (i + 1) * width,
    count: counts.get(i) ?? 0,
  }));
}

function bound(v: unknown, kind: ColumnKind): Bound {
  const b = typedBound(v, kind);
  return kind === 'decimal' && typeof b === 'string' ? canonicalDecimal(b) : b;
}

function finiteOrNull(v: unknown): number | null {
  if (v === null || v === undefined) return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}
