/**
 * The control plane as the daemon needs it: the port the daemon's parts talk through. The
 * `OperatorClient` (src/client/) implements it over HTTP; tests may fake it. How a failed call is
 * taken (a refused token, a lease that is gone) is the client's to say (`failureKind`), so nothing
 * in the daemon knows HTTP.
 */
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
    body: { lease_token: string; checkpoint?: Record<string, unknown> | null },
    opts?: { signal?: AbortSignal },
  ): Promise<unknown>;
  /** Log lines of every held job that has some, in one request. */
  appendLogs(req: AppendLogsBatchRequest, opts?: { signal?: AbortSignal }): Promise<unknown>;
}

export { describeError, failureKind } from '../client/transport.ts';
