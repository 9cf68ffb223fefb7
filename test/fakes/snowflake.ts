/**
 * A fake Snowflake on 127.0.0.1, speaking the REST protocol snowflake-sdk 3.x speaks, and executing
 * the SQL it receives on DuckDB (in memory), so answers are computed, not canned.
 *
 * Endpoints: `POST /session/v1/login-request` (key-pair JWT verified against the registered public
 * key: RS256 signature, `iss` = ACCOUNT.USER.SHA256:<fingerprint>, `sub`, `exp` in ms; an OAuth
 * token; or a password),
 * `POST /queries/v1/query-request` (asyncExec answers code 333334 with the query id; otherwise the
 * result), `GET /monitoring/queries/{id}`, `GET /queries/{id}/result` (333333 while running; the
 * error of a failed query), `POST /queries/{id}/abort-request`, `POST /session?delete=true` (aborts
 * the session's running queries, as Snowflake does), `POST /session/heartbeat`, `POST
 * /session/token-request`, `POST /telemetry/send`. Errors are Snowflake's: HTTP 200 with
 * `success: false`, a code, a message and `data.sqlState`.
 *
 * SQL. DuckDB runs it, inside a database named after the configured one. The Snowflake-only parts
 * the operator sends are translated, a small documented set:
 * - `SELECT SYSTEM$CANCEL_QUERY('<id>')` cancels that query (from any session);
 * - a trailing `CLUSTER BY (…)` is dropped; TIMESTAMP_TZ/LTZ/NTZ are DuckDB type aliases (VARIANT it has);
 * - `TABLE(INFORMATION_SCHEMA.QUERY_HISTORY(…))` and `…QUERY_HISTORY_BY_SESSION(…)` read the fake's
 *   own history (`_SF.QUERY_HISTORY`: query_id, query_tag, execution_status, start_time, query_text);
 * - `CREATE [OR REPLACE] SNOWFLAKE.ML.CLASSIFICATION <name>(INPUT_DATA =>
 *   SYSTEM$QUERY_REFERENCE('<select>'), TARGET_COLNAME => '<col>')` trains a nearest-centroid model
 *   (numeric features; a feature's importance is its share of the spread of the class centroids),
 *   evaluated on its own training rows; `CALL <name>!SHOW_EVALUATION_METRICS()`,
 *   `!SHOW_GLOBAL_EVALUATION_METRICS()`, `!SHOW_CONFUSION_MATRIX()` and `!SHOW_FEATURE_IMPORTANCE()`
 *   answer with Snowflake's columns.
 * DuckDB errors become Snowflake codes: missing object 002003 (42S02), invalid identifier 000904,
 * syntax 001003 (42000), anything else 100090.
 *
 * - `<db>.INFORMATION_SCHEMA.COLUMNS` reads DuckDB's, names upper-cased as Snowflake stores unquoted ones.
 *
 * Query time is DuckDB's, plus what `delays` add (a test slows matching statements to cancel, crash
 * or drain mid-query); an abort or a statement timeout (STATEMENT_TIMEOUT_IN_SECONDS) ends such a wait.
 *
 * Every value it answers is a row of the conformance table in executors/snowflake/README.md (with
 * its source): query ids Snowflake-shaped, not RFC 4122 (`snowflakeQueryId`); a query `holds` in
 * BLOCKED (or QUEUED, RESUMING_WAREHOUSE, …) then RUNNING then SUCCESS; an abort leaves it ABORTING
 * for `settings.abortingMs` before ABORTED; `expireTokens` answers 390112 to the session token and
 * 390114 to the renewal with the master token; `settings.refuseLogins` drops login connections;
 * MULTI_STATEMENT_COUNT (the statement's, else `settings.multiStatementCount`, default 1) refuses a
 * text of another number of statements (counted by DuckDB's parser) with the documented message;
 * DATE and TIMESTAMP values go out in Snowflake's JSON wire format.
 */
import { createHash, createPublicKey, type KeyObject, randomBytes, randomUUID, verify } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { type DuckDBConnection, DuckDBInstance, type DuckDBType } from '@duckdb/node-api';

/** The statuses this fake reports (a subset of snowflake-sdk's `constants/query_status.js`). */
export type QueryStatus = HoldStatus | 'RUNNING' | 'ABORTING' | 'SUCCESS' | FailedStatus | 'ABORTED';
/** Statuses a query may report before it runs (a test holds it there for a while). */
export type HoldStatus =
  | 'BLOCKED'
  | 'QUEUED'
  | 'RESUMING_WAREHOUSE'
  | 'QUEUED_REPARING_WAREHOUSE'
  | 'NO_DATA'
  | 'RESTARTED';
/** Statuses a failed query ends in. */
export type FailedStatus = 'FAILED_WITH_ERROR' | 'FAILED_WITH_INCIDENT' | 'DISCONNECTED';
/** Statuses of a query that has not ended: the result endpoint answers 333333 (in progress). */
const UNENDED: ReadonlySet<QueryStatus> = new Set<QueryStatus>([
  'RUNNING',
  'ABORTING',
  'BLOCKED',
  'QUEUED',
  'RESUMING_WAREHOUSE',
  'QUEUED_REPARING_WAREHOUSE',
  'NO_DATA',
  'RESTARTED',
]);

/**
 * A Snowflake-shaped query id, like `01bfd516-0009-ae23-0000-4c390101d1aa` (conformance table,
 * "Query id"): 8-4-4-4-12 lower-case hex, but NOT an RFC 4122 UUID. The third group here never
 * starts with a version digit 1-8 and the fourth is `0000` (no RFC variant bits), as in the ids
 * Snowflake hands out, so a validator that insists on RFC UUIDs fails against this fake as it does
 * against Snowflake.
 */
