/**
 * The web console of the bundled control plane: its static page (plain JS, no build step), the API
 * only the console needs (the job event stream, a job's timeline, follow-ups, the live log, the
 * operators), and the queue metrics on `/metrics`.
 *
 * Every API route is on the admin side (the server checks the bearer token); the static files carry
 * no data and are served to anyone, so a browser can load the page and then ask for the token.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import { JOB_TYPES } from '../../catalogue/index.ts';
import { JOB_STATES, TERMINAL_STATES } from '../../contract/index.ts';
import { type JobEvent, type JobStore, StoreError } from '../store.ts';
import { QueueRange, queueSeries, RANGES } from './charts.ts';
import { createQueueMetrics } from './metrics.ts';
import { type OperatorsResponse, OperatorTracker, SAMPLE_MS } from './operators.ts';
import { lastEventId, openSse, type SseStream } from './sse.ts';

/** The part of a request the console's handlers read (the server's own context has more). */
export interface ConsoleCtx {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string | undefined>;
  query: URLSearchParams;
}

export interface ConsoleDeps {
  store: JobStore;
  /** Registers a route on the admin side of the API (the server authenticates it). */
  onAdmin(method: 'GET', path: string, handler: (ctx: ConsoleCtx) => unknown): void;
  /** Registers a route without authentication (static files, metrics, the redirect at `/`). */
  onPublic(
    method: 'GET' | 'HEAD',
    path: string,
    handler: (req: IncomingMessage, res: ServerResponse) => void,
  ): void;
  leaseTtlMs: number;
  /** The data planes with operator tokens: the metrics' `data_plane_id` label values. */
  dataPlanes: readonly string[];
  log: Logger;
  /** Test hook: how far behind a reconnecting client may be (default {@link MAX_REPLAY_EVENTS}). */
  maxReplayEvents?: number;
  /** Entries of the job event log older than this are deleted (default 30 days; 0 keeps them all). */
  eventLogRetentionMs?: number;
}

export interface MountedConsole {
  /** Tells the operator tracker about a poll the server accepted. */
  operatorPolled(
    poll: {
      executor: string;
      data_plane_id: string;
      job_types: readonly string[];
      capacity: number;
      wait_ms?: number;
    },
    req: IncomingMessage,
  ): void;
  operators(): OperatorsResponse;
  /** Ends every open event stream (the server is closing). */
  close(): void;
}

/** A reconnecting client this far behind is told to reload instead of being replayed event by event. */
export const MAX_REPLAY_EVENTS = 20_000;
const REPLAY_PAGE = 1_000;
/** Entries of a job's timeline returned at most (progress events can be many). */
export const MAX_TIMELINE_EVENTS = 5_000;

/** Default retention of the job event log (`DPO_CP_EVENT_LOG_RETENTION_DAYS`). */
export const DEFAULT_EVENT_LOG_RETENTION_MS = 30 * 86_400_000;
/** The retention sweep runs this often (and once at start), deleting at most a chunk per turn. */
export const PRUNE_EVERY_MS = 10 * 60_000;
const PRUNE_CHUNK = 5_000;

/** How long a queue-chart answer is shared, per range. */
export const QUEUE_CACHE_MS = { hour: 5_000, day: 30_000, week: 120_000 } as const;

const JobIdParam = z.uuid();
const EventsQuery = z.object({ job_id: z.uuid().optional() });
const QueueQuery = z.object({ range: QueueRange.default('hour') });

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';
/** Every file of the page (the pinned uPlot build included: static/vendor/VERSION). */
export const STATIC: Record<string, { file: string; type: string }> = {
  '/console': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console/app.js': { file: 'app.js', type: JS },
  '/console/charts.js': { file: 'charts.js', type: JS },
  '/console/results.js': { file: 'results.js', type: JS },
  '/console/dom.js': { file: 'dom.js', type: JS },
  '/console/app.css': { file: 'app.css', type: CSS },
  '/console/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
  '/console/vendor/uPlot.iife.min.js': { file: 'vendor/uPlot.iife.min.js', type: JS },
  '/console/vendor/uPlot.min.css': { file: 'vendor/uPlot.min.css', type: CSS },
};
const STATIC_DIR = new URL('./static/', import.meta.url);

function badRequest(what: string, error: z.ZodError): StoreError {
  return new StoreError(400, 'bad_request', `invalid ${what}: ${error.issues[0]?.message ?? 'invalid'}`);
}

