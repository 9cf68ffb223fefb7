/**
 * The local warehouse: one DuckDB database file under the executor's data directory, holding the
 * datasets (`company_<c>.dataset_<d>`), their snapshots, samples, statistics and the catalogue
 * (`_dpo.*`) that says which dataset belongs to which company.
 *
 * Setup runs with full access (to create the file and the schemas); then external access is switched
 * off and the configuration locked, so no job's SQL can read or write a file (`read_csv('/etc/passwd')`,
 * `COPY … TO`, `ATTACH`, `INSTALL`) or switch access back on.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type DuckDBConnection, DuckDBInstance, type DuckDBResult } from '@duckdb/node-api';
import { JobError } from '../../src/executor/index.ts';
import type { LocalConfig } from './config.ts';

/** Quotes an identifier for DuckDB. Only ever applied to names we checked or built from integers. */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A SQL string literal. */
export function literal(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** The table of a dataset: built from integers only, so never from text a job carries. */
export function datasetTable(companyId: number, datasetId: number): { schema: string; table: string } {
  if (
    !Number.isSafeInteger(companyId) ||
    companyId < 0 ||
    !Number.isSafeInteger(datasetId) ||
    datasetId < 0
  ) {
    throw new JobError('INVALID_INPUT', 'company and dataset ids must be non-negative integers', {
      retryable: false,
    });
  }
  return { schema: `company_${companyId}`, table: `dataset_${datasetId}` };
}

export const qualified = (t: { schema: string; table: string }) => `${ident(t.schema)}.${ident(t.table)}`;

const CATALOGUE = [
  'CREATE SCHEMA IF NOT EXISTS _dpo',
  'CREATE SCHEMA IF NOT EXISTS _snapshots',
  'CREATE SCHEMA IF NOT EXISTS _samples',
  'CREATE SEQUENCE IF NOT EXISTS _dpo.snapshot_ids START 1',
  `CREATE TABLE IF NOT EXISTS _dpo.datasets (
     dataset_id BIGINT PRIMARY KEY,
     company_id BIGINT NOT NULL,
     schema_name VARCHAR NOT NULL,
     table_name VARCHAR NOT NULL,
     managed BOOLEAN NOT NULL DEFAULT true,
     partitions JSON,
     created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
     last_modified_at TIMESTAMPTZ,
     current_snapshot_id BIGINT
   )`,
  /** Attributes (Rosetta Stone): a dataset carries attribute `name` when it has a column so named. */
  `CREATE TABLE IF NOT EXISTS _dpo.attributes (attribute_id BIGINT PRIMARY KEY, name VARCHAR NOT NULL UNIQUE)`,
  `CREATE TABLE IF NOT EXISTS _dpo.snapshots (
     dataset_id BIGINT NOT NULL,
     snapshot_id BIGINT PRIMARY KEY,
     recalculation_id UUID NOT NULL,
     job_id VARCHAR NOT NULL,
     batch_id UUID,
     chunk_number INTEGER,
     chunk_of INTEGER,
     operation VARCHAR NOT NULL,
     rows_written BIGINT NOT NULL,
     rows_total BIGINT NOT NULL,
     committed_at TIMESTAMPTZ NOT NULL
   )`,
  `CREATE TABLE IF NOT EXISTS _dpo.samples (
     dataset_id BIGINT PRIMARY KEY, rows BIGINT NOT NULL, job_id VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL
   )`,
  `CREATE TABLE IF NOT EXISTS _dpo.column_stats (
     dataset_id BIGINT NOT NULL, column_name VARCHAR NOT NULL, stats JSON NOT NULL,
     job_id VARCHAR NOT NULL, computed_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (dataset_id, column_name)
   )`,
  /** Exactly-once effects (effects.ts): each job's write, recorded in the write's own transaction. */
  `CREATE TABLE IF NOT EXISTS _dpo.job_effects (
     job_id VARCHAR NOT NULL, part VARCHAR NOT NULL, job_type VARCHAR NOT NULL, dataset_id BIGINT,
     result JSON NOT NULL, committed_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (job_id, part)
   )`,
  // Snowflake spellings the control plane's compiled DDL uses; DuckDB takes them as aliases.
  ...[
    ['TIMESTAMP_TZ', 'TIMESTAMPTZ'],
    ['TIMESTAMP_LTZ', 'TIMESTAMPTZ'],
    ['TIMESTAMP_NTZ', 'TIMESTAMP'],
    ['VARIANT', 'JSON'],
  ].map(([alias, type]) => `CREATE TYPE IF NOT EXISTS ${alias} AS ${type}`),
];

/** Attributes every warehouse knows; more can be inserted into `_dpo.attributes`. */
export const DEFAULT_ATTRIBUTES: ReadonlyArray<[number, string]> = [
  [1, 'unique_id'],
  [2, 'event_timestamp'],
  [3, 'country'],
  [4, 'amount'],
];

export class Warehouse {
  readonly path: string;
  private readonly instance: DuckDBInstance;
  private constructor(instance: DuckDBInstance, path: string) {
    this.instance = instance;
    this.path = path;
  }

  static async open(config: LocalConfig): Promise<Warehouse> {
    const dir = resolve(config.dir);
    mkdirSync(dir, { recursive: true });
    const path = join(dir, 'warehouse.duckdb');
    const options: Record<string, string> = {
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
      allow_community_extensions: 'false',
      // Everything DuckDB might write stays under the data directory (a read-only root elsewhere).
      temp_directory: join(dir, 'tmp'),
      extension_directory: join(dir, 'extensions'),
      allow_persistent_secrets: 'false',
    };
    if (config.threads !== undefined) options.threads = String(config.threads);
    if (config.memoryLimit !== undefined) options.memory_limit = config.memoryLimit;
    let instance: DuckDBInstance;
    try {
      instance = await DuckDBInstance.create(path, options);
    } catch (err) {
      const message = (err as Error).message;
      throw new Error(
        /lock/i.test(message)
          ? `the local data plane at ${path} is in use by another process (one daemon per DPO_LOCAL_DIR): ${message}`
          : `cannot open the local data plane at ${path}: ${message}`,
        { cause: err },
      );
    }
    const conn = await instance.connect();
    try {
      for (const sql of CATALOGUE) await conn.run(sql);
      for (const [id, name] of DEFAULT_ATTRIBUTES) {
        await conn.run(`INSERT OR IGNORE INTO _dpo.attributes VALUES (${id}, ${literal(name)})`);
      }
      await conn.run('SET enable_external_access = false');
      await conn.run('SET lock_configuration = true');
    } finally {
      conn.closeSync();
    }
    return new Warehouse(instance, path);
  }

  /**
   * Runs `fn` on a connection of its own. An abort of `signal` interrupts whatever query is running
   * on it; the query then rejects and `fn`'s caller sees the signal's reason.
   */
  async withConnection<T>(signal: AbortSignal, fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
    signal.throwIfAborted();
    const conn = await this.instance.connect();
    const stop = keepInterrupting(conn);
    signal.addEventListener('abort', stop.start, { once: true });
    try {
      // An abort while connecting fired before the listener existed.
      signal.throwIfAborted();
      return await fn(conn);
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw err;
    } finally {
      signal.removeEventListener('abort', stop.start);
      stop.end();
      conn.closeSync();
    }
  }

  /** Runs `fn` inside a transaction: committed when it resolves, rolled back when it throws. */
  static async transaction<T>(conn: DuckDBConnection, fn: () => Promise<T>): Promise<T> {
    await conn.run('BEGIN TRANSACTION');
    try {
      const out = await fn();
      await conn.run('COMMIT');
      return out;
    } catch (err) {
      await conn.run('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  close(): void {
    this.instance.closeSync();
  }
}

/**
 * Interrupting a connection only stops the statement running at that instant: an abort that lands
 * between two statements (or before the first has started) would be lost. So once started, this keeps
 * interrupting every 20 ms until the work on the connection has ended.
 */
export function keepInterrupting(conn: DuckDBConnection): { start: () => void; end: () => void } {
  let timer: NodeJS.Timeout | undefined;
  return {
    start() {
      conn.interrupt();
      timer ??= setInterval(() => conn.interrupt(), 20);
    },
    end() {
      clearInterval(timer);
    },
  };
}

/** DuckDB's own errors (syntax, binder, catalog, conversion…) are the job's fault: never retried. */
export function sqlError(err: unknown, what: string): JobError {
  const message = err instanceof Error ? err.message : String(err);
  return new JobError('SQL_ERROR', `${what}: ${message}`, { retryable: false, cause: err });
}

/** Runs one statement, mapping DuckDB errors to a non-retryable SQL_ERROR. */
export async function runSql(
  conn: DuckDBConnection,
  sql: string,
  what: string,
  signal: AbortSignal,
): Promise<DuckDBResult> {
  signal.throwIfAborted(); // an abort between statements stops the job before the next one
  try {
    return await conn.run(sql);
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw sqlError(err, what);
  }
}

/** First row of a query as JS values (bigints kept). */
export async function one(conn: DuckDBConnection, sql: string): Promise<Record<string, unknown> | undefined> {
  const reader = await conn.runAndReadAll(sql);
  return reader.getRowObjectsJS()[0] as Record<string, unknown> | undefined;
}

export async function all(conn: DuckDBConnection, sql: string): Promise<Record<string, unknown>[]> {
  const reader = await conn.runAndReadAll(sql);
  return reader.getRowObjectsJS() as Record<string, unknown>[];
}

/** A JS value from DuckDB as JSON: safe bigints become numbers, others strings; dates ISO strings. */
export function toJson(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'bigint') {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (Array.isArray(value)) return value.map(toJson);
  if (typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, toJson(v)]),
    );
  }
  return value;
}

/** A count from DuckDB (BIGINT comes back as bigint). */
export function num(value: unknown): number {
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'number') return value;
  if (value === null || value === undefined) return 0;
  return Number(value);
}
