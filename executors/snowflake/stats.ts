/**
 * datasets_calculate_column_stats in Snowflake SQL: every requested statistic of every column in one
 * scan, plus one scan for all the histograms together (GROUPING SETS, one set per column), which need
 * the bounds first. The meanings are the one definition in src/executor/column-stats.ts (tested
 * against its reference implementation); in brief:
 * `value_count` counts every row; `null_value_count` NULLs; `nan_value_count` NaNs of float/double
 * columns (in Snowflake NaN is a FLOAT value equal to itself: `c = 'NaN'::FLOAT`), else 0; bounds are
 * min and max over non-null, non-NaN values; `approx_count_distinct` is COUNT(DISTINCT) over non-null
 * values (exact: Snowflake's APPROX_COUNT_DISTINCT, HyperLogLog, errs by ~1.6 %); `completeness` the
 * share of non-null values (1 for an empty table); `mean` and `standard_deviation` (sample) over
 * non-null, non-NaN values of numeric columns; `histogram` equal-width buckets between the bounds.
 */
import type { ColumnStat } from '../../src/catalogue/datasets.ts';
import type { InputOf } from '../../src/catalogue/index.ts';
import {
  type ColumnKind,
  isNumericKind,
  kindOfSqlType,
  typedBound,
} from '../../src/executor/column-stats.ts';
import type { Bind } from './client.ts';
import { ident } from './sql.ts';

type Enabled = Partial<Record<ColumnStat, boolean>>;

interface Planned {
  column: string;
  alias: string;
  on: Enabled;
  kind: ColumnKind;
  numeric: boolean;
  c: string;
  valid: string;
}

export interface StatsPlan {
  columns: Planned[];
  scan: string;
}

export function planStats(input: InputOf<'datasets_calculate_column_stats'>, table: string): StatsPlan {
  const selects = ['COUNT(*) AS "TOTAL"'];
  const columns = Object.entries(input.enabled_column_stats).map(([column, spec], i) => {
    const kind = kindOfSqlType(spec.data_type);
    const numeric = isNumericKind(kind);
    const floating = kind === 'floating';
    // Integers and decimals read back as text: exact beyond 2^53 and at any scale.
    const exact = (expr: string) => (kind === 'integer' || kind === 'decimal' ? `${expr}::VARCHAR` : expr);
    const c = ident(column);
    const valid = floating ? `${c} IS NOT NULL AND NOT (${c} = 'NaN'::FLOAT)` : `${c} IS NOT NULL`;
    const on = spec.enabled_column_stats;
    const alias = `C${i}`;
    const add = (stat: string, expr: string) => selects.push(`${expr} AS "${alias}_${stat}"`);
    const when = (expr: string) => `CASE WHEN ${valid} THEN ${expr} END`;
    if (on.null_value_count || on.completeness) add('NULLS', `COUNT_IF(${c} IS NULL)`);
    if (on.nan_value_count) add('NANS', floating ? `COUNT_IF(${c} = 'NaN'::FLOAT)` : '0');
    if (on.lower_bound || on.histogram) add('LOWER', exact(`MIN(${when(c)})`));
    if (on.upper_bound || on.histogram) add('UPPER', exact(`MAX(${when(c)})`));
    if (on.approx_count_distinct) add('DISTINCT', `COUNT(DISTINCT ${c})`);
    if (on.mean) add('MEAN', numeric ? `AVG(${when(`${c}::DOUBLE`)})` : 'NULL');
    if (on.standard_deviation) add('STDDEV', numeric ? `STDDEV_SAMP(${when(`${c}::DOUBLE`)})` : 'NULL');
    return { column, alias, on, kind, numeric, c, valid };
  });
  return { columns, scan: `SELECT ${selects.join(', ')} FROM ${table}` };
}

export interface HistogramPlan {
  sql: string;
  binds: Bind[];
  columns: Array<{ column: string; lower: number; upper: number; n: number; width: number; index: number }>;
}