export function snowflakeQueryId(): string {
  const hex = (n: number) =>
    randomBytes(Math.ceil(n / 2))
      .toString('hex')
      .slice(0, n);
  const third = `${'9abcdef0'[randomBytes(1)[0]! % 8]}${hex(3)}`;
  return `01${hex(6)}-${hex(4)}-${third}-0000-${hex(12)}`;
}

export interface FakeQuery {
  id: string;
  sql: string;
  sessionId: number;
  tag: string | undefined;
  parameters: Record<string, unknown>;
  status: QueryStatus;
  startedAt: number;
  endedAt?: number;
  error?: { code: string; message: string; sqlState: string };
  result?: { rowtype: unknown[]; rowset: unknown[][]; statementTypeId?: number };
  /** When the abort (SYSTEM$CANCEL_QUERY, abort-request, session delete) arrived. */
  abortedAt?: number;
  /** DuckDB's own time for this statement (ms). */
  engineMs?: number;
  abort?: () => void;
}

export interface FakeSession {
  id: number;
  token: string;
  masterToken: string;
  user: string;
  role?: string | undefined;
  warehouse?: string | undefined;
  deleted: boolean;
  /** Every request on this session answers this code (390114 expired, 390111 gone, 407002). */
  failWith?: string;
  /** The session token expired: requests answer 390112; a renewal with the master token may help. */
  tokenExpired?: boolean;
  /** The master token expired too: the renewal (`/session/token-request`) answers 390114. */
  masterExpired?: boolean;
  /** The tokens expire at the next request of this kind (after the pool's heartbeat validated the session). */
  expireAt?: { on: 'status' | 'submit'; master: boolean };
}

export interface Delay {
  match: RegExp;
  ms: number;
}

/** A matching query reports `status` (BLOCKED by default) for `ms` before it runs. */
export interface Hold extends Delay {
  status?: HoldStatus;
}

export interface InjectedFailure {
  match: RegExp;
  /** `submit`: the query-request answers the error; `execute`: the query ends FAILED_WITH_ERROR. */
  at: 'submit' | 'execute';
  /** `execute`: the status the query ends in (FAILED_WITH_ERROR by default). */
  status?: FailedStatus;
  code: string;
  message: string;
  sqlState?: string;
  times?: number;
  /**
   * `submit`: answer this HTTP status instead (429: "too many requests", which Snowflake's SQL API
   * lists with no error code, so the body here is plain text; the driver retries it itself,
   * `util.js` `isRetryableHttpError`). `code` and `message` are then unused.
   */
  httpStatus?: number;
}

export interface FakeSnowflakeOptions {
  account: string;
  user: string;
  /** The user's registered RSA public key (PEM); JWT logins are verified against it. */
  publicKeyPem?: string;
  /** Accepted for password logins (development only). */
  password?: string;
  /** Accepted for OAUTH logins (the access token). */
  oauthToken?: string;
  /** The database the DuckDB catalogue is named after (unqualified names resolve in it). */
  database: string;
}

/** What the account is set to, and the faults a test turns on (each from the conformance table). */
export interface FakeSnowflakeSettings {
  /** An abort leaves the query ABORTING this long before it is ABORTED (0: at once). */
  abortingMs: number;
  /** Refuse this many login requests by dropping the connection (a network failure), then accept. */
  refuseLogins: number;
  /**
   * The account's MULTI_STATEMENT_COUNT (a session parameter; Snowflake's default 1). A statement's
   * own MULTI_STATEMENT_COUNT parameter overrides it; 0 means any number.
   */
  multiStatementCount: number;
}

export interface FakeSnowflakeHooks {
  /** Called once a query exists (and runs), before the query-request is answered. */
  onSubmit?: (q: FakeQuery) => void | Promise<void>;
}

