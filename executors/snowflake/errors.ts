/**
 * Snowflake's error codes, classified in one table: the job failure's code and its retry decision.
 * A failure's details hold Snowflake's code, the SQL state and the query id; messages are
 * Snowflake's (which quote SQL text, never a credential) run through `scrub` all the same.
 */
import { JobError } from '../../src/executor/index.ts';

export type SnowflakeClass =
  /** The job's fault or the account's setup: not retried. */
  | 'not_found'
  | 'sql'
  | 'no_access'
  | 'no_warehouse'
  | 'quota'
  /** The statement ran past STATEMENT_TIMEOUT_IN_SECONDS. */
  | 'timeout'
  /** The query was cancelled (on request, or by someone else). */
  | 'cancelled'
  /** The session or its token is gone: discard the connection, reattach on a fresh one. */
  | 'session'
  /** Network, throttling, the service: retried. */
  | 'transient';

interface Row {
  class: SnowflakeClass;
  code: string;
  retryable: boolean;
}

const row = (cls: SnowflakeClass, code: string, retryable: boolean): Row => ({ class: cls, code, retryable });

/** Snowflake code → class. Codes arrive as strings, zero-padded ('002003') or not ('2003'). */
export const ERROR_TABLE: Readonly<Record<string, Row>> = {
  // Object missing (table, schema, database, model), invalid identifier.
  '002003': row('not_found', 'SNOWFLAKE_OBJECT_NOT_FOUND', false),
  '002043': row('not_found', 'SNOWFLAKE_OBJECT_NOT_FOUND', false),
  '000904': row('sql', 'SNOWFLAKE_SQL_ERROR', false),
  // Syntax and compilation.
  '001003': row('sql', 'SNOWFLAKE_SQL_ERROR', false),
  '001007': row('sql', 'SNOWFLAKE_SQL_ERROR', false),
  '002140': row('sql', 'SNOWFLAKE_SQL_ERROR', false),
  '100090': row('sql', 'SNOWFLAKE_SQL_ERROR', false),
  '100038': row('sql', 'SNOWFLAKE_SQL_ERROR', false),
  '100357': row('sql', 'SNOWFLAKE_SQL_ERROR', false),
  // No access: insufficient privileges, login refused.
  '003001': row('no_access', 'SNOWFLAKE_ACCESS_DENIED', false),
  '003011': row('no_access', 'SNOWFLAKE_ACCESS_DENIED', false),
  '390100': row('no_access', 'SNOWFLAKE_ACCESS_DENIED', false),
  '390144': row('no_access', 'SNOWFLAKE_ACCESS_DENIED', false),
  '390189': row('no_access', 'SNOWFLAKE_ACCESS_DENIED', false),
  '390303': row('no_access', 'SNOWFLAKE_ACCESS_DENIED', false),
  // No (active) warehouse for the session.
  '000606': row('no_warehouse', 'SNOWFLAKE_NO_WAREHOUSE', false),
  // Quota: resource monitor, credit limits.
  '090073': row('quota', 'SNOWFLAKE_QUOTA_EXCEEDED', false),
  '090064': row('quota', 'SNOWFLAKE_QUOTA_EXCEEDED', false),
  // Statement timeout.
  '000630': row('timeout', 'TIMEOUT', false),
  // Cancelled.
  '000604': row('cancelled', 'SNOWFLAKE_QUERY_CANCELLED', false),
  // Session gone, token expired, connection terminated: a new connection reattaches by query id.
  // 390112 (session token expired) reaches us from the calls snowflake-sdk makes without its renewal
  // (getQueryStatus: services/sf.js requestAsync); 390114 is the renewal's answer when the master
  // token expired too, after which only a new login goes on.
  '390112': row('session', 'SNOWFLAKE_SESSION_EXPIRED', true),
  '390114': row('session', 'SNOWFLAKE_SESSION_EXPIRED', true),
  '390111': row('session', 'SNOWFLAKE_SESSION_EXPIRED', true),
  '407002': row('session', 'SNOWFLAKE_SESSION_EXPIRED', true),
  '390104': row('session', 'SNOWFLAKE_SESSION_EXPIRED', true),
  '401004': row('session', 'SNOWFLAKE_SESSION_EXPIRED', true),
  // Lock wait timeout, incidents, service trouble: worth another attempt.
  '000625': row('transient', 'SNOWFLAKE_TRANSIENT', true),
  '000603': row('transient', 'SNOWFLAKE_TRANSIENT', true),
  '390400': row('transient', 'SNOWFLAKE_TRANSIENT', true),
};

/** snowflake-sdk's own client-side codes for network trouble (ErrorCodes.ERR_SF_NETWORK_*, ERR_SF_RESPONSE_*). */
const DRIVER_NETWORK = /^40100[1-3]$/;

export interface SnowflakeErrorInfo {
  code?: string | undefined;
  sqlState?: string | undefined;
  queryId?: string | undefined;
  message: string;
}

export function normalizeCode(code: unknown): string | undefined {
  if (code === undefined || code === null || code === '') return undefined;
  const s = String(code);
  return /^\d+$/.test(s) ? s.padStart(6, '0') : s;
}

/** What a driver error says: Snowflake's code, SQL state and query id. */
export function infoOf(err: unknown): SnowflakeErrorInfo {
  const e = (err ?? {}) as {
    code?: unknown;
    sqlState?: unknown;
    data?: { queryId?: unknown };
    message?: unknown;
  };
  return {
    code: normalizeCode(e.code),
    sqlState: typeof e.sqlState === 'string' ? e.sqlState : undefined,
    queryId: typeof e.data?.queryId === 'string' ? e.data.queryId : undefined,
    message: typeof e.message === 'string' ? e.message : String(err),
  };
}

export function classify(code: string | undefined): Row {
  const known = code === undefined ? undefined : ERROR_TABLE[code];
  if (known) return known;
  if (code !== undefined && DRIVER_NETWORK.test(code)) return row('transient', 'SNOWFLAKE_NETWORK', true);
  if (code === undefined) return row('transient', 'SNOWFLAKE_NETWORK', true);
  // An unknown Snowflake code: a user error is far more likely than a transient one (5-digit codes
  // are SQL errors), so it is not retried.
  return row('sql', 'SNOWFLAKE_ERROR', false);
}

/** Whether the error means the session (or its token) is gone: the connection must be discarded. */
export function isSessionGone(err: unknown): boolean {
  return classify(infoOf(err).code).class === 'session';
}

/** Removes anything shaped like a credential from a message (tokens, keys, passwords). */
export function scrub(message: string): string {
  return message
    .replace(/-----BEGIN [A-Z ]+-----[\s\S]*?-----END [A-Z ]+-----/g, '[redacted key]')
    .replace(/(Snowflake Token=|token["']?\s*[:=]\s*["']?)[^\s"',}]+/gi, '$1[redacted]')
    .replace(/(password["']?\s*[:=]\s*["']?)[^\s"',}]+/gi, '$1[redacted]')
    .replace(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g, '[redacted jwt]');
}

/** The JobError of a Snowflake failure, with code, SQL state and query id in its details. */
export function snowflakeJobError(err: unknown, what: string, queryId?: string): JobError {
  if (err instanceof JobError) return err;
  const info = infoOf(err);
  const cls = classify(info.code);
  const id = info.queryId ?? queryId;
  return new JobError(cls.code, scrub(`${what}: ${info.message}`), {
    retryable: cls.retryable,
    details: {
      snowflake_code: info.code ?? null,
      sql_state: info.sqlState ?? null,
      query_id: id ?? null,
      class: cls.class,
    },
  });
}
