/**
 * Bounded retries with capped, full-jitter exponential backoff (the AWS architecture blog's "full
 * jitter": sleep = random(0, min(cap, base · 2^n))), honouring a server's Retry-After when it asks
 * for longer. Written here rather than taken from p-retry or cockatiel because neither does full
 * jitter together with a per-error minimum delay (Retry-After), and this is twenty lines.
 */

/** An error that says whether trying again may help, and how long to wait at least. */
export interface RetryDecision {
  retryable: boolean;
  /** Server-requested minimum delay (Retry-After), in ms. */
  retryAfterMs?: number;
}

export interface RetryOptions {
  /** Total attempts including the first; ≥ 1. */
  maxAttempts: number;
  baseMs: number;
  capMs: number;
  signal?: AbortSignal;
  classify(err: unknown): RetryDecision;
  /** Called before each sleep (for logs and metrics). */
  onRetry?(err: unknown, attempt: number, delayMs: number): void;
  /** Test hook: the random source in [0, 1). */
  random?: () => number;
}

export function backoffDelay(attempt: number, baseMs: number, capMs: number, random = Math.random): number {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** attempt));
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      const decision = opts.classify(err);
      if (!decision.retryable || attempt + 1 >= opts.maxAttempts) throw err;
      const delay = Math.max(
        decision.retryAfterMs ?? 0,
        backoffDelay(attempt, opts.baseMs, opts.capMs, opts.random),
      );
      opts.onRetry?.(err, attempt + 1, delay);
      await sleep(delay, opts.signal);
    }
  }
}

export interface UntilStoppedOptions {
  /** Ends the retries: the function then resolves `undefined`. */
  signal: AbortSignal;
  baseMs: number;
  capMs: number;
  /**
   * Told of each failure and the pause before the next try; answering `stop` ends the retries
   * (a fatal error), resolving `undefined`.
   */
  onError(err: unknown, failures: number, delayMs: number): 'retry' | 'stop';
  random?: () => number;
}

/**
 * Runs `fn` until it succeeds, sleeping a capped, full-jitter backoff after each failure, for the
 * daemon's loops that must outlast a control-plane outage (the poll, the reporter, log shipping).
 * Every wait is bounded; only the stop signal or a fatal error ends the whole.
 */
export async function retryUntilStopped<T>(
  fn: () => Promise<T>,
  opts: UntilStoppedOptions,
): Promise<T | undefined> {
  for (let failures = 1; ; failures++) {
    if (opts.signal.aborted) return undefined;
    try {
      return await fn();
    } catch (err) {
      if (opts.signal.aborted) return undefined;
      const delay = backoffDelay(Math.min(failures, 10), opts.baseMs, opts.capMs, opts.random) + 50;
      if (opts.onError(err, failures, delay) === 'stop') return undefined;
      try {
        await sleep(delay, opts.signal);
      } catch {
        return undefined;
      }
    }
  }
}