export interface FakeSnowflake {
  url: string;
  db: DuckDBConnection;
  queries: Map<string, FakeQuery>;
  sessions: Map<number, FakeSession>;
  /** Logins accepted and refused. */
  logins: { ok: number; refused: string[] };
  /** What happened, in order: `submit <id>`, `abort <id>`, `status <id> <s>`, `session-delete <n>`… */
  events: string[];
  delays: Delay[];
  /** Matching queries report BLOCKED (waiting on a lock), or another hold status, this long before they run. */
  holds: Hold[];
  failures: InjectedFailure[];
  hooks: FakeSnowflakeHooks;
  settings: FakeSnowflakeSettings;
  /** Queries whose SQL matches, in submission order. */
  executions(match: RegExp): FakeQuery[];
  /** Every live session now answers `code` (the token expired, the session is gone). */
  expireSessions(code?: string): void;
  /**
   * Every live session's session token expires (requests answer 390112), and with `master` its
   * master token too (the renewal answers 390114: only a new login goes on). With `at`, they expire
   * at the session's next status poll or submission instead of now: after the pool's validation
   * (a heartbeat) passed, as a token that runs out between the two does.
   */
  expireTokens(master: boolean, at?: 'status' | 'submit'): void;
  /** Direct SQL on the fake's DuckDB (a test checks effects). */
  sql(sql: string): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

const IN_PROGRESS_ASYNC = '333334';
const IN_PROGRESS = '333333';
const STATEMENT_TYPE: Record<string, number> = {
  INSERT: 0x3100,
  UPDATE: 0x3200,
  DELETE: 0x3300,
  MERGE: 0x3400,
};

export async function startSnowflakeFake(options: FakeSnowflakeOptions): Promise<FakeSnowflake> {
  const instance = await DuckDBInstance.create(':memory:');
  const db = await instance.connect();
  const database = options.database.toUpperCase();
  await db.run(`ATTACH ':memory:' AS "${database}"`);
  await db.run(`USE "${database}"`);
  await db.run('CREATE SCHEMA IF NOT EXISTS _SF');
  // Snowflake's type names DuckDB lacks (STRING, TEXT and the rest it knows).
  for (const [name, as] of [
    ['TIMESTAMP_TZ', 'TIMESTAMPTZ'],
    ['TIMESTAMP_LTZ', 'TIMESTAMPTZ'],
    ['TIMESTAMP_NTZ', 'TIMESTAMP'],
  ]) {
    await db.run(`CREATE TYPE ${name} AS ${as}`);
  }
  await db.run(
    `CREATE TABLE _SF.QUERY_HISTORY (query_id VARCHAR, query_tag VARCHAR, execution_status VARCHAR,
       start_time TIMESTAMP, query_text VARCHAR, session_id BIGINT)`,
  );
  const publicKey: KeyObject | undefined = options.publicKeyPem
    ? createPublicKey(options.publicKeyPem)
    : undefined;
  const fingerprint = publicKey
    ? `SHA256:${createHash('sha256')
        .update(publicKey.export({ format: 'der', type: 'spki' }))
        .digest('base64')}`
    : undefined;

  const queries = new Map<string, FakeQuery>();
  const sessions = new Map<number, FakeSession>();
  const byToken = new Map<string, FakeSession>();
  const events: string[] = [];
  const delays: Delay[] = [];
  const holds: Hold[] = [];
  const settings: FakeSnowflakeSettings = { abortingMs: 0, refuseLogins: 0, multiStatementCount: 1 };
  const byMaster = new Map<string, FakeSession>();
  const failures: InjectedFailure[] = [];
  const logins = { ok: 0, refused: [] as string[] };
  const hooks: FakeSnowflakeHooks = {};
  const models = new Map<string, Model>();
  let nextSession = 1000;
  // One DuckDB connection: statements run one at a time, in submission order.
  let engine: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = engine.then(fn, fn);
    engine = run.catch(() => undefined);
    return run;
  };

  const setStatus = async (q: FakeQuery, status: QueryStatus) => {
    q.status = status;
    if (!UNENDED.has(status)) q.endedAt = Date.now();
    events.push(`status ${q.id} ${status}`);
    await serial(() =>
      db.run('UPDATE _SF.QUERY_HISTORY SET execution_status = ? WHERE query_id = ?', [
        status === 'ABORTED' ? 'FAILED_WITH_ERROR' : status,
        q.id,
      ]),
    );
  };

  const abortQuery = (q: FakeQuery, why: string): boolean => {
    if (q.status === 'ABORTING') {
      // Asked again while it aborts: Snowflake's documentation does not say what changes; nothing here.
      events.push(`abort-again ${q.id} ${why}`);
      return true;
    }
    if (!UNENDED.has(q.status)) return false;
    q.abortedAt ??= Date.now();
    events.push(`abort ${q.id} ${why}`);
    q.abort?.();
    return true;
  };

  /** Runs one statement to its end, recording the outcome on the query. */
  const execute = async (q: FakeQuery, binds: unknown[]) => {
    const injected = takeFailure(failures, 'execute', q.sql);
    const timeoutS = Number(q.parameters.STATEMENT_TIMEOUT_IN_SECONDS ?? 0);
    const fail = async (code: string, message: string, sqlState: string, status: QueryStatus) => {
      q.error = { code, message, sqlState };
      await setStatus(q, status);
    };
    const aborted = async () => {
      // ABORTING first, for as long as the settings say; then ABORTED (conformance table, statuses).
      if (settings.abortingMs > 0) {
        await setStatus(q, 'ABORTING');
        await new Promise((resolve) => setTimeout(resolve, settings.abortingMs));
      }
      return fail('000604', 'SQL execution canceled', '57014', 'ABORTED');
    };
    try {
      // A statement waiting on a lock reports BLOCKED (or queued, or its warehouse resuming…), then runs.
      const hold = holds.find((d) => d.match.test(q.sql));
      if (hold && hold.ms > 0) {
        await setStatus(q, hold.status ?? 'BLOCKED');
        const how = await new Promise<'done' | 'aborted'>((resolve) => {
          const t = setTimeout(() => resolve('done'), hold.ms);
          q.abort = () => {
            clearTimeout(t);
            resolve('aborted');
          };
        });
        if (how === 'aborted' || q.abortedAt !== undefined) return await aborted();
        await setStatus(q, 'RUNNING');
      }
      // The statement's wait (a delay a test asked for) ends on an abort or the statement timeout.
      const delay = delays.find((d) => d.match.test(q.sql))?.ms ?? 0;
      const waited = await new Promise<'done' | 'aborted' | 'timeout'>((resolve) => {
        const timers: NodeJS.Timeout[] = [];
        const end = (how: 'done' | 'aborted' | 'timeout') => {
          for (const t of timers) clearTimeout(t);
          resolve(how);
        };
        q.abort = () => end('aborted');
        if (timeoutS > 0 && delay > timeoutS * 1000)
          timers.push(setTimeout(() => end('timeout'), timeoutS * 1000));
        timers.push(setTimeout(() => end('done'), delay));
      });
      if (waited === 'aborted' || q.abortedAt !== undefined) return await aborted();
      if (waited === 'timeout') {
        return await fail(
          '000630',
          `Statement reached its statement or warehouse timeout of ${timeoutS} second(s) and was canceled.`,
          '57014',
          'FAILED_WITH_ERROR',
        );
      }
      if (injected) {
        return await fail(
          injected.code,
          injected.message,
          injected.sqlState ?? '42000',
          injected.status ?? 'FAILED_WITH_ERROR',
        );
      }
      const started = performance.now();
      q.result = await serial(() => runSql(q, binds));
      q.engineMs = performance.now() - started;
      if (q.abortedAt !== undefined) return await aborted();
      await setStatus(q, 'SUCCESS');
    } catch (err) {
      const e = snowflakeError(err);
      await fail(e.code, e.message, e.sqlState, 'FAILED_WITH_ERROR');
    }
  };

