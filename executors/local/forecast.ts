/**
 * forecast, forecast-internal and costs over the local catalogue (README, "The local data plane"):
 * - candidate datasets: those of companies the `company_constraint` admits (inclusion: listed;
 *   exclusion: not listed; none: every company);
 * - a dataset carries attribute N when it has a column named as N in `_dpo.attributes` (attribute 1 is
 *   `unique_id`); a field path such as `unique_id.value` reads that column's struct field. A dataset
 *   lacking a non-optional attribute contributes no rows;
 * - field filters: `include_only_if_not_null_filter` keeps rows whose field is not null; `null` is no
 *   filter; any other name cannot be interpreted locally and answers `{type: 'failure'}`;
 * - the ingestion-timestamp filter reads `_nio_ingested_at`: `recency` keeps rows ingested within the
 *   duration before `as_of` (or now), `from`/`until` bound it (inclusive or exclusive), and rows
 *   ingested after a given `as_of` are left out. A dataset without the column contributes no rows;
 * - `forecast` counts a Bernoulli sample at 1/sample_rate_denominator and scales it up (estimator
 *   `sample`, its rate); a denominator of 1 and `forecast-internal` count every row (estimator `exact`);
 * - cost = rows × pricing.micro_cents_usd / 1000 (the price is per thousand rows), rounded down;
 * - scan cost (`costs`, and `scan_cost` of a forecast): every row of each candidate dataset carrying the
 *   required attributes (others 0), and its size: rows × the row's fixed width (strings 16 bytes).
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import type { CostsInput, ForecastInput } from '../../src/catalogue/forecasting.ts';
import type { ExecuteContext, JobHandle } from '../../src/executor/index.ts';
import { all, ident, literal, num, one, qualified } from './warehouse.ts';

export type EstimateMode = 'sampled' | 'exact' | 'costs';

const INGESTED = '_nio_ingested_at';
const WIDTHS: Record<string, number> = {
  BOOLEAN: 1,
  TINYINT: 1,
  UTINYINT: 1,
  SMALLINT: 2,
  USMALLINT: 2,
  INTEGER: 4,
  UINTEGER: 4,
  FLOAT: 4,
  DATE: 4,
  BIGINT: 8,
  UBIGINT: 8,
  DOUBLE: 8,
  TIMESTAMP: 8,
  'TIMESTAMP WITH TIME ZONE': 8,
  TIME: 8,
  HUGEINT: 16,
  UUID: 16,
  INTERVAL: 16,
};
const width = (type: string) =>
  WIDTHS[type] ?? (type.startsWith('STRUCT') ? 16 * type.split(',').length : 16);

class Unestimable extends Error {}

/** ISO 8601 duration → DuckDB interval literal (months and days kept calendar-true). */
export function isoToInterval(iso: string): string {
  const m =
    /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(
      iso,
    );
  if (!m) throw new Unestimable(`cannot read the duration '${iso}'`);
  const [, y, mo, w, d, h, mi, s] = m;
  const parts = [
    y && `${y} years`,
    mo && `${mo} months`,
    w && `${Number(w) * 7} days`,
    d && `${d} days`,
    h && `${h} hours`,
    mi && `${mi} minutes`,
    s && `${s} seconds`,
  ].filter(Boolean);
  return `INTERVAL ${literal(parts.join(' ') || '0 seconds')}`;
}

/** A field path as SQL: its first segment is the column (the attribute), the rest struct fields. */
function fieldExpr(attribute: string, field: string): string {
  const segments = field.split('.');
  if (segments[0] !== attribute) segments.unshift(attribute);
  return segments
    .slice(1)
    .reduce((expr, s) => `struct_extract(${expr}, ${literal(s)})`, ident(segments[0] as string));
}

export async function estimate(
  conn: DuckDBConnection,
  job: JobHandle<ForecastInput | CostsInput>,
  mode: EstimateMode,
  ctx: ExecuteContext,
): Promise<unknown> {
  try {
    return await run(conn, job, mode, ctx);
  } catch (err) {
    if (err instanceof Unestimable) return { type: 'failure', msg: err.message };
    if (ctx.signal.aborted) throw ctx.signal.reason;
    // DuckDB rejecting a generated filter (a field that is not in the struct, say): the rules do not
    // fit the data. Say so in the result, as the seed's Failure shape does.
    return { type: 'failure', msg: err instanceof Error ? err.message : String(err) };
  }
}

