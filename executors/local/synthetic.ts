/**
 * The synthetic data the `dev` command (and the tests) start from: deterministic, generated inside
 * DuckDB from `range()`, so the same row count always yields the same rows.
 *
 * - dataset 424 of company 56: events (`rows` of them) with an identifier (`unique_id` struct, 5 %
 *   without a value), event and ingestion timestamps over 90 days from 2026-08-03, a country, an amount
 *   (2 % null, 0.5 % NaN) and the access rule each row was delivered under, with its price;
 * - dataset 425 of company 57: the same shape, a tenth of the rows (other companies' data);
 * - dataset 340 of company 56: a reference table without identifiers (no `unique_id` attribute).
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { registerDataset, tableExists } from './catalog.ts';
import { datasetTable, ident, num, one, qualified, Warehouse } from './warehouse.ts';

export interface SyntheticSpec {
  companyId: number;
  datasetId: number;
  rows: number;
  /** Offsets the generator so two datasets do not hold the same rows. */
  salt: number;
}

/** h(i, k): a deterministic 32-bit mix of the row number and a stream number (Knuth's multiplier). */
const h = (k: number) => `((i * 2654435761 + ${k * 40503 + 12345}) % 4294967291)`;

export function eventsSelect(rows: number, salt: number): string {
  const i = `(r + ${salt * 1_000_000_007})`;
  return `
    SELECT
      r AS event_id,
      {'type': ['email_sha256', 'maid', 'ip'][1 + ${h(1)} % 3],
       'value': CASE WHEN ${h(2)} % 20 = 0 THEN NULL ELSE md5(i::VARCHAR) END} AS unique_id,
      TIMESTAMPTZ '2026-08-03 00:00:00+00' + to_seconds(${h(3)} % (90 * 86400)) AS event_timestamp,
      ['US', 'US', 'US', 'GB', 'DE', 'FR', 'CA', 'BR', 'JP', 'IN'][1 + ${h(4)} % 10] AS country,
      CASE WHEN ${h(5)} % 50 = 0 THEN NULL
           WHEN ${h(5)} % 200 = 1 THEN 'NaN'::DOUBLE
           ELSE (${h(6)} % 100000) / 100.0 END AS amount,
      TIMESTAMPTZ '2026-08-03 00:00:00+00' + to_seconds(${h(3)} % (90 * 86400) + ${h(7)} % 3600) AS _nio_ingested_at,
      [456, 789, 1011][1 + r % 3] AS _nio_access_rule_id,
      [100, 150, 120][1 + r % 3] AS _nio_price_per_row
    FROM (SELECT range AS r, ${i} AS i FROM range(${rows}))`;
}

export const DEMO_DATASETS: readonly SyntheticSpec[] = [
  { companyId: 56, datasetId: 424, rows: 2_000_000, salt: 0 },
  { companyId: 57, datasetId: 425, rows: 200_000, salt: 1 },
];

/**
 * Creates the demo datasets unless they already hold exactly the rows asked for (so a second `dev`
 * start reuses them). Returns the datasets created.
 */
export async function seedDemoData(
  conn: DuckDBConnection,
  rows: number,
): Promise<Array<{ datasetId: number; rows: number; created: boolean }>> {
  const specs: SyntheticSpec[] = DEMO_DATASETS.map((d) => ({
    ...d,
    rows: d.datasetId === 424 ? rows : Math.max(1, Math.floor(rows / 10)),
  }));
  const out: Array<{ datasetId: number; rows: number; created: boolean }> = [];
  for (const spec of specs) {
    const t = datasetTable(spec.companyId, spec.datasetId);
    const have = (await tableExists(conn, t.schema, t.table))
      ? num((await one(conn, `SELECT count(*) AS n FROM ${qualified(t)}`))?.n)
      : -1;
    if (have === spec.rows) {
      out.push({ datasetId: spec.datasetId, rows: spec.rows, created: false });
      continue;
    }
    await Warehouse.transaction(conn, async () => {
      await conn.run(`CREATE SCHEMA IF NOT EXISTS ${ident(t.schema)}`);
      await conn.run(`CREATE OR REPLACE TABLE ${qualified(t)} AS ${eventsSelect(spec.rows, spec.salt)}`);
      await registerDataset(conn, spec.companyId, spec.datasetId);
    });
    out.push({ datasetId: spec.datasetId, rows: spec.rows, created: true });
  }
  const ref = datasetTable(56, 340);
  if (!(await tableExists(conn, ref.schema, ref.table))) {
    await Warehouse.transaction(conn, async () => {
      await conn.run(
        `CREATE TABLE ${qualified(ref)} AS SELECT * FROM (VALUES ('US', 'United States'), ('GB', 'United Kingdom'),
           ('DE', 'Germany'), ('FR', 'France'), ('CA', 'Canada'), ('BR', 'Brazil'), ('JP', 'Japan'), ('IN', 'India'))
           t(country_code, country_name)`,
      );
      await registerDataset(conn, 56, 340);
    });
    out.push({ datasetId: 340, rows: 8, created: true });
  }
  return out;
}