  const runSql = async (q: FakeQuery, binds: unknown[]): Promise<NonNullable<FakeQuery['result']>> => {
    const sql = q.sql.trim().replace(/;\s*$/, '');
    const cancel = /^SELECT\s+SYSTEM\$CANCEL_QUERY\s*\(\s*'([0-9a-f-]{36})'\s*\)\s*$/i.exec(sql);
    if (cancel) {
      const target = queries.get(cancel[1] as string);
      if (!target) throw new SfError('000709', `Statement ${cancel[1]} not found`, '02000');
      abortQuery(target, `SYSTEM$CANCEL_QUERY from session ${q.sessionId}`);
      return textResult('SYSTEM$CANCEL_QUERY', [[`query [${target.id}] terminated.`]]);
    }
    const create =
      /^CREATE\s+(?:OR\s+REPLACE\s+)?SNOWFLAKE\.ML\.CLASSIFICATION\s+(.+?)\s*\(\s*INPUT_DATA\s*=>\s*SYSTEM\$QUERY_REFERENCE\s*\(\s*'((?:[^']|'')*)'\s*\)\s*,\s*TARGET_COLNAME\s*=>\s*'((?:[^']|'')*)'\s*\)$/is.exec(
        sql,
      );
    if (create) {
      const name = modelName(create[1] as string);
      const data = await db.runAndReadAll((create[2] as string).replaceAll("''", "'"));
      models.set(name, train(data.getRowObjectsJS(), (create[3] as string).replaceAll("''", "'")));
      return textResult('status', [[`Instance ${name} successfully created.`]]);
    }
    const call = /^CALL\s+(.+?)!(SHOW_[A-Z_]+)\s*\(\s*\)$/is.exec(sql);
    if (call) {
      const model = models.get(modelName(call[1] as string));
      if (!model)
        throw new SfError('002003', `Instance ${call[1]} does not exist or not authorized.`, '02000');
      return modelResult(model, (call[2] as string).toUpperCase());
    }
    const translated = sql
      // Clustering keys mean nothing to DuckDB.
      .replace(/\s+CLUSTER\s+BY\s*\([^()]*\)\s*$/i, '')
      // <db>.INFORMATION_SCHEMA.COLUMNS, with names as Snowflake stores them: DuckDB keeps an
      // unquoted name as written, Snowflake upper-cases it (a quoted lower-case name reads upper-case
      // here: a limit of the fake).
      .replace(
        /(?:"[^"]+"\.)?INFORMATION_SCHEMA\.COLUMNS\b/gi,
        () => `(SELECT upper(table_schema) AS TABLE_SCHEMA, upper(table_name) AS TABLE_NAME,
            CASE WHEN regexp_matches(column_name, '^[A-Za-z_][A-Za-z0-9_$]*$') THEN upper(column_name) ELSE column_name END AS COLUMN_NAME,
            data_type AS DATA_TYPE FROM information_schema.columns WHERE table_catalog = '${database}')`,
      )
      .replace(
        /TABLE\s*\(\s*INFORMATION_SCHEMA\.QUERY_HISTORY(?:_BY_SESSION)?\s*\((?:[^()]|\([^()]*\))*\)\s*\)/gi,
        '_SF.QUERY_HISTORY',
      );
    const reader = await db.runAndReadAll(translated, binds as never);
    const kind = /^\s*(INSERT|UPDATE|DELETE|MERGE)\b/i.exec(sql)?.[1]?.toUpperCase();
    if (kind) {
      const n = Number(reader.getRowsJS()[0]?.[0] ?? 0);
      const column = {
        INSERT: 'number of rows inserted',
        UPDATE: 'number of rows updated',
        DELETE: 'number of rows deleted',
        MERGE: 'number of rows inserted',
      }[kind] as string;
      return {
        rowtype: [fixedColumn(column)],
        rowset: [[String(n)]],
        statementTypeId: STATEMENT_TYPE[kind],
      };
    }
    const names = reader.columnNames();
    const types = reader.columnTypes();
    return {
      rowtype: names.map((n, i) => columnOf(n, types[i] as DuckDBType)),
      rowset: ((raw) =>
        reader
          .getRowsJS()
          .map((row, r) => row.map((v, i) => temporalWire(types[i] as DuckDBType, raw[r]?.[i]) ?? wire(v))))(
        reader.getRows(),
      ),
    };
  };

  const reply = (res: ServerResponse, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(200, { 'content-type': 'application/json' }).end(text);
  };
  const failure = (res: ServerResponse, code: string, message: string, data: Record<string, unknown> = {}) =>
    reply(res, { success: false, code, message, data: { errorCode: code, ...data } });

  const resultBody = (q: FakeQuery) => {
    if (UNENDED.has(q.status)) {
      return {
        success: true,
        code: IN_PROGRESS,
        message: 'Query execution in progress',
        data: { queryId: q.id, getResultUrl: `/queries/${q.id}/result` },
      };
    }
    if (q.status !== 'SUCCESS' || !q.result) {
      const e = q.error ?? { code: '000604', message: 'SQL execution canceled', sqlState: '57014' };
      return {
        success: false,
        code: e.code,
        message: e.message,
        data: { queryId: q.id, sqlState: e.sqlState, errorCode: e.code, type: 'QUERY' },
      };
    }
    return {
      success: true,
      code: null,
      message: null,
      data: {
        queryId: q.id,
        rowtype: q.result.rowtype,
        rowset: q.result.rowset,
        total: q.result.rowset.length,
        returned: q.result.rowset.length,
        queryResultFormat: 'json',
        version: 1,
        statementTypeId: q.result.statementTypeId ?? 0x1000,
        parameters: [],
      },
    };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const raw = await readBody(req);
    const body = raw.length === 0 ? {} : JSON.parse(raw.toString('utf8'));
    const path = url.pathname;

    if (req.method === 'POST' && path === '/session/v1/login-request') {
      if (settings.refuseLogins > 0) {
        settings.refuseLogins--;
        logins.refused.push('network');
        events.push('login refused (connection dropped)');
        req.socket.destroy();
        return;
      }
      const d = body.data ?? {};
      const refuse = (why: string, code = '390144') => {
        logins.refused.push(why);
        failure(res, code, why);
      };
      if (String(d.ACCOUNT_NAME ?? '').toUpperCase() !== options.account.toUpperCase()) {
        return refuse('Incorrect username or password was specified.', '390100');
      }
      if (String(d.LOGIN_NAME ?? '').toUpperCase() !== options.user.toUpperCase()) {
        return refuse('Incorrect username or password was specified.', '390100');
      }
      if (d.AUTHENTICATOR === 'SNOWFLAKE_JWT') {
        const why = checkJwt(String(d.TOKEN ?? ''), publicKey, fingerprint, options);
        if (why) return refuse(`JWT token is invalid: ${why}`);
      } else if (d.AUTHENTICATOR === 'OAUTH') {
        if (options.oauthToken === undefined || d.TOKEN !== options.oauthToken) {
          return refuse('Invalid OAuth access token.', '390303');
        }
      } else if (options.password === undefined || d.PASSWORD !== options.password) {
        return refuse('Incorrect username or password was specified.', '390100');
      }
      const s: FakeSession = {
        id: nextSession++,
        token: `ST-${randomUUID()}`,
        masterToken: `MT-${randomUUID()}`,
        user: options.user,
        role: url.searchParams.get('roleName') ?? undefined,
        warehouse: url.searchParams.get('warehouse') ?? undefined,
        deleted: false,
      };
      sessions.set(s.id, s);
      byToken.set(s.token, s);
      byMaster.set(s.masterToken, s);
      logins.ok++;
      events.push(`login ${s.id}`);
      return reply(res, {
        success: true,
        code: null,
        message: null,
        data: {
          token: s.token,
          masterToken: s.masterToken,
          validityInSeconds: 3600,
          masterValidityInSeconds: 14400,
          sessionId: s.id,
          parameters: [],
          sessionInfo: {
            databaseName: database,
            schemaName: url.searchParams.get('schemaName'),
            warehouseName: s.warehouse,
            roleName: s.role,
          },
        },
      });
    }
    if (req.method === 'POST' && path === '/telemetry/send') return reply(res, { success: true, data: null });

    const auth = /^Snowflake Token="([^"]+)"$/.exec(req.headers.authorization ?? '');
    // The renewal is authorized by the master token (snowflake-sdk services/sf.js MasterTokenRequest).
    if (req.method === 'POST' && path === '/session/token-request') {
      const master = auth ? byMaster.get(auth[1] as string) : undefined;
      if (!master || master.deleted) return failure(res, '390111', 'Session no longer exists.');
      events.push(`renew ${master.id}`);
      if (master.masterExpired) {
        return failure(res, '390114', 'Authentication token has expired.  The user must authenticate again.');
      }
      byToken.delete(master.token);
      master.token = `ST-${randomUUID()}`;
      master.tokenExpired = false;
      byToken.set(master.token, master);
      return reply(res, {
        success: true,
        data: { sessionToken: master.token, masterToken: master.masterToken, validityInSecondsST: 3600 },
      });
    }
    const session = auth ? byToken.get(auth[1] as string) : undefined;
    if (!session || session.deleted) return failure(res, '390111', 'Session no longer exists.');
    const kind = path.startsWith('/monitoring/queries/')
      ? 'status'
      : path === '/queries/v1/query-request'
        ? 'submit'
        : undefined;
    if (session.expireAt && session.expireAt.on === kind) {
      session.tokenExpired = true;
      session.masterExpired = session.expireAt.master;
      session.expireAt = undefined;
    }
    if (session.tokenExpired) {
      events.push(`token-expired ${session.id}`);
      return failure(res, '390112', 'Your session has expired. Please login again.');
    }
    if (session.failWith) {
      return failure(
        res,
        session.failWith,
        'Authentication token has expired. The user must authenticate again.',
      );
    }