/** One scan for every histogram: a bucket expression per column, one grouping set per column. */
export function planHistograms(
  plan: StatsPlan,
  row: Record<string, unknown>,
  table: string,
  bins: number,
): HistogramPlan | undefined {
  const hist = plan.columns.filter((p) => p.on.histogram && p.numeric && row[`${p.alias}_LOWER`] != null);
  if (hist.length === 0) return undefined;
  const binds: Bind[] = [];
  const columns: HistogramPlan['columns'] = [];
  const buckets = hist.map((p, index) => {
    const lower = Number(row[`${p.alias}_LOWER`]);
    const upper = Number(row[`${p.alias}_UPPER`]);
    const n = lower === upper ? 1 : bins;
    const width = (upper - lower) / n;
    columns.push({ column: p.column, lower, upper, n, width, index });
    if (n === 1) return `CASE WHEN ${p.valid} THEN 0 END AS "B${index}"`;
    binds.push(n - 1, lower, width);
    return `CASE WHEN ${p.valid} THEN LEAST(?, FLOOR((${p.c}::DOUBLE - ?) / ?)) END AS "B${index}"`;
  });
  const b = hist.map((_, i) => `"B${i}"`);
  const sql =
    `SELECT ${b.join(', ')}, ${b.map((x, i) => `GROUPING(${x}) AS "G${i}"`).join(', ')}, COUNT(*) AS "N" ` +
    `FROM (SELECT ${buckets.join(', ')} FROM ${table}) GROUP BY GROUPING SETS (${b.map((x) => `(${x})`).join(', ')})`;
  return { sql, binds, columns };
}

export type Histogram = Array<{ lower: number; upper: number; count: number }>;

export function readHistograms(h: HistogramPlan, rows: Record<string, unknown>[]): Map<string, Histogram> {
  const out = new Map<string, Histogram>();
  for (const c of h.columns) {
    const counts = new Map<number, number>();
    for (const r of rows) {
      if (Number(r[`G${c.index}`]) !== 0) continue; // another column's grouping set
      const bucket = r[`B${c.index}`];
      if (bucket === null || bucket === undefined) continue; // NULL and NaN values
      counts.set(Number(bucket), Number(r.N));
    }
    out.set(
      c.column,
      Array.from({ length: c.n }, (_, i) => ({
        lower: c.lower + i * c.width,
        upper: i === c.n - 1 ? c.upper : c.lower + (i + 1) * c.width,
        count: counts.get(i) ?? 0,
      })),
    );
  }
  return out;
}

/** The statistics of each column, from the scan's row (and the histograms). */
export function readStats(
  plan: StatsPlan,
  row: Record<string, unknown>,
  histograms: Map<string, Histogram>,
): { total: number; columns: Record<string, Record<string, unknown>> } {
  const total = Number(row.TOTAL ?? 0);
  const columns: Record<string, Record<string, unknown>> = {};
  for (const p of plan.columns) {
    const get = (stat: string) => row[`${p.alias}_${stat}`];
    const stats: Record<string, unknown> = {};
    const nulls = Number(get('NULLS') ?? 0);
    if (p.on.value_count) stats.value_count = total;
    if (p.on.null_value_count) stats.null_value_count = nulls;
    if (p.on.nan_value_count) stats.nan_value_count = Number(get('NANS') ?? 0);
    if (p.on.lower_bound) stats.lower_bound = typedBound(get('LOWER'), p.kind);
    if (p.on.upper_bound) stats.upper_bound = typedBound(get('UPPER'), p.kind);
    if (p.on.approx_count_distinct) stats.approx_count_distinct = Number(get('DISTINCT') ?? 0);
    if (p.on.completeness) stats.completeness = total === 0 ? 1 : (total - nulls) / total;
    if (p.on.mean) stats.mean = finiteOrNull(get('MEAN'));
    if (p.on.standard_deviation) stats.standard_deviation = finiteOrNull(get('STDDEV'));
    if (p.on.histogram) stats.histogram = p.numeric ? (histograms.get(p.column) ?? []) : [];
    columns[p.column] = stats;
  }
  return { total, columns };
}

function finiteOrNull(v: unknown): number | null {
  if (v === null || v === undefined) return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}
