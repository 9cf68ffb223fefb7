/**
 * datasets_create_table, datasets_delete_table, datasets_truncate_table, datasets_execute_dml and
 * datasets_sample on the local warehouse.
 */

import { createHash } from 'node:crypto';
import type { DuckDBConnection } from '@duckdb/node-api';
import { StatementType } from '@duckdb/node-api';
import type { InputOf } from '../../src/catalogue/index.ts';
import { type ExecuteContext, JobError, type JobHandle } from '../../src/executor/index.ts';
import { findDataset, forgetDataset, registerDataset, requireDataset, tableExists } from './catalog.ts';
import type { LocalConfig } from './config.ts';
import { exactlyOnce } from './effects.ts';
import { datasetTable, ident, literal, num, qualified, runSql, sqlError } from './warehouse.ts';
import { assertWritesOnly } from './write-target.ts';

/**
 * What the job's log says about a statement: its kind, size and a digest, never its text (the SQL
 * may carry customer values).
 */
export function statementSummary(sql: string): { sql_chars: number; sql_sha256: string } {
  return { sql_chars: sql.length, sql_sha256: createHash('sha256').update(sql).digest('hex').slice(0, 16) };
}

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
  job: JobHandle<InputOf<'datasets_create_table'>>,
  ctx: ExecuteContext,
): Promise<unknown> {
  const { signal } = ctx;
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
  ctx.log.info('creating table', { table: `${t.schema}.${t.table}`, ...statementSummary(sql) });
  const out = await exactlyOnce(conn, job, { datasetId, log: ctx.log, signal }, async () => {
    await conn.run(`CREATE SCHEMA IF NOT EXISTS ${ident(t.schema)}`);
    // Checked once the schema exists (DuckDB binds the statement); a refusal rolls the schema back.
    await singleStatement(conn, sql, [StatementType.CREATE], 'compiled_sql');
    // A delivery of a create that another job already ran finds its table: done, not an error.
    if (existing && (await tableExists(conn, t.schema, t.table))) return { type: 'datasets_create_table' };
    await runSql(conn, sql, 'compiled_sql', signal);
    await registerDataset(conn, job.companyId, datasetId);
    return { type: 'datasets_create_table' };
  });
  ctx.log.info('table created', { table: `${t.schema}.${t.table}` });
  return out;
}

export async function deleteTable(
  conn: DuckDBConnection,
  job: JobHandle<InputOf<'datasets_delete_table'>>,
  ctx: ExecuteContext,
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
  if (ds && ds.companyId !== job.companyId) {
    throw new JobError('FORBIDDEN', `dataset ${ds.datasetId} belongs to another company`, {
      retryable: false,
    });
  }
  ctx.log.info('deleting table', { table: `${schema}.${table}`, drop: job.input.is_narrative_managed });
  const out = await exactlyOnce(
    conn,
    job,
    { datasetId: ds?.datasetId, log: ctx.log, signal: ctx.signal },
    async () => {
      // Narrative-managed tables are dropped; a customer's own table is only forgotten.
      if (job.input.is_narrative_managed) {
        await conn.run(`DROP TABLE IF EXISTS ${ident(schema)}.${ident(table)}`);
      }
      if (ds) await forgetDataset(conn, ds.datasetId);
      return { type: 'datasets_delete_table' };
    },
  );
  ctx.log.info('table deleted', { table: `${schema}.${table}` });
  return out;
}

export async function truncateTable(
  conn: DuckDBConnection,
  job: JobHandle<InputOf<'datasets_truncate_table'>>,
  ctx: ExecuteContext,
): Promise<unknown> {
  const ds = await requireDataset(conn, job.companyId, job.input.dataset_id);
  ctx.log.info('truncating table', { table: `${ds.schema}.${ds.table}` });
  const out = await exactlyOnce(
    conn,
    job,
    { datasetId: ds.datasetId, log: ctx.log, signal: ctx.signal },
    async () => {
      await runSql(conn, `TRUNCATE ${qualified(ds)}`, 'truncate', ctx.signal);
      return { type: 'datasets_truncate_table' };
    },
  );
  ctx.log.info('table truncated', { table: `${ds.schema}.${ds.table}` });
  return out;
}

export async function executeDml(
  conn: DuckDBConnection,
  job: JobHandle<InputOf<'datasets_execute_dml'>>,
  ctx: ExecuteContext,
): Promise<unknown> {
  const ds = await requireDataset(conn, job.companyId, job.input.dataset_id);
  const sql = job.input.compiled_sql;
  const kind = await singleStatement(
    conn,
    sql,
    [StatementType.INSERT, StatementType.UPDATE, StatementType.DELETE, StatementType.MERGE_INTO],
    'compiled_sql',
  );
  // Refused before anything runs: the statement may write only this dataset's table.
  await assertWritesOnly(conn, sql, ds);
  ctx.log.info('running DML', {
    statement: StatementType[kind],
    table: `${ds.schema}.${ds.table}`,
    ...statementSummary(sql),
  });
  const out = await exactlyOnce(
    conn,
    job,
    { datasetId: ds.datasetId, log: ctx.log, signal: ctx.signal },
    async () => {
      const result = await runSql(conn, sql, 'compiled_sql', ctx.signal);
      await conn.run(
        `UPDATE _dpo.datasets SET last_modified_at = ${literal(job.input.nio_last_modified_at)}::TIMESTAMPTZ
        WHERE dataset_id = ${ds.datasetId}`,
      );
      return { type: 'datasets_execute_dml', affected_rows: result.rowsChanged };
    },
  );
  ctx.log.info('DML committed', { affected_rows: out.affected_rows });
  return out;
}

export async function sample(
  conn: DuckDBConnection,
  job: JobHandle<InputOf<'datasets_sample'>>,
  config: LocalConfig,
  ctx: ExecuteContext,
): Promise<unknown> {
  const { signal } = ctx;
  const ds = await requireDataset(conn, job.companyId, job.input.dataset_id);
  const size = Math.min(job.input.sample_size ?? config.sampleRows, config.maxSampleRows);
  const target = `_samples.${ident(`dataset_${ds.datasetId}`)}`;
  // Reservoir sampling: exactly `size` rows (or all of them), uniformly, seeded by the job so a
  // repeated delivery writes the same sample.
  const seed = Number.parseInt(job.id.replaceAll('-', '').slice(0, 7), 16);
  ctx.log.info('sampling', { table: `${ds.schema}.${ds.table}`, size });
  const out = await exactlyOnce(
    conn,
    job,
    { datasetId: ds.datasetId, log: ctx.log, signal: ctx.signal },
    async () => {
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
      return { type: 'datasets_sample', rows: n, table: `_samples.dataset_${ds.datasetId}` };
    },
  );
  ctx.log.info('sample written', { rows: out.rows });
  return out;
}