export function mountConsole(deps: ConsoleDeps): MountedConsole {
  const { store, log } = deps;
  const operators = new OperatorTracker(deps.leaseTtlMs, () => store.clock());
  const metrics = createQueueMetrics(store, deps.dataPlanes);

  // --- live fan-out ------------------------------------------------------------------------------
  const eventStreams = new Map<SseStream, { jobId: string | undefined }>();
  const logStreams = new Map<SseStream, { jobId: string; lastSeq: number }>();
  const pushLogs = (stream: SseStream, state: { jobId: string; lastSeq: number }) => {
    for (;;) {
      const page = store.logs(state.jobId, state.lastSeq, REPLAY_PAGE);
      for (const line of page.lines) {
        if (!stream.send(line.seq, 'log', line)) return;
        state.lastSeq = line.seq;
      }
      if (page.lines.length < REPLAY_PAGE) return;
    }
  };
  store.subscribe({
    claimable() {},
    holderAttention() {},
    terminal() {},
    changed(event: JobEvent) {
      metrics.count(event);
      if (eventStreams.size === 0) return;
      // This runs after each commit, on the request's path: serialize once for every stream.
      const json = JSON.stringify(event);
      for (const [stream, filter] of eventStreams) {
        if (filter.jobId === undefined || filter.jobId === event.job_id)
          stream.sendJson(event.seq, 'job', json);
      }
    },
    logged(jobId: string) {
      for (const [stream, state] of logStreams) if (state.jobId === jobId) pushLogs(stream, state);
    },
  });

  // --- static page -------------------------------------------------------------------------------
  const files = new Map<string, Buffer | null>();
  const load = (file: string): Buffer | null => {
    if (!files.has(file)) {
      try {
        files.set(file, readFileSync(new URL(file, STATIC_DIR)));
      } catch {
        files.set(file, null);
      }
    }
    return files.get(file) ?? null;
  };
  for (const [path, { file, type }] of Object.entries(STATIC)) {
    const serve = (req: IncomingMessage, res: ServerResponse) => {
      const body = load(file);
      if (body === null) {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`console asset ${file} is not installed next to ${STATIC_DIR.pathname}\n`);
        return;
      }
      res.writeHead(200, {
        'content-type': type,
        'content-length': body.length,
        'cache-control': 'no-cache',
        // The page talks to this origin only, runs no inline script, and sends no referrer (no job
        // id leaks out through a link).
        'content-security-policy':
          "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        'referrer-policy': 'no-referrer',
        'x-content-type-options': 'nosniff',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    deps.onPublic('GET', path, serve);
    deps.onPublic('HEAD', path, serve);
  }
  // The root answers with the console, as Temporal's and Prefect's servers do; browsers ask for
  // /favicon.ico before they read the page's <link rel=icon>.
  const redirect = (location: string) => (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    res.writeHead(302, { location, 'content-length': 0 });
    res.end();
  };
  for (const method of ['GET', 'HEAD'] as const) {
    deps.onPublic(method, '/', redirect('/console'));
    deps.onPublic(method, '/favicon.ico', redirect('/console/favicon.svg'));
  }

  // --- metrics -------------------------------------------------------------------------------------
  deps.onPublic('GET', '/metrics', (_req, res) => {
    metrics.scrape().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(text);
      },
      (err: unknown) => {
        log.error({ err }, 'metrics collection failed');
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('metrics collection failed\n');
      },
    );
  });

  // --- API -------------------------------------------------------------------------------------------
  const jobIdOf = (ctx: ConsoleCtx): string => {
    const r = JobIdParam.safeParse(ctx.params.id);
    if (!r.success) throw new StoreError(404, 'not_found', `no job with id ${ctx.params.id ?? ''}`);
    return r.data;
  };

  deps.onAdmin('GET', '/v1/operators', () => operatorsNow());

  /** What the page's filters offer: the contract's states and the catalogue's types. */
  deps.onAdmin('GET', '/v1/console/meta', () => ({
    states: JOB_STATES,
    terminal_states: [...TERMINAL_STATES],
    job_types: JOB_TYPES,
    queue_ranges: Object.keys(RANGES),
  }));

  /**
   * The queue over the last hour, day or week (charts.ts). The SQL runs on the control plane's only
   * thread (a week over 50,000 jobs: a few hundred ms), so an answer is shared by every page for a
   * while: 5 s for the hour, 30 s for the day, 2 min for the week.
   */
  const queueCache = new Map<string, { at: number; series: ReturnType<typeof queueSeries> }>();
  deps.onAdmin('GET', '/v1/console/queue', (ctx) => {
    const q = QueueQuery.safeParse(Object.fromEntries(ctx.query));
    if (!q.success) throw badRequest('query', q.error);
    const range = q.data.range;
    const now = Date.now();
    const hit = queueCache.get(range);
    if (hit && now - hit.at < QUEUE_CACHE_MS[range]) return hit.series;
    const series = queueSeries(store, range);
    queueCache.set(range, { at: now, series });
    return series;
  });

  deps.onAdmin('GET', '/v1/jobs/:id/events', (ctx) => {
    const id = jobIdOf(ctx);
    store.get(id); // 404 when unknown
    return { events: store.events(0, MAX_TIMELINE_EVENTS, id) };
  });

  deps.onAdmin('GET', '/v1/jobs/:id/follow-ups', (ctx) => {
    const id = jobIdOf(ctx);
    store.get(id);
    return { jobs: store.followUpsOf(id) };
  });

  /**
   * The job event log as SSE (`event: job`, id = the event's seq); with `job_id`, one job's only.
   * A client sending `Last-Event-ID` gets every event after it first; without one it starts from
   * now, announced by `event: hello` carrying the current seq. Further behind than
   * {@link MAX_REPLAY_EVENTS}, it gets `event: reset` and should reload its view.
   */
  deps.onAdmin('GET', '/v1/events', async (ctx) => {
    const q = EventsQuery.safeParse(Object.fromEntries(ctx.query));
    if (!q.success) throw badRequest('query', q.error);
    const jobId = q.data.job_id;
    const after = lastEventId(ctx.req);
    const stream = openSse(ctx.req, ctx.res);
    // Replay and subscription happen in one synchronous stretch: no commit can fall in between.
    const head = store.lastEventSeq();
    if (after === null) {
      stream.send(head, 'hello', { seq: head });
    } else if (head - after > (deps.maxReplayEvents ?? MAX_REPLAY_EVENTS)) {
      stream.send(head, 'reset', { seq: head, reason: 'too far behind to replay' });
    } else {
      let cursor = after;
      for (;;) {
        const page = store.events(cursor, REPLAY_PAGE, jobId);
        for (const e of page) stream.send(e.seq, 'job', e);
        cursor = page.at(-1)?.seq ?? cursor;
        if (page.length < REPLAY_PAGE || stream.isClosed) break;
      }
    }
    eventStreams.set(stream, { jobId });
    await stream.closed;
    eventStreams.delete(stream);
  });

  /** A job's log lines as SSE (`event: log`, id = the line's seq), replayed after `Last-Event-ID`, then live. */
  deps.onAdmin('GET', '/v1/jobs/:id/logs/stream', async (ctx) => {
    const id = jobIdOf(ctx);
    store.get(id);
    const stream = openSse(ctx.req, ctx.res);
    const state = { jobId: id, lastSeq: lastEventId(ctx.req) ?? 0 };
    pushLogs(stream, state);
    logStreams.set(stream, state);
    await stream.closed;
    logStreams.delete(stream);
  });

  const operatorsNow = () => operators.list(store.heldByOperator());

  // --- background: operators' history, event log retention ----------------------------------------
  const sampler = setInterval(() => {
    try {
      operators.sample(store.heldByOperator());
    } catch (err) {
      log.error({ err }, 'operator sample failed');
    }
  }, SAMPLE_MS);
  sampler.unref();

  const retentionMs = deps.eventLogRetentionMs ?? DEFAULT_EVENT_LOG_RETENTION_MS;
  let pruneTimer: NodeJS.Timeout | undefined;
  let closed = false;
  /** Deletes old entries a chunk per turn of the event loop, so requests are served in between. */
  const prune = () => {
    let total = 0;
    const step = () => {
      if (closed) return;
      try {
        const n = store.pruneEvents(store.clock() - retentionMs, PRUNE_CHUNK);
        total += n;
        if (n === PRUNE_CHUNK) {
          setImmediate(step);
          return;
        }
        if (total > 0) log.info({ pruned: total, retention_ms: retentionMs }, 'job event log pruned');
      } catch (err) {
        log.error({ err }, 'job event log pruning failed');
      }
      pruneTimer = setTimeout(prune, PRUNE_EVERY_MS);
      pruneTimer.unref();
    };
    step();
  };
  if (retentionMs > 0) prune();

  return {
    operatorPolled: (poll, req) => operators.polled(poll, req),
    operators: operatorsNow,
    close() {
      closed = true;
      clearInterval(sampler);
      clearTimeout(pruneTimer);
      for (const s of [...eventStreams.keys(), ...logStreams.keys()]) s.end();
    },
  };
}
