/**
 * Snowflake as the executor needs it, on snowflake-sdk: a pool of connections per warehouse (sized
 * from the executor's concurrency, validated on borrow, kept alive), and four calls that never wait
 * inside the driver: submit (asyncExec: answers with the query id at once), status (one
 * `/monitoring/queries/{id}`), fetch (one result read, after success, with caps on rows and bytes),
 * and run (the three, with our own poll loop, for the small statements of the operator's own:
 * SYSTEM$CANCEL_QUERY, the query-history lookup).
 *
 * Every call takes the job's signal and a timeout. A call that finds its session gone or its token
 * expired (390114, 390111, 407002) throws the connection away and is made again, once, on a fresh
 * one: a query outlives the session that asked for it, so a status or a result is read from any.
 *
 * Sessions are created with `serverSessionKeepAlive`: closing the pool (a drain, a shutdown) never
 * deletes the server sessions, so the asynchronous queries they own keep running for the next
 * holder (Snowflake expires idle sessions on its own).
 */
import { readFileSync } from 'node:fs';
import type { Connection, ConnectionOptions, Pool, RowStatement } from 'snowflake-sdk';
import { JobError } from '../../src/executor/index.ts';
import { backoffDelay, sleep } from '../../src/lib/retry.ts';
import { registerSecret } from '../../src/lib/secrets.ts';
import { readPassphrase, type SnowflakeConfig } from './config.ts';
import { isSessionGone, scrub, snowflakeJobError } from './errors.ts';

type Sdk = typeof import('snowflake-sdk');
export type Bind = string | number | boolean | null;

export type QueryPhase = 'active' | 'succeeded' | 'ended';
/**
 * Every query status (snowflake-sdk `dist/lib/constants/query_status.js`), by what it means for us;
 * the sources are in the conformance table (executors/snowflake/README.md, "Query statuses").
 * Unlike the Node driver's `isAnError`, BLOCKED (waiting on a lock; it runs once the lock frees) and
 * ABORTING (not aborted yet) have not ended: a job keeps polling through them, bounded by its
 * deadline (which is also the statement's STATEMENT_TIMEOUT_IN_SECONDS).
 */
export const QUERY_STATUS: Readonly<Record<string, QueryPhase>> = {
  RUNNING: 'active',
  QUEUED: 'active',
  RESUMING_WAREHOUSE: 'active',
  QUEUED_REPARING_WAREHOUSE: 'active',
  NO_DATA: 'active',
  BLOCKED: 'active',
  ABORTING: 'active',
  RESTARTED: 'active',
  SUCCESS: 'succeeded',
  FAILED_WITH_ERROR: 'ended',
  FAILED_WITH_INCIDENT: 'ended',
  ABORTED: 'ended',
  DISCONNECTED: 'ended',
  NO_QUERY_DATA: 'ended',
};
/** A status not in the table is taken as ended: its failure is read from the query's result. */
export function queryPhase(status: string): QueryPhase {
  return QUERY_STATUS[status] ?? 'ended';
}

export interface FetchedResult {
  columns: string[];
  rows: Record<string, unknown>[];
  /** DML: the rows inserted, updated or deleted (snowflake-sdk reads them from the statement type). */
  updated?: number | undefined;
}

export interface SubmitOptions {
  warehouse: string;
  queryTag: string;
  /** STATEMENT_TIMEOUT_IN_SECONDS. */
  timeoutSeconds: number;
}

/** Statistics for the bench: statements submitted, status polls, result fetches. */
export interface ClientCounters {
  submits: number;
  polls: number;
  fetches: number;
  discarded: number;
}

export class SnowflakeClient {
  readonly counters: ClientCounters = { submits: 0, polls: 0, fetches: 0, discarded: 0 };
  private readonly pools = new Map<string, Pool<Connection>>();

  private readonly sdk: Sdk;
  private readonly config: SnowflakeConfig;

  constructor(sdk: Sdk, config: SnowflakeConfig) {
    this.sdk = sdk;
    this.config = config;
  }

  private options(warehouse: string): ConnectionOptions {
    const c = this.config;
    const base: ConnectionOptions = {
      account: c.account,
      username: c.user,
      role: c.role,
      database: c.database,
      warehouse,
      application: 'dataplane-operator',
      // A drain must never delete the sessions that own running asynchronous queries.
      serverSessionKeepAlive: true,
      clientSessionKeepAlive: true,
      timeout: c.requestTimeoutMs,
      sfRetryMaxLoginRetries: 2,
      ...(c.accessUrl ? { accessUrl: c.accessUrl } : {}),
    };
    const a = c.auth;
    if (a.kind === 'SNOWFLAKE_JWT') {
      const pass = readPassphrase(a);
      return {
        ...base,
        authenticator: 'SNOWFLAKE_JWT',
        privateKeyPath: a.privateKeyFile,
        ...(pass ? { privateKeyPass: pass } : {}),
      };
    }
    if (a.kind === 'OAUTH') {
      const token = readFileSync(a.tokenFile, 'utf8').trim();
      registerSecret(token);
      return { ...base, authenticator: 'OAUTH', token };
    }
    return { ...base, authenticator: 'SNOWFLAKE', password: a.password };
  }

