/**
 * A fake remote compute service on 127.0.0.1 (node:http), standing for EMR, Snowflake and the like
 * in fault tests. It runs in the test process; daemons in child processes call it over HTTP, so its
 * in-memory JOURNAL is the one truth both sides share: every create, poll and cancel is recorded with
 * the caller's pid, execution id and attempt (query `?by=&exec=&attempt=`), and every state change
 * of a run with its time.
 *
 * API:
 * - `POST /runs {token, job_id}`: idempotent by token: the same token gives the same run (journal
 *   `create` once, `create_dup` for repeats). 201 when created, 200 for a repeat.
 * - `GET /runs/{id}` → `{id, token, job_id, state}`, state one of RUNNING | SUCCEEDED | FAILED |
 *   CANCELLING | CANCELLED (journal `poll`).
 * - `POST /runs/{id}/cancel`: RUNNING → CANCELLING (journal `cancel_requested`), then CANCELLED after
 *   `cancelDelayMs` (journal `cancelled`); CANCELLING answers 202 again (`cancel_dup`); a run that
 *   already ended answers 409 with its state (`cancel_rejected`).
 *
 * A run SUCCEEDS (or FAILS, when `failRun` says so) `runMs` after its creation unless a cancel came
 * first. Faults: `fault(op, …)` may answer a request with an error status, before or after its effect
 * (a 503 after the run was created is the ambiguous submission every remote executor must survive).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type RunState = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLING' | 'CANCELLED';
export const ACTIVE_STATES: ReadonlySet<RunState> = new Set(['RUNNING', 'CANCELLING']);

export type Op = 'create' | 'poll' | 'cancel';

export type JournalEvent =
  | 'create'
  | 'create_dup'
  | 'poll'
  | 'cancel_requested'
  | 'cancel_dup'
  | 'cancel_rejected'
  | 'cancelled'
  | 'succeeded'
  | 'failed'
  | 'fault';

export interface JournalEntry {
  seq: number;
  /** Epoch ms, on the test process's clock. */
  at: number;
  event: JournalEvent;
  op?: Op;
  run_id?: string;
  job_id?: string;
  token?: string;
  /** The caller's pid (an operator daemon process). */
  by?: number;
  /** The caller's execution (one `execute()` call of one job under one lease). */
  exec?: string;
  attempt?: number;
  state?: RunState;
  status?: number;
}

export interface Run {
  id: string;
  token: string;
  job_id: string;
  state: RunState;
  createdAt: number;
  /** When the run left RUNNING/CANCELLING (SUCCEEDED, FAILED or CANCELLED). */
  endedAt?: number;
  cancelRequestedAt?: number;
  createdBy?: { by?: number; exec?: string; attempt?: number };
}

/** What a fault does: answer `status` before the request has any effect, or after it. */
export interface Fault {
  status: number;
  after?: boolean;
}

export interface RemoteServiceOptions {
  /** How long a run takes to succeed (or fail); may depend on the run. */
  runMs: number | ((run: Run) => number);
  /** CANCELLING → CANCELLED after this long. */
  cancelDelayMs?: number;
  /** Runs that end FAILED instead of SUCCEEDED. */
  failRun?: (run: Run) => boolean;
  /** Consulted on every request; return a fault to inject one. */
  fault?: (op: Op, info: { run?: Run; token?: string; job_id?: string }) => Fault | undefined;
}