    if (req.method === 'POST' && path === '/session') {
      if (url.searchParams.get('delete') === 'true') {
        session.deleted = true;
        events.push(`session-delete ${session.id}`);
        for (const q of queries.values()) {
          if (q.sessionId === session.id) abortQuery(q, `session ${session.id} deleted`);
        }
      }
      return reply(res, { success: true, code: null, message: null, data: null });
    }
    if (req.method === 'POST' && path === '/session/heartbeat') {
      return reply(res, {
        success: true,
        data: { sessionToken: session.token, masterToken: session.masterToken, validityInSecondsST: 3600 },
      });
    }
    if (req.method === 'POST' && path === '/queries/v1/query-request') {
      const sql = String(body.sqlText ?? '');
      const injected = takeFailure(failures, 'submit', sql);
      if (injected?.httpStatus !== undefined) {
        events.push(`http ${injected.httpStatus} query-request`);
        res.writeHead(injected.httpStatus, { 'content-type': 'text/plain' });
        return res.end('Too many requests');
      }
      if (injected) {
        return failure(res, injected.code, injected.message, { sqlState: injected.sqlState ?? '42000' });
      }
      const parameters: Record<string, unknown> = body.parameters ?? {};
      // MULTI_STATEMENT_COUNT: the statement's parameter, else the account's; 0 allows any number.
      // DuckDB's own parser counts the statements (not the operator's tokenizer).
      const desired = Number(parameters.MULTI_STATEMENT_COUNT ?? settings.multiStatementCount);
      const actual = await serial(async () => (await db.extractStatements(sql)).count).catch(() => 1);
      if (desired !== 0 && actual !== desired) {
        events.push(`refused multi-statement ${actual}/${desired}`);
        return failure(
          res,
          '000008',
          `Actual statement count ${actual} did not match the desired statement count ${desired}.`,
          { sqlState: '0A000' },
        );
      }
      const q: FakeQuery = {
        id: snowflakeQueryId(),
        sql,
        sessionId: session.id,
        tag: parameters.QUERY_TAG === undefined ? undefined : String(parameters.QUERY_TAG),
        parameters,
        status: 'RUNNING',
        startedAt: Date.now(),
      };
      queries.set(q.id, q);
      events.push(`submit ${q.id}`);
      await serial(() =>
        db.run(`INSERT INTO _SF.QUERY_HISTORY VALUES (?, ?, 'RUNNING', now()::TIMESTAMP, ?, ?)`, [
          q.id,
          q.tag ?? null,
          sql,
          session.id,
        ] as never),
      );
      const binds = bindValues(body.bindings);
      const done = execute(q, binds);
      await hooks.onSubmit?.(q);
      if (body.asyncExec === true) {
        return reply(res, {
          success: true,
          code: IN_PROGRESS_ASYNC,
          message:
            'Asynchronous execution in progress. Use provided query id to perform query monitoring and management.',
          data: { queryId: q.id, getResultUrl: `/queries/${q.id}/result` },
        });
      }
      await done;
      return reply(res, resultBody(q));
    }
    const monitor = /^\/monitoring\/queries\/([0-9a-f-]{36})$/.exec(path);
    if (req.method === 'GET' && monitor) {
      const q = queries.get(monitor[1] as string);
      if (!q) return reply(res, { success: true, data: { queries: [] } });
      return reply(res, {
        success: true,
        code: null,
        message: null,
        data: {
          queries: [
            {
              id: q.id,
              status: q.status,
              sqlText: q.sql,
              startTime: q.startedAt,
              endTime: q.endedAt ?? 0,
              errorCode: q.error?.code,
              errorMessage: q.error?.message,
            },
          ],
        },
      });
    }
    const result = /^\/queries\/([0-9a-f-]{36})\/result$/.exec(path);
    if (req.method === 'GET' && result) {
      const q = queries.get(result[1] as string);
      if (!q) return failure(res, '000709', `Statement ${result[1]} not found`, { sqlState: '02000' });
      return reply(res, resultBody(q));
    }
    const abort = /^\/queries\/([0-9a-f-]{36})\/abort-request$/.exec(path);
    if (req.method === 'POST' && abort) {
      const q = queries.get(abort[1] as string);
      if (q) abortQuery(q, 'abort-request');
      return reply(res, { success: true, data: null });
    }
    if (req.method === 'POST' && path === '/queries/v1/abort-request') {
      return reply(res, { success: true, data: null });
    }
    res.writeHead(404).end();
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    db,
    queries,
    sessions,
    logins,
    events,
    delays,
    holds,
    failures,
    hooks,
    settings,
    executions: (match) => [...queries.values()].filter((q) => match.test(q.sql)),
    expireSessions(code = '390114') {
      for (const s of sessions.values()) if (!s.deleted) s.failWith = code;
    },
    expireTokens(master, at) {
      for (const s of sessions.values()) {
        if (s.deleted) continue;
        if (at) {
          s.expireAt = { on: at, master };
          continue;
        }
        s.tokenExpired = true;
        if (master) s.masterExpired = true;
      }
    },
    async sql(text) {
      return serial(
        async () => (await db.runAndReadAll(text)).getRowObjectsJS() as Record<string, unknown>[],
      );
    },
    async close() {
      for (const q of queries.values()) q.abort?.();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await engine;
      db.closeSync();
      instance.closeSync();
    },
  };
}

