/**
 * The user side of the contract, for the `jobs` CLI and scripts.
 *
 * Interactive, so no retries: every call either answers or says why not, quickly. Every call has a
 * timeout (`timeoutMs`, plus the wait itself for `wait`) and takes the caller's AbortSignal; every
 * answer is checked against the contract's schemas before anyone uses it. Errors:
 * - {@link ApiError}: the control plane answered with an error status (`status`, `code`, `message`,
 *   `details` from its `{error: {code, message, details}}` body);
 * - {@link ProtocolError}: it answered 2xx with something the contract does not allow;
 * - {@link TransportError}: it could not be reached, or did not answer in time (the message names the URL);
 * - an abort of the caller's signal rejects with the signal's reason.
 */
import { Agent, request } from 'undici';
import { z } from 'zod';
import {
  CancelJobResponse,
  Job,
  type ListJobsQuery,
  ListJobsResponse,
  LogsResponse,
  MAX_WAIT_MS,
  RescheduleJobResponse,
  type SubmitJobRequest,
} from '../contract/index.ts';
import { ProtocolError, readAnswer, wrapTransport } from './transport.ts';

export { ApiError, ProtocolError, TransportError } from './transport.ts';

export interface UserClientOptions {
  /** Base URL of the control plane, e.g. `http://127.0.0.1:8700`. */
  url: string;
  /** An admin (user-side) token. */
  token: string;
  /** Per request, on top of any wait the request asks the server for. Default 30 s. */
  timeoutMs?: number;
}

/** Filters of `GET /v1/jobs`; `state` and `type` take one value or a comma-separated list. */
/** What `GET /v1/operators` says of each operator, as far as the CLI reads it. */
export const OperatorsSeen = z.object({
  operators: z.array(
    z.looseObject({
      executor_id: z.string(),
      data_plane_id: z.string(),
      job_types: z.array(z.string()),
      stale: z.boolean(),
      last_poll_at: z.string(),
    }),
  ),
});
export type OperatorsSeen = z.infer<typeof OperatorsSeen>;

export type ListQuery = { [K in keyof z.input<typeof ListJobsQuery>]?: string | number | undefined };

export interface LogsQuery {
  /** Only lines after this `seq` (the `last_seq` of the previous page). */
  after?: number;
  limit?: number;
}

export class UserClient {
  private readonly base: string;
  private readonly auth: string;
  private readonly timeoutMs: number;
  // Our own deadline covers headers and body; undici's would cut long polls short.
  private readonly agent = new Agent({ headersTimeout: 0, bodyTimeout: 0, connectTimeout: 10_000 });

  constructor(options: UserClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
    this.auth = `Bearer ${options.token}`;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** The URL requests go to. */
  get url(): string {
    return this.base;
  }

  /** `created` is false when the idempotency key had been used: the existing job came back (200). */
  async submit(req: SubmitJobRequest, signal?: AbortSignal): Promise<{ job: Job; created: boolean }> {
    const { status, body } = await this.call('POST', '/v1/jobs', req, Job, { signal });
    return { job: body, created: status === 201 };
  }

  async get(id: string, signal?: AbortSignal): Promise<Job> {
    return (await this.call('GET', jobPath(id), undefined, Job, { signal })).body;
  }

  async list(query: ListQuery = {}, signal?: AbortSignal): Promise<ListJobsResponse> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') qs.set(k, String(v));
    const path = `/v1/jobs${qs.size > 0 ? `?${qs}` : ''}`;
    return (await this.call('GET', path, undefined, ListJobsResponse, { signal })).body;
  }

  /** Pending → cancelled; running → pending_cancellation; terminal → skipped_terminal. */
  async cancel(id: string, reason?: string, signal?: AbortSignal): Promise<CancelJobResponse> {
    const body = reason ? { reason } : {};
    return (await this.call('POST', `${jobPath(id)}/cancel`, body, CancelJobResponse, { signal })).body;
  }

  /** Back to pending with executor, lease and checkpoint cleared; terminal jobs only with `force`. */
  async reschedule(id: string, force = false, signal?: AbortSignal): Promise<RescheduleJobResponse> {
    const body = force ? { force: true } : {};
    return (await this.call('POST', `${jobPath(id)}/reschedule`, body, RescheduleJobResponse, { signal }))
      .body;
  }

  /**
   * Long-polls until the job is terminal or `timeoutMs` passes (the server holds at most
   * {@link MAX_WAIT_MS}), and returns the job as it then stands: check its state. The request's
   * deadline is the wait plus the client's `timeoutMs`.
   */
  async wait(id: string, timeoutMs: number, signal?: AbortSignal): Promise<Job> {
    const ms = Math.max(0, Math.min(MAX_WAIT_MS, Math.round(timeoutMs)));
    const path = `${jobPath(id)}/wait?timeout_ms=${ms}`;
    return (await this.call('GET', path, undefined, Job, { signal, extraMs: ms })).body;
  }

  /** One page of log lines; pass the answer's `last_seq` as `after` to get the next. */
  async logs(id: string, query: LogsQuery = {}, signal?: AbortSignal): Promise<LogsResponse> {
    const qs = new URLSearchParams();
    if (query.after !== undefined) qs.set('after', String(query.after));
    if (query.limit !== undefined) qs.set('limit', String(query.limit));
    const path = `${jobPath(id)}/logs${qs.size > 0 ? `?${qs}` : ''}`;
    return (await this.call('GET', path, undefined, LogsResponse, { signal })).body;
  }

  /**
   * The operators the control plane has seen polling (`GET /v1/operators`, admin): which data plane
   * and job types each serves, and whether it is stale. Older control planes answer 404.
   */
  async operators(signal?: AbortSignal): Promise<OperatorsSeen> {
    return (await this.call('GET', '/v1/operators', undefined, OperatorsSeen, { signal })).body;
  }

  /** Closes the connections. The client cannot be used afterwards. */
  close(): Promise<void> {
    return this.agent.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async call<S extends z.ZodType>(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    schema: S,
    opts: { signal?: AbortSignal | undefined; extraMs?: number },
  ): Promise<{ status: number; body: z.infer<S> }> {
    const { signal } = opts;
    signal?.throwIfAborted();
    const timeout = AbortSignal.timeout(this.timeoutMs + (opts.extraMs ?? 0));
    let status: number;
    let answer: unknown;
    try {
      const res = await request(this.base + path, {
        method,
        dispatcher: this.agent,
        headers: {
          accept: 'application/json',
          authorization: this.auth,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      status = res.statusCode;
      answer = await readAnswer(res); // throws the ApiError of an error status
    } catch (err) {
      throw wrapTransport(err, this.base, signal);
    }
    const parsed = schema.safeParse(answer);
    if (!parsed.success) {
      const { issues } = parsed.error;
      const first = issues[0];
      const where = first && first.path.length > 0 ? first.path.map(String).join('.') : 'body';
      throw new ProtocolError(
        `the control plane at ${this.base} answered ${method} ${path.split('?')[0]} with something unexpected` +
          (first ? ` (${where}: ${first.message}${issues.length > 1 ? ', …' : ''})` : ''),
        issues,
      );
    }
    return { status, body: parsed.data };
  }
}

const jobPath = (id: string): string => `/v1/jobs/${encodeURIComponent(id)}`;
