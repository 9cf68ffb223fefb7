/**
 * The bundled control plane: a real HTTP server speaking the contract v1, persisted in
 * SQLite through {@link JobStore}.
 *
 * Built on node:http with find-my-way (fastify's radix router): the hot path (poll and report) is a
 * body read, one zod parse and one synchronous SQLite transaction, with nothing in between.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import findMyWay, { type HTTPVersion } from 'find-my-way';
import pino, { type Logger } from 'pino';
import type { z } from 'zod';
import { formatIssues } from '../catalogue/index.ts';
import {
  AppendLogsBatchRequest,
  type AppendLogsBatchResponse,
  AppendLogsRequest,
  CancelJobRequest,
  CancelledRequest,
  CheckpointRequest,
  CompleteRequest,
  FailRequest,
  isTerminal,
  type Job,
  ListJobsQuery,
  LogsQuery,
  PollRequest,
  type PollResponse,
  ReleaseRequest,
  ReportRequest,
  type ReportResponse,
  RescheduleJobRequest,
  SubmitJobRequest,
  WaitQuery,
} from '../contract/index.ts';
import { parseJsonLossless } from '../contract/json.ts';
import { mountConsole } from './console/routes.ts';
import { JobStore, StoreError, type StoreOptions } from './store.ts';
import { Waiters } from './waiters.ts';

export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;

export interface OperatorToken {
  token: string;
  /** The one data plane this token may act for. */
  data_plane_id: string;
  /** A readable name for logs (never the token itself). */
  name?: string;
}

export interface ControlPlaneOptions {
  /** SQLite file, or `:memory:`. */
  dbPath: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8700; 0 picks a free port. */
  port?: number;
  /** Tokens for the user side (submit, list, cancel, reschedule, wait, logs). */
  adminTokens: readonly string[];
  /** Tokens for the operator side, each bound to one data plane. */
  operatorTokens: readonly OperatorToken[];
  /** Default 30 s. */
  leaseTtlMs?: number;
  /** First backoff after a retryable failure; default 2 s, doubling per attempt. */
  retryBaseMs?: number;
  /** Backoff cap; default 5 min. */
  retryMaxMs?: number;
  /** Attempts a job gets when the submission names none; default 3. */
  defaultMaxAttempts?: number;
  /** Throttled failures whose attempt is given back, per job; default 20. */
  maxThrottledRetries?: number;
  /** Largest request body; default 10 MiB. */
  maxBodyBytes?: number;
  /** Entries of the job event log older than this are pruned; default 30 days, 0 keeps them all. */
  eventLogRetentionMs?: number;
  logger?: Logger;
  /** Test hook: the store's clock. */
  now?: () => number;
  /** Test hook: the store's follow-up rules. */
  followUps?: StoreOptions['followUps'];
}

export interface RunningControlPlane {
  /** Base URL, e.g. `http://127.0.0.1:8700`. */
  url: string;
  port: number;
  store: JobStore;
  server: Server;
  /** Polls parked right now (tests wait on it instead of sleeping). */
  parkedPolls(): number;
  /** Stops accepting, answers parked long polls, closes the database. Idempotent. */
  close(): Promise<void>;
}

type Principal = { role: 'admin'; name: string } | { role: 'operator'; name: string; dataPlaneId: string };

/** An HTTP-level refusal carrying the contract's error body. */
class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;
  constructor(status: number, code: string, message: string, details?: unknown) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string | undefined>;
  query: URLSearchParams;
  principal: Principal;
  body: unknown;
}

type Handler = (ctx: Ctx) => unknown | Promise<unknown>;

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (!r.success) {
    const issues = formatIssues(r.error);
    const first = issues[0];
    throw new HttpError(
      400,
      'bad_request',
      `invalid ${what}${first ? `: ${first.path ? `${first.path}: ` : ''}${first.message}` : ''}`,
      { issues },
    );
  }
  return r.data;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.writableEnded || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function sendError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  details?: unknown,
): void {
  sendJson(res, status, { error: details === undefined ? { code, message } : { code, message, details } });
}