class SfError extends Error {
  readonly code: string;
  readonly sqlState: string;
  constructor(code: string, message: string, sqlState: string) {
    super(message);
    this.code = code;
    this.sqlState = sqlState;
  }
}

function snowflakeError(err: unknown): { code: string; message: string; sqlState: string } {
  if (err instanceof SfError) return { code: err.code, message: err.message, sqlState: err.sqlState };
  const m = err instanceof Error ? err.message : String(err);
  const first = m.split('\n')[0] ?? m;
  if (/^Catalog Error: .*does not exist/i.test(first)) {
    return { code: '002003', message: `SQL compilation error: ${first}`, sqlState: '42S02' };
  }
  if (/^Binder Error: Referenced column/i.test(first)) {
    return {
      code: '000904',
      message: `SQL compilation error: invalid identifier: ${first}`,
      sqlState: '42000',
    };
  }
  if (/^Parser Error/i.test(first)) {
    return { code: '001003', message: `SQL compilation error: syntax error: ${first}`, sqlState: '42000' };
  }
  return { code: '100090', message: first, sqlState: '22000' };
}

function takeFailure(failures: InjectedFailure[], at: InjectedFailure['at'], sql: string) {
  const i = failures.findIndex((f) => f.at === at && f.match.test(sql));
  if (i < 0) return undefined;
  const f = failures[i] as InjectedFailure;
  if (f.times === undefined || --f.times <= 0) failures.splice(i, 1);
  return f;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const raw = Buffer.concat(chunks);
  return req.headers['content-encoding'] === 'gzip' || (raw[0] === 0x1f && raw[1] === 0x8b)
    ? gunzipSync(raw)
    : raw;
}