  private pool(warehouse: string): Pool<Connection> {
    let pool = this.pools.get(warehouse);
    if (!pool) {
      pool = this.sdk.createPool(this.options(warehouse), {
        max: this.config.poolSize,
        min: 0,
        testOnBorrow: true,
        acquireTimeoutMillis: this.config.requestTimeoutMs,
        idleTimeoutMillis: 10 * 60_000,
        evictionRunIntervalMillis: 60_000,
      });
      this.pools.set(warehouse, pool);
    }
    return pool;
  }

  /**
   * Runs `fn` on a pooled connection, bounded by `signal` and the request timeout; a session found
   * gone discards the connection and `fn` runs again on a fresh one (once).
   */
  async with<T>(
    warehouse: string,
    what: string,
    signal: AbortSignal,
    fn: (conn: Connection) => Promise<T>,
  ): Promise<T> {
    const pool = this.pool(warehouse);
    for (let attempt = 0; ; attempt++) {
      signal.throwIfAborted();
      const bound = AbortSignal.any([signal, AbortSignal.timeout(this.config.requestTimeoutMs)]);
      const acquiring = pool.acquire();
      let conn: Connection;
      try {
        conn = await abortable(acquiring, bound);
      } catch (err) {
        // The connection arrives later: give it back.
        acquiring.then((c) => pool.release(c)).catch(() => undefined);
        if (signal.aborted) throw signal.reason;
        if (bound.aborted) {
          throw new JobError(
            'SNOWFLAKE_NETWORK',
            `${what}: no connection within ${this.config.requestTimeoutMs} ms`,
            {
              retryable: true,
            },
          );
        }
        // snowflake-sdk's pool rethrows a login failure without its code: one direct login says why.
        throw await this.whyNoConnection(warehouse, what, err, signal);
      }
      let discard = false;
      try {
        return await abortable(fn(conn), bound);
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        if (isSessionGone(err)) {
          discard = true;
          this.counters.discarded++;
          if (attempt === 0) continue;
        }
        if (bound.aborted) {
          throw new JobError(
            'SNOWFLAKE_NETWORK',
            `${what}: no answer within ${this.config.requestTimeoutMs} ms`,
            {
              retryable: true,
            },
          );
        }
        throw snowflakeJobError(err, what);
      } finally {
        if (discard) await pool.destroy(conn).catch(() => undefined);
        else await pool.release(conn).catch(() => undefined);
      }
    }
  }

  /**
   * The failure of a login the pool could not make, with Snowflake's code (a refused key is
   * `SNOWFLAKE_ACCESS_DENIED`, not retried), from one direct login; the pool's own error otherwise.
   */
  private async whyNoConnection(
    warehouse: string,
    what: string,
    poolError: unknown,
    signal: AbortSignal,
  ): Promise<JobError> {
    const conn = this.sdk.createConnection(this.options(warehouse));
    const bound = AbortSignal.any([signal, AbortSignal.timeout(this.config.requestTimeoutMs)]);
    try {
      await abortable(
        new Promise<void>((resolve, reject) => conn.connect((err) => (err ? reject(err) : resolve()))),
        bound,
      );
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      return snowflakeJobError(bound.aborted ? poolError : err, `${what}: cannot log in`);
    }
    // It worked this time: the pool's failure was transient. (The session is left to expire.)
    conn.destroy(() => undefined);
    return new JobError(
      'SNOWFLAKE_NETWORK',
      scrub(`${what}: no connection: ${(poolError as Error).message}`),
      {
        retryable: true,
      },
    );
  }

  /**
   * Resolves once a live session is at hand for `warehouse` (a pooled connection, validated on
   * borrow, or a new login): what a submission needs before its intent is recorded, so that a login
   * refused fails before anything may have reached Snowflake.
   */
  session(warehouse: string, signal: AbortSignal): Promise<void> {
    return this.with(warehouse, 'opening a session', signal, async () => undefined);
  }