/**
 * Reads the body up to `limit` bytes. Over the limit, it keeps reading (and discarding) up to four
 * times the limit so the client gets to read the 413 instead of a reset connection, then gives up.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    let size = 0;
    let over = Number.isFinite(declared) && declared > limit;
    const chunks: Buffer[] = [];
    const tooLarge = () =>
      new HttpError(413, 'payload_too_large', `request body exceeds the limit of ${limit} bytes`, { limit });
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) over = true;
      if (!over) chunks.push(chunk);
      else if (size > limit * 4) {
        reject(tooLarge());
        req.destroy();
      }
    });
    req.on('end', () => (over ? reject(tooLarge()) : resolve(Buffer.concat(chunks))));
    req.on('error', reject);
  });
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<RunningControlPlane> {
  const log = options.logger ?? pino({ level: 'silent' });
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const leaseTtlMs = options.leaseTtlMs ?? 30_000;
  const store = new JobStore({
    path: options.dbPath,
    leaseTtlMs,
    retryBaseMs: options.retryBaseMs ?? 2_000,
    retryMaxMs: options.retryMaxMs ?? 300_000,
    defaultMaxAttempts: options.defaultMaxAttempts ?? 3,
    maxThrottledRetries: options.maxThrottledRetries ?? 20,
    ...(options.now ? { now: options.now } : {}),
    ...(options.followUps ? { followUps: options.followUps } : {}),
  });
  const waiters = new Waiters(store);

  const tokens = new Map<string, Principal>();
  options.adminTokens.forEach((t, i) => {
    tokens.set(sha256(t), { role: 'admin', name: `admin-${i + 1}` });
  });
  for (const [i, t] of options.operatorTokens.entries()) {
    tokens.set(sha256(t.token), {
      role: 'operator',
      name: t.name ?? `operator-${i + 1}`,
      dataPlaneId: t.data_plane_id,
    });
  }
  if (tokens.size === 0) throw new Error('the control plane needs at least one token');
  // Known tokens seen on requests, so a request does not hash its token again: only tokens that
  // matched are kept, so the map holds at most one entry per configured token.
  const seen = new Map<string, Principal>();
  const principalOf = (token: string): Principal | undefined => {
    const hit = seen.get(token);
    if (hit !== undefined) return hit;
    const principal = tokens.get(sha256(token));
    if (principal !== undefined) seen.set(token, principal);
    return principal;
  };

  const router = findMyWay<HTTPVersion.V1>({ ignoreTrailingSlash: true });
  const admin = (h: Handler) => ({ role: 'admin' as const, h });
  const operator = (h: Handler) => ({ role: 'operator' as const, h });
  type Route = ReturnType<typeof admin> | ReturnType<typeof operator>;
  const routes: Array<[method: 'GET' | 'POST', path: string, route: Route]> = [];
  const on = (method: 'GET' | 'POST', path: string, route: Route) => routes.push([method, path, route]);

  const dataPlaneOf = (p: Principal): string => (p.role === 'operator' ? p.dataPlaneId : '');
  const jobId = (ctx: Ctx): string => ctx.params.id ?? '';

  // --- user side -------------------------------------------------------------------------------
  on(
    'POST',
    '/v1/jobs',
    admin((ctx) => {
      const req = parse(SubmitJobRequest, ctx.body, 'job submission');
      const { job, created } = store.submit(req, { type: 'api_user', token_name: ctx.principal.name });
      ctx.res.statusCode = created ? 201 : 200;
      if (created) log.debug({ job_id: job.id, job_type: job.type }, 'job submitted');
      return job;
    }),
  );
  on(
    'GET',
    '/v1/jobs',
    admin((ctx) => store.list(parse(ListJobsQuery, Object.fromEntries(ctx.query), 'query'))),
  );
  on(
    'GET',
    '/v1/jobs/:id',
    admin((ctx) => store.get(jobId(ctx))),
  );
  on(
    'POST',
    '/v1/jobs/:id/cancel',
    admin((ctx) => {
      const req = parse(CancelJobRequest, ctx.body ?? {}, 'cancel request');
      return store.cancel(jobId(ctx), req.reason ?? null);
    }),
  );
  on(
    'POST',
    '/v1/jobs/:id/reschedule',
    admin((ctx) => {
      const req = parse(RescheduleJobRequest, ctx.body ?? {}, 'reschedule request');
      return store.reschedule(jobId(ctx), req.force === true);
    }),
  );
  on(
    'GET',
    '/v1/jobs/:id/wait',
    admin(async (ctx) => {
      const { timeout_ms } = parse(WaitQuery, Object.fromEntries(ctx.query), 'query');
      const id = jobId(ctx);
      const job = store.get(id);
      if (isTerminal(job.state) || timeout_ms === 0) return job;
      await waiters.waitTerminal(id, timeout_ms, ctx.res);
      return store.get(id);
    }),
  );
  on(
    'GET',
    '/v1/jobs/:id/logs',
    admin((ctx) => {
      const q = parse(LogsQuery, Object.fromEntries(ctx.query), 'query');
      return store.logs(jobId(ctx), q.after ?? 0, q.limit);
    }),
  );

  // --- operator side -----------------------------------------------------------------------------
  on(
    'POST',
    '/v1/operators/poll',
    operator(async (ctx) => {
      const body = parse(PollRequest, ctx.body, 'poll request');
      const dataPlaneId = dataPlaneOf(ctx.principal);
      if (body.data_plane_id !== dataPlaneId) {
        throw new HttpError(403, 'forbidden', `this token is bound to data plane '${dataPlaneId}'`);
      }
      webConsole.operatorPolled(body, ctx.req);
      const args = {
        executor: body.executor,
        dataPlaneId,
        jobTypes: body.job_types,
        capacity: body.capacity,
        held: body.held,
      };
      const receivedAt = store.clock();
      // Group commit: this poll's statements share one transaction with every poll and report of
      // this event-loop turn; answered after the commit.
      const first = await store.grouped(() => ({ out: store.poll(args), since: waiters.generation }));
      let out = first.out;
      let parkedMs = 0;
      if (out.claimed.length === 0 && out.cancel.length === 0 && out.lost.length === 0 && body.wait_ms > 0) {
        // Park. An operator holding leases (listed in this poll or not) waits at most half the TTL,
        // so its renewals never lapse while it waits.
        const holds = body.held.length > 0 || store.holds(body.executor, dataPlaneId);
        const maxWait = holds ? Math.min(body.wait_ms, Math.floor(leaseTtlMs / 2)) : body.wait_ms;
        const gone = await waiters.parkPoll(
          {
            dataPlaneId,
            executor: body.executor,
            jobTypes: new Set(body.job_types),
            heldIds: new Set(body.held.map((h) => h.id)),
            wantsClaims: body.capacity > 0,
          },
          maxWait,
          ctx.res,
          first.since,
        );
        if (gone) return undefined; // the client went away: claim nothing on its behalf
        // Woken: polled at once in its own transaction, not in the next group, so the holder hears
        // of a revocation (`lost`, `rescheduled`) as soon as before, ahead of its other requests.
        parkedMs = Math.max(0, store.clock() - receivedAt);
        out = store.poll(args);
      }
      const response: PollResponse = {
        claimed: out.claimed,
        cancel: out.cancel,
        lost: out.lost,
        lost_reasons: out.lostReasons,
        lease_ttl_ms: leaseTtlMs,
        parked_ms: parkedMs,
      };
      return response;
    }),
  );
  on(
    'POST',
    '/v1/operators/report',
    operator(async (ctx) => {
      const req = parse(ReportRequest, ctx.body, 'report');
      const dataPlaneId = dataPlaneOf(ctx.principal);
      // Group commit, as the poll's.
      const outcomes = await store.grouped(() => store.report(dataPlaneId, req.reports));
      const response: ReportResponse = {
        results: outcomes.map((o, i) => {
          const id = req.reports[i]!.id;
          return o.status === 'ok'
            ? { id, status: 'ok' }
            : {
                id,
                status: o.status,
                error: {
                  code: o.error.code,
                  message: o.error.message,
                  ...(o.error.details === undefined ? {} : { details: o.error.details }),
                },
              };
        }),
      };
      return response;
    }),
  );
  on(
    'POST',
    '/v1/operators/logs',
    operator((ctx) => {
      const req = parse(AppendLogsBatchRequest, ctx.body, 'log lines');
      const out = store.appendLogsBatch(dataPlaneOf(ctx.principal), req.entries);
      const response: AppendLogsBatchResponse = {
        results: out.map((o, i) => ({ id: req.entries[i]!.id, ...o })),
      };
      return response;
    }),
  );
  const fenced = (path: string, fn: (ctx: Ctx, id: string, dp: string) => Job | Record<string, unknown>) =>
    on(
      'POST',
      `/v1/jobs/:id/${path}`,
      operator((ctx) => {
        const out = fn(ctx, jobId(ctx), dataPlaneOf(ctx.principal));
        return 'id' in out ? { job: out } : out;
      }),
    );
  fenced('checkpoint', (ctx, id, dp) => {
    const r = parse(CheckpointRequest, ctx.body, 'checkpoint');
    return store.checkpoint(id, r.lease_token, dp, r.checkpoint, r.progress, r.clear_stale === true);
  });
  fenced('complete', (ctx, id, dp) => {
    const r = parse(CompleteRequest, ctx.body, 'completion');
    return store.complete(id, r.lease_token, dp, r.result);
  });
  fenced('fail', (ctx, id, dp) => {
    const r = parse(FailRequest, ctx.body, 'failure report');
    return store.fail(id, r.lease_token, dp, r.failure);
  });
  fenced('cancelled', (ctx, id, dp) => {
    const r = parse(CancelledRequest, ctx.body, 'cancellation confirmation');
    return store.cancelled(id, r.lease_token, dp);
  });
  fenced('release', (ctx, id, dp) => {
    const r = parse(ReleaseRequest, ctx.body, 'release');
    return store.release(id, r.lease_token, dp, r.reason);
  });
  fenced('logs', (ctx, id, dp) => {
    const r = parse(AppendLogsRequest, ctx.body, 'log lines');
    return { appended: store.appendLogs(id, r.lease_token, dp, r.lines) };
  });

  // --- the web console, its API and the queue metrics (console/) ---------------------------------
  const webConsole = mountConsole({
    store,
    onAdmin: (method, path, h) => on(method, path, admin(h)),
    onPublic: (method, path, h) => router.on(method, path, (req, res) => h(req, res)),
    leaseTtlMs,
    dataPlanes: options.operatorTokens.map((t) => t.data_plane_id),
    log,
    ...(options.eventLogRetentionMs === undefined
      ? {}
      : { eventLogRetentionMs: options.eventLogRetentionMs }),
  });

  // --- dispatch ------------------------------------------------------------------------------------
  const dispatch = async (req: IncomingMessage, res: ServerResponse, route: Route, params: Ctx['params']) => {
    const auth = req.headers.authorization;
    const token = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
    const principal = token ? principalOf(token) : undefined;
    if (principal === undefined) {
      // Drain the body so the client reads the answer instead of a reset.
      req.resume();
      res.setHeader('www-authenticate', 'Bearer');
      throw new HttpError(401, 'unauthorized', token ? 'unknown bearer token' : 'missing bearer token');
    }
    if (principal.role !== route.role) {
      req.resume();
      throw new HttpError(
        403,
        'forbidden',
        route.role === 'admin'
          ? 'operator tokens cannot use the user side of the API'
          : 'this endpoint is for operators; the admin token cannot act as one',
      );
    }
    let body: unknown;
    if (req.method === 'POST') {
      const type = req.headers['content-type'];
      const raw = await readBody(req, maxBody);
      if (raw.length > 0) {
        if (type !== undefined && !/^application\/(.+\+)?json\b/i.test(type)) {
          throw new HttpError(
            415,
            'unsupported_media_type',
            `expected a JSON body (content-type application/json), got ${type}; with curl use --json`,
          );
        }
        try {
          body = parseJsonLossless(raw.toString('utf8')); // 64-bit integers stay exact (contract)
        } catch (err) {
          throw new HttpError(
            400,
            'bad_request',
            `request body is not valid JSON: ${(err as Error).message}`,
          );
        }
      }
    }
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const ctx: Ctx = {
      req,
      res,
      params,
      query: new URLSearchParams(q >= 0 ? url.slice(q + 1) : ''),
      principal,
      body,
    };
    const out = await route.h(ctx);
    if (out !== undefined) sendJson(res, res.statusCode, out);
    else if (!res.writableEnded) res.destroy();
  };

  for (const [method, path, route] of routes) {
    router.on(method, path, (req, res, params) => {
      dispatch(req, res, route, params).catch((err: unknown) => handleError(req, res, err));
    });
  }
  router.on('GET', '/healthz', (_req, res) => sendJson(res, 200, { status: 'ok', version: '1' }));

  const handleError = (req: IncomingMessage, res: ServerResponse, err: unknown) => {
    if (err instanceof HttpError || err instanceof StoreError) {
      if (err.status === 413) res.setHeader('connection', 'close');
      sendError(res, err.status, err.code, err.message, err.details);
      return;
    }
    log.error({ err, method: req.method, url: req.url }, 'request failed');
    sendError(res, 500, 'internal', 'internal error');
  };

  const server = createServer((req, res) => {
    res.statusCode = 200;
    const found = router.find(req.method as 'GET', req.url ?? '/');
    if (found === null) {
      req.resume();
      const pathOnly = (req.url ?? '/').split('?')[0] ?? '/';
      const other = (['GET', 'POST'] as const).filter((m) => m !== req.method && router.find(m, pathOnly));
      if (other.length > 0) {
        res.setHeader('allow', other.join(', '));
        sendError(res, 405, 'method_not_allowed', `${req.method} is not allowed on ${pathOnly}`);
      } else {
        sendError(res, 404, 'not_found', `no route for ${req.method} ${pathOnly}`);
      }
      return;
    }
    found.handler(req, res, found.params, found.store, found.searchParams);
  });
  // Long polls hold requests for up to a minute: keep the sockets and the request timer out of the way.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 75_000;
  server.headersTimeout = 30_000;

  // Leases expire even when nobody polls: a sweeper wakes at the next expiry.
  const sweeper = setInterval(
    () => {
      try {
        const n = store.expireLeases();
        if (n > 0) log.info({ expired: n }, 'leases expired');
      } catch (err) {
        log.error({ err }, 'lease sweep failed');
      }
    },
    Math.max(50, Math.min(1_000, Math.floor(leaseTtlMs / 4))),
  );
  sweeper.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8700, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  log.info({ url, db: options.dbPath, lease_ttl_ms: leaseTtlMs }, 'control plane listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    port: address.port,
    store,
    server,
    parkedPolls: () => waiters.parkedPolls,
    close() {
      closing ??= (async () => {
        clearInterval(sweeper);
        // Answer parked long polls and waits first, while the store is still open.
        waiters.closeAll();
        webConsole.close();
        await new Promise((resolve) => setImmediate(resolve));
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          setTimeout(() => server.closeAllConnections(), 1_000).unref();
        });
        store.close();
      })();
      return closing;
    },
  };
}