/** Why a key-pair JWT is refused, or undefined when it is valid. */
function checkJwt(
  token: string,
  key: KeyObject | undefined,
  fingerprint: string | undefined,
  o: FakeSnowflakeOptions,
): string | undefined {
  if (!key) return 'no public key registered for the user';
  const parts = token.split('.');
  if (parts.length !== 3) return 'malformed';
  const [h, p, s] = parts as [string, string, string];
  const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
  if (header.alg !== 'RS256') return `algorithm ${header.alg}`;
  if (!verify('RSA-SHA256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url')))
    return 'bad signature';
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  const who = `${o.account.toUpperCase()}.${o.user.toUpperCase()}`;
  if (claims.sub !== who) return `subject ${claims.sub}`;
  if (claims.iss !== `${who}.${fingerprint}`) return `issuer ${claims.iss}`;
  // snowflake-sdk writes iat/exp in milliseconds.
  if (typeof claims.exp !== 'number' || claims.exp < Date.now()) return 'expired';
  return undefined;
}

function bindValues(bindings: unknown): unknown[] {
  if (!bindings || typeof bindings !== 'object') return [];
  const entries = Object.entries(bindings as Record<string, { type: string; value: unknown }>).sort(
    (a, b) => Number(a[0]) - Number(b[0]),
  );
  return entries.map(([, b]) => {
    if (b.value === null || b.value === undefined) return null;
    if (b.type === 'FIXED') return Number(b.value);
    if (b.type === 'REAL') return Number(b.value);
    if (b.type === 'BOOLEAN') return b.value === true || b.value === 'true' || b.value === '1';
    return String(b.value);
  });
}

function fixedColumn(name: string) {
  return { name, type: 'fixed', scale: 0, precision: 19, nullable: false, length: null, byteLength: null };
}

function textResult(name: string, rows: string[][]) {
  return {
    rowtype: [
      {
        name,
        type: 'text',
        length: 16_777_216,
        byteLength: 16_777_216,
        nullable: true,
        scale: null,
        precision: null,
      },
    ],
    rowset: rows,
  };
}

/**
 * DATE and TIMESTAMP values as Snowflake's JSON result format sends them (conformance table, "Result
 * shapes"; snowflake-sdk `connection/result/column.js` convertRawDate / convertRawTimestampNtz /
 * convertRawTimestampTz): a DATE as days since the epoch; TIMESTAMP_NTZ as epoch seconds with `scale`
 * fraction digits (Snowflake's default precision is 9); TIMESTAMP_TZ (result version 1) as that
 * plus a space and the offset in minutes + 1440. DuckDB keeps TIMESTAMPTZ as a UTC instant, so the
 * offset here is always +00:00 (1440): a limit of the fake.
 */
function temporalWire(type: DuckDBType, value: unknown): string | null | undefined {
  const t = type.toString();
  if (value === null || value === undefined) return undefined;
  if (t === 'DATE') return String((value as { days: number }).days);
  if (t === 'TIMESTAMP' || t === 'TIMESTAMP WITH TIME ZONE') {
    const micros = (value as { micros: bigint }).micros;
    const secs = micros >= 0n ? micros / 1_000_000n : -((-micros + 999_999n) / 1_000_000n);
    const frac = micros - secs * 1_000_000n;
    const text = `${secs}.${frac.toString().padStart(6, '0')}000`;
    return t === 'TIMESTAMP' ? text : `${text} 1440`;
  }
  return undefined;
}

function columnOf(name: string, type: DuckDBType) {
  const t = type.toString();
  const temporal = { DATE: 'date', TIMESTAMP: 'timestamp_ntz', 'TIMESTAMP WITH TIME ZONE': 'timestamp_tz' }[
    t
  ];
  if (temporal) {
    return {
      name,
      type: temporal,
      nullable: true,
      scale: temporal === 'date' ? null : 9,
      precision: 0,
      length: null,
      byteLength: null,
    };
  }
  if (/^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT)$/.test(t)) {
    return { ...fixedColumn(name), nullable: true };
  }
  const dec = /^DECIMAL\((\d+),(\d+)\)$/.exec(t);
  if (dec) return { ...fixedColumn(name), precision: Number(dec[1]), scale: Number(dec[2]), nullable: true };
  if (/^(FLOAT|DOUBLE)$/.test(t))
    return {
      name,
      type: 'real',
      nullable: true,
      scale: null,
      precision: null,
      length: null,
      byteLength: null,
    };
  if (t === 'BOOLEAN')
    return {
      name,
      type: 'boolean',
      nullable: true,
      scale: null,
      precision: null,
      length: null,
      byteLength: null,
    };
  return {
    name,
    type: 'text',
    nullable: true,
    scale: null,
    precision: null,
    length: 16_777_216,
    byteLength: 16_777_216,
  };
}

/** Snowflake's JSON result format sends every value as a string (NULL as null). */
function wire(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'number')
    return Number.isNaN(v) ? 'NaN' : Number.isFinite(v) ? String(v) : v > 0 ? 'inf' : '-inf';
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object') return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
  return String(v);
}

function modelName(raw: string): string {
  return raw
    .split('.')
    .map((p) =>
      p
        .trim()
        .replace(/^"(.*)"$/, '$1')
        .toUpperCase(),
    )
    .join('.');
}

// ----- SNOWFLAKE.ML.CLASSIFICATION, emulated: nearest centroid over the numeric features -----

