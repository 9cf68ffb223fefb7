/**
 * The `fetch` handed to `@huggingface/hub`, which has no retry and no timeout of its own, and whose
 * listing calls take no AbortSignal: every request here carries the job's signal and a timeout, and
 * 429, 5xx and network failures are retried a bounded number of times with full-jitter backoff
 * (honouring Retry-After). A request is replayable: bodies are strings or Blobs (the S3 objects of
 * `s3-object.ts`, read again from S3 on a retry), never one-shot streams.
 *
 * Uploads are streamed: a Blob body is sent as its `stream()` with an explicit content-length, on
 * undici's own `fetch`. Measured here (a 192 MiB body, --max-old-space-size=64): Node 24's global
 * fetch kept the whole request body in memory (peak RSS +200 MB) whether given the Blob or its
 * stream, and undici's fetch given a Blob reads it whole with `arrayBuffer()`; undici's fetch given
 * the stream stays flat (+40 MB).
 *
 * Failures become JobErrors here (`hubError`): 401 and 403 name the connection, never the token.
 */
import { fetch as undiciFetch } from 'undici';
import { JobError } from '../../src/executor/index.ts';
import { backoffDelay, sleep } from '../../src/lib/retry.ts';

export interface HubFetchOptions {
  signal: AbortSignal;
  requestTimeoutMs: number;
  /** Requests with a Blob body (uploads to the Hub's storage) get this bound instead. */
  uploadTimeoutMs: number;
  maxAttempts: number;
  baseMs: number;
  capMs?: number;
  onRetry?: (what: string, attempt: number, delayMs: number, why: string) => void;
  random?: () => number;
  /**
   * Requests whose 5xx or network failure leaves their effect unknown (a commit that may have
   * landed): not retried here; the caller finds out what happened before trying again. A 429 (not
   * processed) is still retried.
   */
  ambiguous?: (method: string, url: string) => boolean;
}

const retryableStatus = (s: number) => s === 429 || s >= 500;

function retryAfterMs(res: Response): number | undefined {
  const h = res.headers.get('retry-after');
  if (!h) return undefined;
  const secs = Number(h);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(h);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** An error and its cause (undici's "fetch failed" says why only in its cause). */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
  return `${err.name}: ${err.message}${cause}`;
}

function headersOf(h: RequestInit['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  new Headers(h).forEach((value, key) => {
    out[key] = value;
  });
  return out;
}

export function hubFetch(o: HubFetchOptions): typeof fetch {
  const wrapped = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const what = `${init.method ?? 'GET'} ${new URL(url).pathname}`;
    const upload = init.body instanceof Blob;
    const once = o.ambiguous?.(init.method ?? 'GET', url) ?? false;
    for (let attempt = 0; ; attempt++) {
      o.signal.throwIfAborted();
      init.signal?.throwIfAborted();
      const signal = AbortSignal.any([
        o.signal,
        ...(init.signal ? [init.signal] : []),
        AbortSignal.timeout(upload ? o.uploadTimeoutMs : o.requestTimeoutMs),
      ]);
      let why: string;
      let wait: number | undefined;
      try {
        const body = init.body;
        const res = (await undiciFetch(
          input as Parameters<typeof undiciFetch>[0],
          (body instanceof Blob
            ? {
                ...init,
                body: body.stream(),
                duplex: 'half',
                headers: { ...headersOf(init.headers), 'content-length': String(body.size) },
                signal,
              }
            : { ...init, signal }) as Parameters<typeof undiciFetch>[1],
        )) as unknown as Response;
        if (!retryableStatus(res.status) || attempt + 1 >= o.maxAttempts) return res;
        if (once && res.status !== 429) return res;
        why = `HTTP ${res.status}`;
        wait = retryAfterMs(res);
        await res.body?.cancel().catch(() => undefined);
      } catch (err) {
        // Our own abort (cancel, lost, shutdown) or the library's: no retry.
        if (o.signal.aborted || init.signal?.aborted) throw err;
        if (attempt + 1 >= o.maxAttempts || once) throw err;
        why = describe(err);
      }
      const delay = Math.max(wait ?? 0, backoffDelay(attempt, o.baseMs, o.capMs ?? 30_000, o.random));
      o.onRetry?.(what, attempt + 1, delay, why);
      await sleep(delay, o.signal);
    }
  };
  return wrapped as typeof fetch;
}

/** A failure of the Hub library (or of our fetch under it) as a JobError naming the connection. */
export function hubError(err: unknown, what: string, connectionId: string): JobError {
  if (err instanceof JobError) return err;
  const status = (err as { statusCode?: number }).statusCode;
  const message = err instanceof Error ? err.message : String(err);
  if (status === 401 || status === 403) {
    return new JobError(
      'HUB_AUTH',
      `${what}: the Hub refused the token of connection '${connectionId}' (HTTP ${status}); check that it is valid and has write access to the namespace`,
      { retryable: false, details: { connection_id: connectionId, status } },
    );
  }
  if (status === undefined || retryableStatus(status)) {
    return new JobError('HUB_UNAVAILABLE', `${what}: ${message} (after bounded retries)`, {
      retryable: true,
      cause: err,
      details: { connection_id: connectionId, ...(status ? { status } : {}) },
    });
  }
  return new JobError('HUB_REQUEST_REJECTED', `${what}: ${message}`, {
    retryable: false,
    details: { connection_id: connectionId, status },
  });
}