  /** Submits one statement asynchronously; resolves with its query id as soon as Snowflake has it. */
  submit(sql: string, binds: Bind[], o: SubmitOptions, signal: AbortSignal): Promise<string> {
    return this.with(o.warehouse, 'submitting a statement', signal, (conn) => {
      this.counters.submits++;
      return new Promise<string>((resolve, reject) => {
        conn.execute({
          sqlText: sql,
          binds: binds as never,
          asyncExec: true,
          // With asyncExec alone snowflake-sdk drops a refusal (complete(null, …)); streamResult
          // makes it pass the error on.
          streamResult: true,
          // MULTI_STATEMENT_COUNT = 1 on every statement: an account that allows more per request
          // (the parameter's account or session value) still runs exactly one of ours.
          parameters: {
            QUERY_TAG: o.queryTag,
            STATEMENT_TIMEOUT_IN_SECONDS: o.timeoutSeconds,
            MULTI_STATEMENT_COUNT: 1,
          },
          complete: (err, stmt) => {
            if (err) return reject(err);
            const id = stmt.getQueryId();
            if (!id)
              return reject(
                new JobError('SNOWFLAKE_PROTOCOL', 'Snowflake answered without a query id', {
                  retryable: true,
                }),
              );
            resolve(id);
          },
        });
      });
    });
  }

  /** The query's status, read once (`GET /monitoring/queries/{id}`), from any session. */
  status(queryId: string, warehouse: string, signal: AbortSignal): Promise<string> {
    return this.with(warehouse, `reading the status of query ${queryId}`, signal, async (conn) => {
      this.counters.polls++;
      return String(await conn.getQueryStatus(queryId));
    });
  }

  /**
   * The result of a finished query (one read, never a wait: call it after `status` said SUCCESS),
   * within the row and byte caps; a failed query's read rejects with its Snowflake error.
   */
  fetch(queryId: string, warehouse: string, signal: AbortSignal): Promise<FetchedResult> {
    const { maxResultRows, maxResultBytes } = this.config;
    return this.with(warehouse, `reading the result of query ${queryId}`, signal, (conn) => {
      this.counters.fetches++;
      return new Promise<FetchedResult>((resolve, reject) => {
        conn.fetchResult({
          queryId,
          streamResult: true,
          complete: (err, stmt: RowStatement) => {
            if (err) return reject(err);
            const rows: Record<string, unknown>[] = [];
            let bytes = 0;
            const stream = stmt.streamRows();
            stream.on('data', (row: Record<string, unknown>) => {
              rows.push(row);
              bytes += Buffer.byteLength(
                JSON.stringify(row, (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
              );
              if (rows.length > maxResultRows || bytes > maxResultBytes) {
                stream.destroy();
                reject(
                  new JobError(
                    'RESULT_TOO_LARGE',
                    `query ${queryId} returned more than ${maxResultRows} rows or ${maxResultBytes} bytes`,
                    {
                      retryable: false,
                      details: { query_id: queryId, max_rows: maxResultRows, max_bytes: maxResultBytes },
                    },
                  ),
                );
              }
            });
            stream.on('error', reject);
            stream.on('end', () =>
              resolve({
                columns: (stmt.getColumns() ?? []).map((c) => c.getName()),
                rows,
                updated: stmt.getNumUpdatedRows() ?? undefined,
              }),
            );
          },
        });
      });
    });
  }

  /** The error of a query that ended badly, as a JobError (its result read answers the error). */
  async failure(queryId: string, status: string, warehouse: string, signal: AbortSignal): Promise<JobError> {
    try {
      await this.fetch(queryId, warehouse, signal);
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      if (
        err instanceof JobError &&
        err.code !== 'SNOWFLAKE_NETWORK' &&
        err.code !== 'SNOWFLAKE_SESSION_EXPIRED'
      ) {
        const details = (err.details ?? {}) as Record<string, unknown>;
        return new JobError(err.code, err.message, {
          retryable: err.retryable,
          details: { ...details, query_id: details.query_id ?? queryId, status },
        });
      }
      throw err;
    }
    return new JobError('SNOWFLAKE_QUERY_FAILED', `query ${queryId} ended ${status}`, {
      retryable: false,
      details: { query_id: queryId, status, snowflake_code: null, sql_state: null },
    });
  }

  /**
   * One small statement of the operator's own, to its end: submit, poll (our loop, on the signal),
   * fetch. For statements whose loss is harmless (a cancel, a lookup): no checkpoint.
   */
  async run(sql: string, binds: Bind[], o: SubmitOptions, signal: AbortSignal): Promise<FetchedResult> {
    const id = await this.submit(sql, binds, o, signal);
    for (let n = 0; ; n++) {
      const status = await this.status(id, o.warehouse, signal);
      const phase = queryPhase(status);
      if (phase === 'succeeded') return this.fetch(id, o.warehouse, signal);
      if (phase === 'ended') throw await this.failure(id, status, o.warehouse, signal);
      await sleep(
        this.config.pollMinMs + backoffDelay(n, this.config.pollMinMs, this.config.pollMaxMs),
        signal,
      );
    }
  }

  /**
   * Closes the pools. The sessions are left on the server (serverSessionKeepAlive): their running
   * queries continue, and the next holder reattaches to them by query id.
   */
  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(
      pools.map(async (p) => {
        await p.drain();
        await p.clear();
      }),
    );
  }
}

/** Rejects with the signal's reason when it aborts first. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