export interface FakeRemoteService {
  url: string;
  readonly journal: readonly JournalEntry[];
  readonly runs: ReadonlyMap<string, Run>;
  /** Runs still RUNNING or CANCELLING. */
  active(): Run[];
  /** The next `times` requests of `op` answer `status` (before or after their effect). */
  failNext(op: Op, status: number, times?: number, after?: boolean): void;
  close(): Promise<void>;
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString();
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.writableEnded || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export async function startRemoteService(options: RemoteServiceOptions): Promise<FakeRemoteService> {
  const journal: JournalEntry[] = [];
  const runs = new Map<string, Run>();
  const byToken = new Map<string, Run>();
  const timers = new Set<NodeJS.Timeout>();
  const queued: Record<Op, Fault[]> = { create: [], poll: [], cancel: [] };
  const cancelDelayMs = options.cancelDelayMs ?? 200;
  let seq = 0;
  let nextRun = 1;

  const record = (entry: Omit<JournalEntry, 'seq' | 'at'>) => {
    journal.push({ seq: ++seq, at: Date.now(), ...entry });
  };
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  const end = (run: Run, state: RunState, event: JournalEvent) => {
    run.state = state;
    run.endedAt = Date.now();
    record({ event, run_id: run.id, job_id: run.job_id, token: run.token, state });
  };
  const view = (run: Run) => ({ id: run.id, token: run.token, job_id: run.job_id, state: run.state });
  const faultFor = (op: Op, info: { run?: Run; token?: string; job_id?: string }): Fault | undefined =>
    queued[op].shift() ?? options.fault?.(op, info);

  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const caller = {
        by: url.searchParams.has('by') ? Number(url.searchParams.get('by')) : undefined,
        exec: url.searchParams.get('exec') ?? undefined,
        attempt: url.searchParams.has('attempt') ? Number(url.searchParams.get('attempt')) : undefined,
      };
      const faulted = (op: Op, fault: Fault, info: { run?: Run; token?: string; job_id?: string }) => {
        record({
          event: 'fault',
          op,
          status: fault.status,
          run_id: info.run?.id,
          job_id: info.run?.job_id ?? info.job_id,
          token: info.run?.token ?? info.token,
          ...caller,
        });
        send(res, fault.status, { error: `injected ${fault.status} (${op}${fault.after ? ', after' : ''})` });
      };
      if (req.method === 'POST' && url.pathname === '/runs') {
        const body = await readJson(req);
        const token = String(body.token ?? '');
        const jobId = String(body.job_id ?? '');
        if (!token || !jobId) return send(res, 400, { error: 'token and job_id are required' });
        const existing = byToken.get(token);
        const fault = faultFor('create', { run: existing, token, job_id: jobId });
        if (fault && !fault.after) return faulted('create', fault, { run: existing, token, job_id: jobId });
        let run = existing;
        if (run === undefined) {
          run = {
            id: `run-${nextRun++}`,
            token,
            job_id: jobId,
            state: 'RUNNING',
            createdAt: Date.now(),
            createdBy: caller,
          };
          runs.set(run.id, run);
          byToken.set(token, run);
          record({ event: 'create', run_id: run.id, job_id: jobId, token, state: run.state, ...caller });
          const created = run;
          const ms = typeof options.runMs === 'function' ? options.runMs(created) : options.runMs;
          later(ms, () => {
            if (created.state !== 'RUNNING') return;
            if (options.failRun?.(created)) end(created, 'FAILED', 'failed');
            else end(created, 'SUCCEEDED', 'succeeded');
          });
        } else {
          record({
            event: 'create_dup',
            run_id: run.id,
            job_id: run.job_id,
            token,
            state: run.state,
            ...caller,
          });
        }
        if (fault) return faulted('create', fault, { run, token, job_id: jobId });
        return send(res, existing ? 200 : 201, view(run));
      }
      const m = /^\/runs\/([^/]+)(\/cancel)?$/.exec(url.pathname);
      const run = m ? runs.get(decodeURIComponent(m[1] ?? '')) : undefined;
      if (m && req.method === 'GET' && !m[2]) {
        if (!run) return send(res, 404, { error: 'no such run' });
        const fault = faultFor('poll', { run });
        if (fault && !fault.after) return faulted('poll', fault, { run });
        record({
          event: 'poll',
          run_id: run.id,
          job_id: run.job_id,
          token: run.token,
          state: run.state,
          ...caller,
        });
        if (fault) return faulted('poll', fault, { run });
        return send(res, 200, view(run));
      }
      if (m && req.method === 'POST' && m[2]) {
        req.resume();
        if (!run) return send(res, 404, { error: 'no such run' });
        const fault = faultFor('cancel', { run });
        if (fault && !fault.after) return faulted('cancel', fault, { run });
        const common = { run_id: run.id, job_id: run.job_id, token: run.token, ...caller };
        let status = 202;
        if (run.state === 'RUNNING') {
          run.state = 'CANCELLING';
          run.cancelRequestedAt = Date.now();
          record({ event: 'cancel_requested', ...common, state: run.state });
          const cancelling = run;
          later(cancelDelayMs, () => end(cancelling, 'CANCELLED', 'cancelled'));
        } else if (run.state === 'CANCELLING') {
          record({ event: 'cancel_dup', ...common, state: run.state });
        } else {
          status = 409;
          record({ event: 'cancel_rejected', ...common, state: run.state });
        }
        if (fault) return faulted('cancel', fault, { run });
        return send(res, status, view(run));
      }
      req.resume();
      send(res, 404, { error: `no route for ${req.method} ${url.pathname}` });
    })().catch((err: unknown) => send(res, 500, { error: String(err) }));
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    journal,
    runs,
    active: () => [...runs.values()].filter((r) => ACTIVE_STATES.has(r.state)),
    failNext(op, status, times = 1, after = false) {
      for (let i = 0; i < times; i++) queued[op].push({ status, after });
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
