/**
 * datasets_create_table, datasets_delete_table, datasets_truncate_table, datasets_execute_dml and
 * datasets_sample on the local warehouse.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { StatementType } from '@duckdb/node-api';
import { JobError, type JobHandle } from '../../src/executor/index.ts';
import { findDataset, forgetDataset, registerDataset, requireDataset, tableExists } from './catalog.ts';
import type { LocalConfig } from './config.ts';
import { datasetTable, ident, literal, num, qualified, runSql, sqlError, Warehouse } from './warehouse.ts';

const invalid = (message: string) => new JobError('INVALID_INPUT', message, { retryable: false });

/**
 * Snowflake DDL the control plane compiles, made acceptable to DuckDB: a trailing `CLUSTER BY (…)`
 * means nothing to a local table and is dropped (type aliases such as TIMESTAMP_TZ are defined in
 * the warehouse).
 */
export function localDdl(sql: string): string {
  return sql.replace(/\s+CLUSTER\s+BY\s*\([^()]*\)\s*;?\s*$/i, '');
}

/** One statement, of the expected kinds; anything else is refused before it runs. */
export async function singleStatement(
  conn: DuckDBConnection,
  sql: string,
  allowed: readonly StatementType[],
  what: string,
): Promise<StatementType> {
  let extracted: Awaited<ReturnType<DuckDBConnection['extractStatements']>>;
  try {
    extracted = await conn.extractStatements(sql);
  } catch (err) {
    throw sqlError(err, what);
  }
  if (extracted.count !== 1) throw invalid(`${what} must be exactly one statement, got ${extracted.count}`);
  let type: StatementType;
  try {
    type = (await extracted.prepare(0)).statementType;
  } catch (err) {
    throw sqlError(err, what);
  }
  if (!allowed.includes(type)) {
    throw invalid(
      `${what} must be ${allowed.map((t) => StatementType[t]).join(' or ')}, got ${StatementType[type]}`,
    );
  }
  return type;
}

export async function createTable(
  conn: DuckDBConnection,
  job: JobHandle<{ dataset_id: number; compiled_sql: string }>,
  signal: AbortSignal,
): Promise<unknown> {
  const { dataset_id: datasetId } = job.input;
  const t = datasetTable(job.companyId, datasetId);
  const sql = localDdl(job.input.compiled_sql);
  // The statement must create this dataset's own table: `company_<company>.dataset_<id>`.
  const target = new RegExp(
    String.raw`^\s*CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"?${t.schema}"?\s*\.\s*"?${t.table}"?[\s(]`,
    'i',
  );
  if (!target.test(sql)) {
    throw invalid(`compiled_sql must be a CREATE TABLE of ${t.schema}.${t.table} (company ${job.companyId})`);
  }
  const existing = await findDataset(conn, datasetId);
  if (existing && existing.companyId !== job.companyId) {
    throw new JobError('FORBIDDEN', `dataset ${datasetId} belongs to another company`, { retryable: false });
  }
  await Warehouse.transaction(conn, async () => {
    await conn.run(`CREATE SCHEMA IF NOT EXISTS ${ident(t.schema)}`);
    // Checked once the schema exists (DuckDB binds the statement); a refusal rolls the schema back.
    await singleStatement(conn, sql, [StatementType.CREATE], 'compiled_sql');
    // A repeated delivery of a create that already ran finds its table: done, not an error.
    if (existing && (await tableExists(conn, t.schema, t.table))) return;
    await runSql(conn, sql, 'compiled_sql', signal);
    await registerDataset(conn, job.companyId, datasetId);
  });
  return { type: 'datasets_create_table' };
}

export async function deleteTable(
  conn: DuckDBConnection,
  job: JobHandle<{ external_id: string; is_narrative_managed: boolean }>,
): Promise<unknown> {
  const parts = job.input.external_id.split('.');
  if (parts.length !== 2) throw invalid(`external_id must be <schema>.<table>, got ${job.input.external_id}`);
  const [schema, table] = parts as [string, string];
  if (schema !== `company_${job.companyId}`) {
    throw new JobError('FORBIDDEN', `${job.input.external_id} is not in company ${job.companyId}'s schema`, {
      retryable: false,
    });
  }
  const m = /^dataset_(\d+)$/.exec(table);
  const ds = m ? await findDataset(conn, Number(m[1])) : undefined;
  await Warehouse.transaction(conn, async () => {
    // Narrative-managed tables are dropped; a customer's own table is only forgotten.
    if (job.input.is_narrative_managed) {
      await conn.run(`DROP TABLE IF EXISTS ${ident(schema)}.${ident(table)}`);
    }
    if (ds) await forgetDataset(conn, ds.datasetId);
  });
  return { type: 'datasets_delete_table' };
}

export async function truncateTable(
  conn: DuckDBConnection,
  job: JobHandle<{ dataset_id: number }>,
  signal: AbortSignal,
): Promise<unknown> {
  const ds = await requireDataset(conn, job.companyId, job.input.dataset_id);
  await runSql(conn, `TRUNCATE ${qualified(ds)}`, 'truncate', signal);
  return { type: 'datasets_truncate_table' };
}

export async function executeDml(
  conn: DuckDBConnection,
  job: JobHandle<{ dataset_id: number; compiled_sql: string; nio_last_modified_at: string }>,
  signal: AbortSignal,
): Promise<unknown> {
  const ds = await requireDataset(conn, job.companyId, job.input.dataset_id);
  await singleStatement(
    conn,
    job.input.compiled_sql,
    [StatementType.INSERT, StatementType.UPDATE, StatementType.DELETE, StatementType.MERGE_INTO],
    'compiled_sql',
  );
  const affected = await Warehouse.transaction(conn, async () => {
    const result = await runSql(conn, job.input.compiled_sql, 'compiled_sql', signal);
    await conn.run(
      `UPDATE _dpo.datasets SET last_modified_at = ${literal(job.input.nio_last_modified_at)}::TIMESTAMPTZ
        WHERE dataset_id = ${ds.datasetId}`,
    );
    return result.rowsChanged;
  });
  return { type: 'datasets_execute_dml', affected_rows: affected };
}

export async function sample(
  conn: DuckDBConnection,
  job: JobHandle<{ dataset_id: number; sample_size?: number }>,
  config: LocalConfig,
  signal: AbortSignal,
): Promise<unknown> {
  const ds = await requireDataset(conn, job.companyId, job.input.dataset_id);
  const size = Math.min(job.input.sample_size ?? config.sampleRows, config.maxSampleRows);
  const target = `_samples.${ident(`dataset_${ds.datasetId}`)}`;
  // Reservoir sampling: exactly `size` rows (or all of them), uniformly, seeded by the job so a
  // repeated delivery writes the same sample.
  const seed = Number.parseInt(job.id.replaceAll('-', '').slice(0, 7), 16);
  const rows = await Warehouse.transaction(conn, async () => {
    await runSql(
      conn,
      `CREATE OR REPLACE TABLE ${target} AS SELECT * FROM ${qualified(ds)} USING SAMPLE reservoir(${size} ROWS) REPEATABLE (${seed})`,
      'sample',
      signal,
    );
    const n = num((await conn.runAndReadAll(`SELECT count(*) FROM ${target}`)).getRowsJS()[0]?.[0]);
    await conn.run(
      `INSERT OR REPLACE INTO _dpo.samples VALUES (${ds.datasetId}, ${n}, ${literal(job.id)}, now())`,
    );
    return n;
  });
  return { type: 'datasets_sample', rows, table: `_samples.dataset_${ds.datasetId}` };
}
