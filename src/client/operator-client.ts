/**
 * The operator side of the contract, on undici's Pool (not fetch: 3–5× cheaper per request on
 * loopback). Every call carries the caller's AbortSignal and its own timeout, is retried when the
 * failure is transient (see transport.ts) with capped full-jitter backoff, and has its answer
 * validated against the contract before anyone uses it.
 */
import { Pool } from 'undici';
import type { z } from 'zod';
import {
  type AppendLogsBatchRequest,
  AppendLogsBatchResponse,
  CheckpointRequest,
  JobResponse,
  type PollRequest,
  PollResponse,
  type Progress,
  type ReportRequest,
  ReportResponse,
} from '../contract/index.ts';
import { retry } from '../lib/retry.ts';
import { redactSecrets } from '../lib/secrets.ts';
import { userAgent } from '../lib/version.ts';
import { classify, ProtocolError, readAnswer, wrapTransport } from './transport.ts';

const USER_AGENT = userAgent();

export interface OperatorClientOptions {
  url: string;
  token: string;
  /** Timeout of one request, beyond any long-poll wait it asks for. Default 10 s. */
  requestTimeoutMs?: number;
  /** Attempts per call (first included). Default 4. */
  maxAttempts?: number;
  retryBaseMs?: number;
  retryCapMs?: number;
  /** Connections in the pool: the long poll holds one; reports and checkpoints use the others. */
  connections?: number;
  onRetry?(path: string, err: unknown, attempt: number, delayMs: number): void;
  /**
   * Observes every request (metrics): path template, outcome, seconds. A long poll's seconds leave out
   * the time the control plane parked it (`parked_ms`).
   */
  onRequest?(path: string, outcome: 'ok' | 'error', seconds: number): void;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** Override the number of attempts (1 = no retry). */
  maxAttempts?: number;
}

export class OperatorClient {
  private readonly pool: Pool;
  private readonly opts: Required<Omit<OperatorClientOptions, 'onRetry' | 'onRequest'>> &
    Pick<OperatorClientOptions, 'onRetry' | 'onRequest'>;
  private readonly auth: string;
  private readonly basePath: string;

  constructor(options: OperatorClientOptions) {
    this.opts = {
      requestTimeoutMs: 10_000,
      maxAttempts: 4,
      retryBaseMs: 200,
      retryCapMs: 5_000,
      connections: 8,
      ...options,
    };
    const url = new URL(options.url);
    this.basePath = url.pathname.replace(/\/$/, '');
    this.pool = new Pool(url.origin, {
      connections: this.opts.connections,
      // Long polls hold a response for up to a minute: the body/headers timers must allow it; our own
      // per-request AbortSignal is the real deadline.
      headersTimeout: 0,
      bodyTimeout: 0,
      keepAliveTimeout: 60_000,
    });
    this.auth = `Bearer ${options.token}`;
  }

  /** Renew held leases, learn about cancels and lost jobs, claim up to `capacity` jobs. */
  poll(req: PollRequest, opts: CallOptions = {}): Promise<PollResponse> {
    return this.post('/v1/operators/poll', req, PollResponse, opts, req.wait_ms ?? 0);
  }

  /** The four terminal writes, batched. */
  report(req: ReportRequest, opts: CallOptions = {}): Promise<ReportResponse> {
    return this.post('/v1/operators/report', req, ReportResponse, opts);
  }

  checkpoint(
    id: string,
    body: {
      lease_token: string;
      checkpoint?: Record<string, unknown> | null;
      progress?: Progress | null;
      clear_stale?: boolean;
    },
    opts: CallOptions = {},
  ) {
    return this.post(`/v1/jobs/${id}/checkpoint`, CheckpointRequest.parse(body), JobResponse, opts);
  }

  /** Log lines of many held jobs, one request. */
  appendLogs(req: AppendLogsBatchRequest, opts: CallOptions = {}): Promise<AppendLogsBatchResponse> {
    return this.post('/v1/operators/logs', req, AppendLogsBatchResponse, opts);
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  /** Closes at once, failing requests in flight (used when the daemon is forced down). */
  async destroy(): Promise<void> {
    await this.pool.destroy();
  }

  private post<S extends z.ZodType>(
    path: string,
    body: unknown,
    schema: S | null,
    opts: CallOptions,
    extraTimeoutMs = 0,
  ): Promise<z.infer<S>> {
    return this.send(path, body, schema, opts, extraTimeoutMs) as Promise<z.infer<S>>;
  }

  private send(
    path: string,
    body: unknown,
    schema: z.ZodType | null,
    opts: CallOptions,
    extraTimeoutMs: number,
  ): Promise<unknown> {
    const template = path.replace(/[0-9a-f-]{36}/, '{id}');
    // The last net before the control plane: no secret this process holds leaves in a body.
    const payload = redactSecrets(JSON.stringify(body));
    return retry(
      async () => {
        const started = performance.now();
        const timeout = AbortSignal.timeout(this.opts.requestTimeoutMs + extraTimeoutMs);
        const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
        try {
          const res = await this.pool.request({
            method: 'POST',
            path: this.basePath + path,
            headers: {
              authorization: this.auth,
              'content-type': 'application/json',
              'user-agent': USER_AGENT,
            },
            body: payload,
            signal,
          });
          const json = await readAnswer(res);
          const elapsedMs = performance.now() - started;
          if (schema === null) {
            this.opts.onRequest?.(template, 'ok', elapsedMs / 1000);
            return json;
          }
          const parsed = schema.safeParse(json);
          if (!parsed.success) {
            throw new ProtocolError(
              `the control plane answered ${template} with a body the contract does not allow`,
              {
                issues: parsed.error.issues.slice(0, 5),
              },
            );
          }
          // A long poll's answer says how long the control plane parked it: the request's latency is
          // the rest (parking is waiting for work, not a slow control plane).
          this.opts.onRequest?.(template, 'ok', Math.max(0, elapsedMs - parkedMsOf(parsed.data)) / 1000);
          return parsed.data;
        } catch (err) {
          this.opts.onRequest?.(template, 'error', (performance.now() - started) / 1000);
          throw wrapTransport(err, this.opts.url, opts.signal);
        }
      },
      {
        maxAttempts: opts.maxAttempts ?? this.opts.maxAttempts,
        baseMs: this.opts.retryBaseMs,
        capMs: this.opts.retryCapMs,
        classify,
        ...(opts.signal ? { signal: opts.signal } : {}),
        onRetry: (err, attempt, delay) => this.opts.onRetry?.(template, err, attempt, delay),
      },
    );
  }
}

/** How long the control plane parked a request before answering (a poll's `parked_ms`), else 0. */
function parkedMsOf(answer: unknown): number {
  const parked = (answer as { parked_ms?: unknown } | null)?.parked_ms;
  return typeof parked === 'number' && Number.isFinite(parked) && parked > 0 ? parked : 0;
}
