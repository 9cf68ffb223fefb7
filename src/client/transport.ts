/**
 * One place that classifies what went wrong talking to the control plane, and whether trying again
 * may help: 429, 5xx (not 501), resets and timeouts retry; other 4xx do not. Every client of the contract throws these.
 */
import { ErrorBody } from '../contract/index.ts';
import { parseJsonLossless } from '../contract/json.ts';
import type { RetryDecision } from '../lib/retry.ts';

/** The control plane answered with an error status. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;
  readonly retryAfterMs: number | undefined;
  constructor(status: number, code: string, message: string, details?: unknown, retryAfterMs?: number) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * How the daemon must take a failed call: `auth` (the token is refused: stop), `gone` (the lease
 * this write named is no longer ours: stop the job, leave its remote work), anything else may pass.
 */
export function failureKind(err: unknown): 'auth' | 'gone' | 'other' {
  if (!(err instanceof ApiError)) return 'other';
  if (err.status === 401 || err.status === 403) return 'auth';
  if (err.status === 410 || err.status === 404) return 'gone';
  return 'other';
}

/** Error fields for logs: message and code, never request bodies (which may carry secrets). */
export function describeError(err: unknown): Record<string, unknown> {
  if (err instanceof ApiError)
    return { type: 'ApiError', status: err.status, code: err.code, message: err.message };
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { type: err.name, message: err.message, ...(code === undefined ? {} : { code }) };
  }
  return { message: String(err) };
}

/** The control plane could not be reached, or the exchange broke off (reset, timeout). */
export class TransportError extends Error {
  readonly errno: string | undefined;
  constructor(message: string, options: { cause: unknown; errno?: string }) {
    super(message, { cause: options.cause });
    this.name = 'TransportError';
    this.errno = options.errno;
  }
}

/** The control plane answered 2xx with a body the contract does not allow. */
export class ProtocolError extends Error {
  constructor(message: string, details?: unknown) {
    super(message, { cause: details });
    this.name = 'ProtocolError';
  }
}

/** Parses `Retry-After` (seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v.trim())) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Builds an ApiError from a status and whatever the body was. */
export function apiErrorFrom(status: number, body: unknown, retryAfter?: string | string[]): ApiError {
  const parsed = ErrorBody.safeParse(body);
  const retryAfterMs = parseRetryAfter(retryAfter);
  if (parsed.success) {
    const e = parsed.data.error;
    return new ApiError(status, e.code, e.message, e.details, retryAfterMs);
  }
  return new ApiError(status, `http_${status}`, `HTTP ${status} without an error body`, body, retryAfterMs);
}

const RETRYABLE_ERRNO = new Set([
  'ECONNRESET', // the server or a proxy dropped the connection mid-exchange
  'ECONNREFUSED', // the control plane is restarting
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN', // DNS hiccup
  'ENOTFOUND', // DNS not yet populated (a Kubernetes service coming up)
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/**
 * Whether a failed call may succeed if tried again:
 * - 429: throttled; wait (Retry-After when given) and retry.
 * - 5xx: the control plane or a proxy in front of it failed; retry. 501 is a permanent "no".
 * - other 4xx (400, 401, 403, 404, 409, 410, 413, 422): the request itself is wrong or the lease
 *   is gone; repeating it cannot help.
 * - transport errors (resets, refused connections, timeouts): retry.
 * - anything else (a bug, an abort): do not.
 */
export function classify(err: unknown): RetryDecision {
  if (err instanceof ApiError) {
    if (err.status === 429) return { retryable: true, retryAfterMs: err.retryAfterMs };
    if (err.status >= 500 && err.status !== 501) return { retryable: true, retryAfterMs: err.retryAfterMs };
    return { retryable: false };
  }
  if (err instanceof TransportError)
    return { retryable: err.errno === undefined || RETRYABLE_ERRNO.has(err.errno) };
  return { retryable: false };
}

/** Wraps a thrown undici/network error as a TransportError (aborts by the caller pass through). */
export function wrapTransport(err: unknown, url: string, signal?: AbortSignal): unknown {
  if (signal?.aborted) return signal.reason ?? err;
  if (err instanceof ApiError || err instanceof ProtocolError) return err;
  const e = err as { code?: string; name?: string; message?: string };
  if (e?.name === 'TimeoutError') {
    return new TransportError(`request to ${url} timed out`, { cause: err, errno: 'ETIMEDOUT' });
  }
  return new TransportError(`cannot reach the control plane at ${url}: ${e?.message ?? String(err)}`, {
    cause: err,
    ...(e?.code ? { errno: e.code } : {}),
  });
}

/**
 * Reads an answer's body as JSON (a non-JSON body stays text), and throws the ApiError an error
 * status calls for.
 */
export async function readAnswer(res: {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: { text(): Promise<string> };
}): Promise<unknown> {
  const text = await res.body.text();
  let json: unknown;
  try {
    json = text ? parseJsonLossless(text) : undefined;
  } catch {
    json = text;
  }
  if (res.statusCode >= 300) throw apiErrorFrom(res.statusCode, json, res.headers['retry-after']);
  return json;
}
