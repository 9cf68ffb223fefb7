/**
 * A remote executor for fault tests, loaded BY PATH in child-process daemons
 * (`DPO_EXECUTORS=test/support/remote-executor.ts`) and configured by env. It serves
 * `datasets_truncate_table` by driving a run on the fake remote service (test/fakes/remote-service.ts)
 * through `runRemote`, the remote-run protocol every remote executor uses.
 *
 * Intent: `{nonce, submission, attempt}`; the service's idempotency token is
 * `<job id>-<nonce>-<submission>`. The nonce is drawn once per fresh start (no checkpoint), so a
 * reschedule (which clears the checkpoint) really starts again; a retry after a run that ended badly
 * is the next submission of the same nonce.
 *
 * Every call to the service carries `?by=<pid>&exec=<execution id>&attempt=<n>`: the execution id is
 * drawn per `execute()` call, so the service's journal tells which operator process ran which job
 * attempt when, and a test can find two executions of one job at once.
 *
 * Env: REMOTE_SERVICE_URL (required); REMOTE_POLL_MIN_MS / REMOTE_POLL_MAX_MS (default 100 / 400);
 * REMOTE_RECANCEL_AFTER_MS (default 1000); REMOTE_REQUEST_TIMEOUT_MS (default 2000);
 * REMOTE_REQUEST_TRIES (tries per call before a retryable failure, default 3).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { request } from 'undici';
import type { Checkpoint } from '../../src/contract/index.ts';
import {
  type ExecuteContext,
  type Executor,
  type ExecutorFactory,
  JobError,
  type JobHandle,
} from '../../src/executor/index.ts';
import { cancelledElsewhere, type RemoteRunOps, runRemote } from '../../src/executor/remote-run.ts';
import { sleep } from '../../src/lib/retry.ts';

export interface RemoteIntent {
  nonce: string;
  submission: number;
  attempt: number;
}

export interface RemoteStatus {
  id: string;
  token: string;
  job_id: string;
  state: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLING' | 'CANCELLED';
}

export const tokenOf = (jobId: string, intent: RemoteIntent): string =>
  `${jobId}-${intent.nonce}-${intent.submission}`;

/** A call the service refused or that did not complete; retryable unless it was a 4xx. */
class CallError extends Error {
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.status = status;
  }
}

export interface RemoteExecutorConfig {
  url: string;
  pollMinMs: number;
  pollMaxMs: number;
  recancelAfterMs: number;
  requestTimeoutMs: number;
  tries: number;
}

export function createRemoteExecutor(config: RemoteExecutorConfig): Executor {
  return {
    name: 'remote',
    jobTypes: ['datasets_truncate_table'],
    execute(job: JobHandle, ctx: ExecuteContext): Promise<unknown> {
      const exec = randomUUID().slice(0, 8);
      const who = `by=${process.pid}&exec=${exec}&attempt=${job.attempt}`;

      /** One call, retried a few times on 5xx and network errors (never on 4xx). */
      const call = async (
        method: 'GET' | 'POST',
        path: string,
        signal: AbortSignal,
        body?: unknown,
        accept: (status: number) => boolean = (s) => s < 300,
      ): Promise<{ status: number; body: RemoteStatus }> => {
        for (let n = 1; ; n++) {
          signal.throwIfAborted();
          try {
            const res = await request(`${config.url}${path}?${who}`, {
              method,
              headers: body === undefined ? {} : { 'content-type': 'application/json' },
              body: body === undefined ? undefined : JSON.stringify(body),
              signal: AbortSignal.any([signal, AbortSignal.timeout(config.requestTimeoutMs)]),
            });
            const text = await res.body.text();
            if (!accept(res.statusCode)) {
              throw new CallError(`${method} ${path}: ${res.statusCode} ${text}`, res.statusCode);
            }
            return { status: res.statusCode, body: JSON.parse(text) as RemoteStatus };
          } catch (err) {
            signal.throwIfAborted();
            const status = err instanceof CallError ? err.status : undefined;
            const retryable = status === undefined || status >= 500 || status === 429;
            if (!retryable) throw err;
            if (n >= config.tries) {
              throw new JobError('REMOTE_UNAVAILABLE', (err as Error).message, {
                retryable: true,
                cause: err,
              });
            }
            await sleep(50 * n, signal);
          }
        }
      };

      const ops: RemoteRunOps<RemoteIntent, string, RemoteStatus> = {
        what: 'remote run',
        read(checkpoint: Checkpoint) {
          const c = checkpoint as Partial<RemoteIntent> & { run_id?: unknown };
          if (
            typeof c.nonce !== 'string' ||
            typeof c.submission !== 'number' ||
            typeof c.attempt !== 'number'
          ) {
            return undefined;
          }
          const intent = { nonce: c.nonce, submission: c.submission, attempt: c.attempt };
          return { intent, handle: typeof c.run_id === 'string' ? c.run_id : undefined };
        },
        write(intent, handle) {
          return handle === undefined ? { ...intent } : { ...intent, run_id: handle };
        },
        newIntent(attempt, previous) {
          return previous
            ? { nonce: previous.nonce, submission: previous.submission + 1, attempt }
            : { nonce: randomBytes(4).toString('hex'), submission: 1, attempt };
        },
        async submit(intent, signal) {
          const r = await call('POST', '/runs', signal, { token: tokenOf(job.id, intent), job_id: job.id });
          return r.body.id;
        },
        async poll(handle, signal) {
          return (await call('GET', `/runs/${encodeURIComponent(handle)}`, signal)).body;
        },
        phase(status) {
          if (status.state === 'RUNNING' || status.state === 'CANCELLING') return 'active';
          return status.state === 'SUCCEEDED' ? 'succeeded' : 'ended';
        },
        onStatus(handle, status) {
          ctx.progress({ message: `remote ${status.state}`, run_id: handle });
        },
        async result() {
          return { type: job.type };
        },
        async failure(handle, status) {
          if (status.state === 'CANCELLED') return cancelledElsewhere('remote run', handle);
          return new JobError('REMOTE_FAILED', `the remote run ${handle} failed`, { retryable: true });
        },
        async cancel(handle, signal) {
          // 409: the run ended meanwhile; the next poll says how.
          await call(
            'POST',
            `/runs/${encodeURIComponent(handle)}/cancel`,
            signal,
            undefined,
            (s) => s < 300 || s === 409,
          );
        },
      };

      return runRemote(job, ctx, ops, {
        pollMinMs: config.pollMinMs,
        pollMaxMs: config.pollMaxMs,
        recancelAfterMs: config.recancelAfterMs,
      });
    },
  };
}

const int = (value: string | undefined, fallback: number): number => {
  const n = value === undefined || value === '' ? fallback : Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`not a non-negative integer: ${value}`);
  return n;
};

/** Loaded by path from a child-process daemon: `DPO_EXECUTORS=test/support/remote-executor.ts`. */
export const createExecutor: ExecutorFactory = (env) => {
  const url = env.REMOTE_SERVICE_URL;
  if (!url) throw new Error('REMOTE_SERVICE_URL is required by the remote test executor');
  return createRemoteExecutor({
    url: url.replace(/\/$/, ''),
    pollMinMs: int(env.REMOTE_POLL_MIN_MS, 100),
    pollMaxMs: int(env.REMOTE_POLL_MAX_MS, 400),
    recancelAfterMs: int(env.REMOTE_RECANCEL_AFTER_MS, 1_000),
    requestTimeoutMs: int(env.REMOTE_REQUEST_TIMEOUT_MS, 2_000),
    tries: Math.max(1, int(env.REMOTE_REQUEST_TRIES, 3)),
  });
};
