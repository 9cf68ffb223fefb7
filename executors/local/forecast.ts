/**
 * forecast, forecast-internal and costs over the local catalogue: the DuckDB renderer of the forecast
 * rules (src/catalogue/forecast-rules.ts decides which rows count; this file only says it in DuckDB
 * SQL and runs it). What is local:
 * - a dataset carries attribute N when it has a column named as N in `_dpo.attributes` (attribute 1 is
 *   `unique_id`); a field path such as `unique_id.value` reads that column's struct field, and a path
 *   not starting with the attribute's name is read inside that column (`value` → `unique_id.value`);
 * - an attribute missing from `_dpo.attributes`, a field filter the rules do not know, or a duration
 *   that cannot be read answers `{type: 'failure', msg}` (so does DuckDB rejecting a generated filter);
 * - the sample is `TABLESAMPLE bernoulli`, repeatable per dataset (seed: dataset id mod 100 000);
 * - scan cost (`costs`, and `scan_cost` of a forecast): every row of each candidate dataset carrying the
 *   required attributes (others 0), and its size: rows × the row's fixed width (strings 16 bytes).
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import {
  type CataloguePredicate,
  costOf,
  type Duration,
  DurationError,
  durationTerms,
  type EstimateMode,
  forecastRules,
  parseDuration,
  type RowPredicate,
} from '../../src/catalogue/forecast-rules.ts';
import type { CostsInput, ForecastInput } from '../../src/catalogue/forecasting.ts';
import type { ExecuteContext, JobHandle } from '../../src/executor/index.ts';
import { all, ident, literal, num, one, qualified } from './warehouse.ts';

export type { EstimateMode };

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

/** A duration as a DuckDB interval literal (months and days kept calendar-true). */
const interval = (d: Duration) =>
  `INTERVAL ${literal(
    durationTerms(d)
      .map((t) => `${t.amount} ${t.unit}`)
      .join(' '),
  )}`;

/** ISO 8601 duration → DuckDB interval literal; a DurationError when it cannot be read. */
export const isoToInterval = (iso: string): string => interval(parseDuration(iso));

const timestamp = (value: string) => `${literal(value)}::TIMESTAMPTZ`;

/** A catalogue predicate over `_dpo.datasets`. */
function cataloguePredicate(p: CataloguePredicate): string {
  const values = p.values.join(', ') || 'NULL';
  return `${p.column} ${p.negated ? 'NOT IN' : 'IN'} (${values})`;
}

/** A row predicate as DuckDB conditions; `attribute` names the column a not_null path reads. */
function rowConditions(p: RowPredicate, attribute: string | null): string[] {
  switch (p.kind) {
    case 'not_null':
      return [`${fieldExpr(attribute ?? (p.path[0] as string), p.path)} IS NOT NULL`];
    case 'since':
      return [
        `${ident(p.column)} >= ${p.reference ? timestamp(p.reference) : 'now()'} - ${interval(p.duration)}`,
      ];
    case 'range':
      return [
        p.from && `${ident(p.column)} ${p.from.inclusive ? '>=' : '>'} ${timestamp(p.from.value)}`,
        p.until && `${ident(p.column)} ${p.until.inclusive ? '<=' : '<'} ${timestamp(p.until.value)}`,
      ].filter((x): x is string => Boolean(x));
  }
}

/** A field path as SQL: its first segment is the column (the attribute), the rest struct fields. */
function fieldExpr(attribute: string, path: readonly string[]): string {
  const segments = [...path];
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
    if (err instanceof Unestimable || err instanceof DurationError)
      return { type: 'failure', msg: err.message };
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
  const plan = forecastRules(job.input, mode);
  const companyFilter = plan.candidates.map(cataloguePredicate).join(' AND ') || 'true';
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
  const rules = plan.attributes.map((a) => {
    const name = attributeNames.get(a.attribute_id);
    if (name === undefined)
      throw new Unestimable(`attribute ${a.attribute_id} is not in the local catalogue`);
    const u = a.unsupported[0];
    if (u)
      throw new Unestimable(`filter '${u.filter}' of ${u.field} is not supported by the local data plane`);
    return { ...a, name };
  });
  const tsConditions = plan.ingestion.flatMap((p) => rowConditions(p, null));
  const denominator = plan.sampleDenominator;
  const price = plan.pricePer1000Rows;
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
      (plan.ingestion.length === 0 || cols.has(plan.ingestionColumn));
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
        for (const p of r.where) conditions.push(...rowConditions(p, r.name));
      }
      const where = conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '';
      const sample =
        denominator > 1
          ? ` TABLESAMPLE bernoulli(${100 / denominator}%) REPEATABLE (${datasetId % 100_000})`
          : '';
      const counted = num((await one(conn, `SELECT count(*) AS n FROM ${table}${sample}${where}`))?.n);
      const rows = counted * denominator;
      perDataset.push({ dataset_id: datasetId, rows, cost: costOf(rows, price) });
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
    cost: costOf(rows, price),
    rows,
    datasets: perDataset,
    estimator: plan.estimator,
    scan_cost: scanCost,
  };
}
