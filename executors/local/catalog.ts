/**
 * The local catalogue (`_dpo.datasets`): which dataset is which table and which company owns it.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { JobError } from '../../src/executor/index.ts';
import { datasetTable, ident, literal, num, one, qualified } from './warehouse.ts';

export interface DatasetRow {
  datasetId: number;
  companyId: number;
  schema: string;
  table: string;
  managed: boolean;
}

export async function findDataset(
  conn: DuckDBConnection,
  datasetId: number,
): Promise<DatasetRow | undefined> {
  const row = await one(
    conn,
    `SELECT dataset_id, company_id, schema_name, table_name, managed FROM _dpo.datasets WHERE dataset_id = ${datasetId}`,
  );
  if (!row) return undefined;
  return {
    datasetId: num(row.dataset_id),
    companyId: num(row.company_id),
    schema: String(row.schema_name),
    table: String(row.table_name),
    managed: row.managed === true,
  };
}

/** The dataset a job names, which must exist, belong to the job's company and have its table. */
export async function requireDataset(
  conn: DuckDBConnection,
  companyId: number,
  datasetId: number,
): Promise<DatasetRow> {
  const ds = await findDataset(conn, datasetId);
  if (!ds) {
    throw new JobError('DATASET_NOT_FOUND', `dataset ${datasetId} is not in the local catalogue`, {
      retryable: false,
    });
  }
  if (ds.companyId !== companyId) {
    throw new JobError('FORBIDDEN', `dataset ${datasetId} belongs to another company`, { retryable: false });
  }
  if (!(await tableExists(conn, ds.schema, ds.table))) {
    throw new JobError('DATASET_NOT_FOUND', `dataset ${datasetId} has no table ${ds.schema}.${ds.table}`, {
      retryable: false,
    });
  }
  return ds;
}

export async function tableExists(conn: DuckDBConnection, schema: string, table: string): Promise<boolean> {
  const row = await one(
    conn,
    `SELECT count(*) AS n FROM duckdb_tables() WHERE database_name = current_database()
       AND schema_name = ${literal(schema)} AND table_name = ${literal(table)}`,
  );
  return num(row?.n) > 0;
}

/** Registers (or re-registers) a dataset's table in the catalogue. */
export async function registerDataset(
  conn: DuckDBConnection,
  companyId: number,
  datasetId: number,
  extra: { managed?: boolean; partitions?: unknown } = {},
): Promise<DatasetRow> {
  const t = datasetTable(companyId, datasetId);
  const existing = await findDataset(conn, datasetId);
  if (existing && existing.companyId !== companyId) {
    throw new JobError('FORBIDDEN', `dataset ${datasetId} belongs to another company`, { retryable: false });
  }
  const partitions = extra.partitions === undefined ? 'NULL' : literal(JSON.stringify(extra.partitions));
  await conn.run(
    `INSERT INTO _dpo.datasets (dataset_id, company_id, schema_name, table_name, managed, partitions)
       VALUES (${datasetId}, ${companyId}, ${literal(t.schema)}, ${literal(t.table)}, ${extra.managed ?? true}, ${partitions})
     ON CONFLICT (dataset_id) DO UPDATE SET
       partitions = CASE WHEN excluded.partitions IS NULL THEN _dpo.datasets.partitions ELSE excluded.partitions END`,
  );
  return { datasetId, companyId, ...t, managed: extra.managed ?? true };
}

/** Forgets a dataset and everything the data plane keeps about it (snapshots, sample, stats). */
export async function forgetDataset(conn: DuckDBConnection, datasetId: number): Promise<void> {
  const snaps = await conn.runAndReadAll(
    `SELECT snapshot_id FROM _dpo.snapshots WHERE dataset_id = ${datasetId}`,
  );
  for (const [id] of snaps.getRowsJS()) {
    await conn.run(`DROP TABLE IF EXISTS _snapshots.${ident(snapshotTable(datasetId, num(id)))}`);
  }
  await conn.run(`DROP TABLE IF EXISTS _samples.${ident(`dataset_${datasetId}`)}`);
  for (const table of ['snapshots', 'samples', 'column_stats', 'datasets']) {
    await conn.run(`DELETE FROM _dpo.${table} WHERE dataset_id = ${datasetId}`);
  }
}

export function snapshotTable(datasetId: number, snapshotId: number): string {
  return `dataset_${datasetId}_${snapshotId}`;
}

export const datasetRef = (ds: { schema: string; table: string }) => qualified(ds);