interface Model {
  classes: string[];
  features: string[];
  confusion: Map<string, Map<string, number>>;
  importance: Map<string, number>;
}

function train(rows: Record<string, unknown>[], target: string): Model {
  const targetKey = Object.keys(rows[0] ?? {}).find((k) => k.toUpperCase() === target.toUpperCase());
  if (rows.length === 0 || targetKey === undefined) {
    throw new SfError('100357', `Target column ${target} not found or the input data is empty.`, '22023');
  }
  const features = Object.keys(rows[0] as object).filter(
    (k) => k !== targetKey && rows.every((r) => r[k] === null || ['number', 'bigint'].includes(typeof r[k])),
  );
  const label = (r: Record<string, unknown>) => String(r[targetKey]);
  const classes = [...new Set(rows.map(label))].sort();
  const value = (r: Record<string, unknown>, f: string) => (r[f] === null ? 0 : Number(r[f]));
  const centroid = new Map(
    classes.map((c) => {
      const members = rows.filter((r) => label(r) === c);
      return [c, features.map((f) => members.reduce((s, r) => s + value(r, f), 0) / members.length)] as const;
    }),
  );
  const confusion = new Map(classes.map((c) => [c, new Map(classes.map((p) => [p, 0]))]));
  for (const r of rows) {
    let best = classes[0] as string;
    let bestD = Number.POSITIVE_INFINITY;
    for (const c of classes) {
      const cen = centroid.get(c) as number[];
      const d = features.reduce((s, f, i) => s + (value(r, f) - (cen[i] as number)) ** 2, 0);
      if (d < bestD) {
        bestD = d;
        best = c;
      }
    }
    const row = confusion.get(label(r)) as Map<string, number>;
    row.set(best, (row.get(best) ?? 0) + 1);
  }
  // Importance: the spread of the class centroids along the feature, as a share of all features'.
  const spread = features.map((_, i) => {
    const xs = classes.map((c) => (centroid.get(c) as number[])[i] as number);
    return Math.max(...xs) - Math.min(...xs);
  });
  const total = spread.reduce((a, b) => a + b, 0) || 1;
  return {
    classes,
    features,
    confusion,
    importance: new Map(features.map((f, i) => [f, (spread[i] as number) / total])),
  };
}

function modelResult(m: Model, method: string): NonNullable<FakeQuery['result']> {
  const col = (name: string, type: 'text' | 'real' | 'fixed') =>
    type === 'fixed'
      ? { ...fixedColumn(name), nullable: true }
      : { name, type, nullable: true, scale: null, precision: null, length: null, byteLength: null };
  const count = (a: string, p: string) => m.confusion.get(a)?.get(p) ?? 0;
  const perClass = m.classes.map((c) => {
    const tp = count(c, c);
    const predicted = m.classes.reduce((s, a) => s + count(a, c), 0);
    const support = m.classes.reduce((s, p) => s + count(c, p), 0);
    const precision = predicted === 0 ? 0 : tp / predicted;
    const recall = support === 0 ? 0 : tp / support;
    const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    return { c, precision, recall, f1, support };
  });
  if (method === 'SHOW_EVALUATION_METRICS') {
    return {
      rowtype: [
        col('DATASET_TYPE', 'text'),
        col('CLASS', 'text'),
        col('ERROR_METRIC', 'text'),
        col('METRIC_VALUE', 'real'),
        col('LOGS', 'text'),
      ],
      rowset: perClass.flatMap((p) =>
        (['precision', 'recall', 'f1', 'support'] as const).map((k) => [
          'EVAL',
          JSON.stringify(p.c),
          k,
          String(p[k]),
          null,
        ]),
      ),
    };
  }
  if (method === 'SHOW_GLOBAL_EVALUATION_METRICS') {
    const n = perClass.reduce((s, p) => s + p.support, 0) || 1;
    const rows: (string | null)[][] = [];
    for (const k of ['precision', 'recall', 'f1'] as const) {
      rows.push(['EVAL', 'macro', k, String(perClass.reduce((s, p) => s + p[k], 0) / perClass.length), null]);
      rows.push([
        'EVAL',
        'weighted',
        k,
        String(perClass.reduce((s, p) => s + p[k] * p.support, 0) / n),
        null,
      ]);
    }
    return {
      rowtype: [
        col('DATASET_TYPE', 'text'),
        col('AVERAGE_TYPE', 'text'),
        col('ERROR_METRIC', 'text'),
        col('METRIC_VALUE', 'real'),
        col('LOGS', 'text'),
      ],
      rowset: rows,
    };
  }
  if (method === 'SHOW_CONFUSION_MATRIX') {
    return {
      rowtype: [
        col('DATASET_TYPE', 'text'),
        col('ACTUAL_CLASS', 'text'),
        col('PREDICTED_CLASS', 'text'),
        col('COUNT', 'fixed'),
        col('LOGS', 'text'),
      ],
      rowset: m.classes.flatMap((a) =>
        m.classes.map((p) => ['EVAL', JSON.stringify(a), JSON.stringify(p), String(count(a, p)), null]),
      ),
    };
  }
  if (method === 'SHOW_FEATURE_IMPORTANCE') {
    const ranked = [...m.importance.entries()].sort((a, b) => b[1] - a[1]);
    return {
      rowtype: [
        col('RANK', 'fixed'),
        col('FEATURE', 'text'),
        col('SCORE', 'real'),
        col('FEATURE_TYPE', 'text'),
      ],
      // Named as Snowflake stores unquoted identifiers: upper-case.
      rowset: ranked.map(([f, s], i) => [String(i + 1), f.toUpperCase(), String(s), 'user_provided']),
    };
  }
  throw new SfError('002140', `Unknown function ${method}`, '42601');
}