async function run(
  conn: DuckDBConnection,
  job: JobHandle<ForecastInput | CostsInput>,
  mode: EstimateMode,
  ctx: ExecuteContext,
): Promise<unknown> {
  const { details } = job.input;
  const constraint = details.company_constraint;
  const ids = (constraint?.company_ids ?? []).join(', ') || 'NULL';
  const companyFilter = !constraint
    ? 'true'
    : constraint.type === 'inclusion'
      ? `company_id IN (${ids})`
      : `company_id NOT IN (${ids})`;
  const datasets = await all(
    conn,
    `SELECT d.dataset_id, d.schema_name, d.table_name FROM _dpo.datasets d
       JOIN duckdb_tables() t ON t.database_name = current_database() AND t.schema_name = d.schema_name AND t.table_name = d.table_name
      WHERE ${companyFilter} ORDER BY d.dataset_id`,
  );
  const attributeNames = new Map(
    (await all(conn, 'SELECT attribute_id, name FROM _dpo.attributes')).map((r) => [
      num(r.attribute_id),
      String(r.name),
    ]),
  );
  const rules = details.data_rules.attributes.map((a) => {
    const name = attributeNames.get(a.attribute_id);
    if (name === undefined)
      throw new Unestimable(`attribute ${a.attribute_id} is not in the local catalogue`);
    for (const f of a.fields) {
      if (f.filter !== null && f.filter !== 'include_only_if_not_null_filter') {
        throw new Unestimable(`filter '${f.filter}' of ${f.field} is not supported by the local data plane`);
      }
    }
    return { ...a, name };
  });

  const asOf = 'as_of' in job.input && job.input.as_of ? job.input.as_of : null;
  const reference = asOf ? `${literal(asOf)}::TIMESTAMPTZ` : 'now()';
  const tsFilter = details.data_rules.ingestion_timestamp_filter;
  const tsConditions: string[] = [];
  if (tsFilter?.recency)
    tsConditions.push(`${ident(INGESTED)} >= ${reference} - ${isoToInterval(tsFilter.recency)}`);
  if (tsFilter?.from) {
    tsConditions.push(
      `${ident(INGESTED)} ${tsFilter.from.type === 'inclusive' ? '>=' : '>'} ${literal(tsFilter.from.value)}::TIMESTAMPTZ`,
    );
  }
  if (tsFilter?.until) {
    tsConditions.push(
      `${ident(INGESTED)} ${tsFilter.until.type === 'inclusive' ? '<=' : '<'} ${literal(tsFilter.until.value)}::TIMESTAMPTZ`,
    );
  }
  if (asOf && tsFilter) tsConditions.push(`${ident(INGESTED)} <= ${reference}`);

  const denominator =
    mode === 'sampled' && 'sample_rate_denominator' in job.input
      ? Number(job.input.sample_rate_denominator)
      : 1;
  const price = details.pricing.micro_cents_usd;
  const sources: Array<{ rows: number; size: number; source: { type: 'dataset'; dataset_id: number } }> = [];
  const perDataset: Array<{ dataset_id: number; rows: number; cost: number }> = [];

  for (const [i, d] of datasets.entries()) {
    ctx.signal.throwIfAborted();
    const datasetId = num(d.dataset_id);
    const table = qualified({ schema: String(d.schema_name), table: String(d.table_name) });
    const cols = new Map(
      (
        await all(
          conn,
          `SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database()
             AND schema_name = ${literal(String(d.schema_name))} AND table_name = ${literal(String(d.table_name))}`,
        )
      ).map((r) => [String(r.column_name), String(r.data_type)]),
    );
    const eligible =
      rules.every((r) => r.optional === true || cols.has(r.name)) &&
      (tsConditions.length === 0 || cols.has(INGESTED));
    const rowWidth = [...cols.values()].reduce((s, t) => s + width(t), 0);
    const totalRows = eligible ? num((await one(conn, `SELECT count(*) AS n FROM ${table}`))?.n) : 0;
    sources.push({
      rows: totalRows,
      size: totalRows * rowWidth,
      source: { type: 'dataset', dataset_id: datasetId },
    });
    if (mode !== 'costs' && eligible) {
      const conditions = [...tsConditions];
      for (const r of rules) {
        if (!cols.has(r.name)) continue;
        for (const f of r.fields) if (f.filter) conditions.push(`${fieldExpr(r.name, f.field)} IS NOT NULL`);
      }
      const where = conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '';
      const sample =
        denominator > 1
          ? ` TABLESAMPLE bernoulli(${100 / denominator}%) REPEATABLE (${datasetId % 100_000})`
          : '';
      const counted = num((await one(conn, `SELECT count(*) AS n FROM ${table}${sample}${where}`))?.n);
      const rows = counted * denominator;
      perDataset.push({ dataset_id: datasetId, rows, cost: Math.floor((rows * price) / 1000) });
    }
    ctx.progress({ fraction: (i + 1) / datasets.length, message: `dataset ${datasetId} estimated` });
  }

  const scanCost = {
    rows: sources.reduce((s, x) => s + x.rows, 0),
    size: sources.reduce((s, x) => s + x.size, 0),
    sources,
  };
  if (mode === 'costs') return { type: 'success', cost: scanCost };
  const rows = perDataset.reduce((s, x) => s + x.rows, 0);
  return {
    type: 'success',
    cost: Math.floor((rows * price) / 1000),
    rows,
    datasets: perDataset,
    estimator: denominator > 1 ? { type: 'sample', rate: 1 / denominator } : { type: 'exact' },
    scan_cost: scanCost,
  };
}
