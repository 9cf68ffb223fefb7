/**
 * The user side of the contract, for the `jobs` CLI and scripts. Interactive: no retries, but
 * every call has a timeout and takes the caller's AbortSignal, and every answer is validated.
 */
import { Agent, request } from 'undici';
import type { z } from 'zod';
import {
  CancelJobResponse,
  Job,
  ListJobsResponse,
  type ListJobsResponse as ListJobsResponseType,
  LogsResponse,
  RescheduleJobResponse,
  type SubmitJobRequest,
} from '../contract/index.ts';
import { ProtocolError, readAnswer, wrapTransport } from './transport.ts';

export { ApiError } from './transport.ts';

export interface UserClientOptions {
  url: string;
  token: string;
  /** Per request, beyond any wait it asks for. Default 30 s. */
  timeoutMs?: number;
}

export interface ListQuery {
  state?: string;
  type?: string;
  data_plane_id?: string;
  company_id?: number;
  per_page?: number;
  cursor?: string;
}

export class UserClient {
  private readonly base: string;
  private readonly auth: string;
  private readonly timeoutMs: number;
  private readonly agent = new Agent({ headersTimeout: 0, bodyTimeout: 0 });

  constructor(options: UserClientOptions) {
    this.base = options.url.replace(/\/$/, '');
    this.auth = `Bearer ${options.token}`;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  async submit(req: SubmitJobRequest, signal?: AbortSignal): Promise<{ job: Job; created: boolean }> {
    const { status, body } = await this.call('POST', '/v1/jobs', req, Job, signal);
    return { job: body, created: status === 201 };
  }

  async get(id: string, signal?: AbortSignal): Promise<Job> {
    return (await this.call('GET', `/v1/jobs/${encodeURIComponent(id)}`, undefined, Job, signal)).body;
  }

  async list(query: ListQuery = {}, signal?: AbortSignal): Promise<ListJobsResponseType> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') qs.set(k, String(v));
    const path = `/v1/jobs${qs.size ? `?${qs}` : ''}`;
    return (await this.call('GET', path, undefined, ListJobsResponse, signal)).body;
  }

  async cancel(id: string, reason?: string, signal?: AbortSignal) {
    const path = `/v1/jobs/${encodeURIComponent(id)}/cancel`;
    return (await this.call('POST', path, reason ? { reason } : {}, CancelJobResponse, signal)).body;
  }

  async reschedule(id: string, force = false, signal?: AbortSignal) {
    const path = `/v1/jobs/${encodeURIComponent(id)}/reschedule`;
    return (await this.call('POST', path, force ? { force: true } : {}, RescheduleJobResponse, signal)).body;
  }

  /** Long-polls until the job is terminal or `timeoutMs` (≤ 60 s) passes; returns the job either way. */
  async wait(id: string, timeoutMs: number, signal?: AbortSignal): Promise<Job> {
    const path = `/v1/jobs/${encodeURIComponent(id)}/wait?timeout_ms=${Math.max(0, Math.min(60_000, Math.round(timeoutMs)))}`;
    return (await this.call('GET', path, undefined, Job, signal, timeoutMs)).body;
  }

  async logs(id: string, opts: { after?: number; limit?: number } = {}, signal?: AbortSignal) {
    const qs = new URLSearchParams();
    if (opts.after !== undefined) qs.set('after', String(opts.after));
    if (opts.limit !== undefined) qs.set('limit', String(opts.limit));
    const path = `/v1/jobs/${encodeURIComponent(id)}/logs${qs.size ? `?${qs}` : ''}`;
    return (await this.call('GET', path, undefined, LogsResponse, signal)).body;
  }

  close(): Promise<void> {
    return this.agent.close();
  }

  private async call<S extends z.ZodType>(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    schema: S,
    signal?: AbortSignal,
    extraMs = 0,
  ): Promise<{ status: number; body: z.infer<S> }> {
    const timeout = AbortSignal.timeout(this.timeoutMs + extraMs);
    try {
      const res = await request(this.base + path, {
        method,
        dispatcher: this.agent,
        headers: {
          authorization: this.auth,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      const json = await readAnswer(res);
      const parsed = schema.safeParse(json);
      if (!parsed.success) {
        throw new ProtocolError(
          `the control plane answered ${method} ${path} with something unexpected`,
          parsed.error,
        );
      }
      return { status: res.statusCode, body: parsed.data };
    } catch (err) {
      throw wrapTransport(err, this.base, signal);
    }
  }
}
