/**
 * The control plane as the daemon needs it: the port the daemon's parts talk through. The
 * `OperatorClient` (src/client/) implements it over HTTP; tests may fake it. How a failed call is
 * taken (a refused token, a lease that is gone) is the client's to say (`failureKind`), so nothing
 * in the daemon knows HTTP.
 */
import type { Logger } from 'pino';
import type {
  AppendLogsBatchRequest,
  PollRequest,
  PollResponse,
  ReportRequest,
  ReportResponse,
} from '../contract/index.ts';

export interface ControlPlane {
  poll(req: PollRequest, opts?: { signal?: AbortSignal }): Promise<PollResponse>;
  report(req: ReportRequest, opts?: { signal?: AbortSignal }): Promise<ReportResponse>;
  checkpoint(
    id: string,
    body: { lease_token: string; checkpoint?: Record<string, unknown> | null; clear_stale?: boolean },
    opts?: { signal?: AbortSignal },
  ): Promise<unknown>;
  /** Log lines of every held job that has some, in one request. */
  appendLogs(req: AppendLogsBatchRequest, opts?: { signal?: AbortSignal }): Promise<unknown>;
}

import { describeError, failureKind } from '../client/transport.ts';
import { retryUntilStopped } from '../lib/retry.ts';

export { describeError, failureKind };

/**
 * Retries one control-plane call until it is answered, with capped jittered backoff, for the loops
 * that must outlast an outage (the poll, the reporter). A refused token is fatal and ends it;
 * resolves `undefined` when stopped.
 */
export function untilAnswered<T>(
  call: () => Promise<T>,
  c: { stopSignal: AbortSignal; log: Logger; fatal(err: Error): void },
  what: string,
  fields: () => Record<string, unknown> = () => ({}),
): Promise<T | undefined> {
  return retryUntilStopped(call, {
    signal: c.stopSignal,
    baseMs: 250,
    capMs: 5_000,
    onError: (err, failures, delay) => {
      if (failureKind(err) === 'auth') {
        c.fatal(err as Error);
        return 'stop';
      }
      c.log.warn(
        { err: describeError(err), failures, retry_in_ms: delay, ...fields() },
        `${what} failed; retrying`,
      );
      return 'retry';
    },
  });
}
