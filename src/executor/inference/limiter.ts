/**
 * A concurrency limit per model: at most `limit` calls in flight to one model from this operator,
 * the others wait in arrival order. A waiter whose job is aborted leaves the queue at once. Written
 * here (30 lines) rather than taken from p-limit or p-queue: neither takes an AbortSignal for a
 * waiter that gives up.
 */

export class ModelLimiter {
  readonly #slots = new Map<string, { inFlight: number; waiters: Array<() => void> }>();

  /**
   * Waits for a slot of `model` (limit `limit`); resolves with its release, or rejects on abort.
   * `onWait` is told, once, when the caller has to queue.
   */
  async acquire(
    model: string,
    limit: number,
    signal: AbortSignal,
    onWait?: (inFlight: number) => void,
  ): Promise<() => void> {
    signal.throwIfAborted();
    let s = this.#slots.get(model);
    if (s === undefined) {
      s = { inFlight: 0, waiters: [] };
      this.#slots.set(model, s);
    }
    const state = s;
    if (state.inFlight >= limit) {
      onWait?.(state.inFlight);
      await new Promise<void>((resolve, reject) => {
        const wake = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = () => {
          state.waiters.splice(state.waiters.indexOf(wake), 1);
          reject(signal.reason);
        };
        state.waiters.push(wake);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    } else {
      state.inFlight++;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = state.waiters.shift();
      // The slot passes to the next waiter as it is: inFlight is unchanged.
      if (next) next();
      else if (--state.inFlight === 0) this.#slots.delete(model);
    };
  }

  /** Calls in flight to `model` (metrics, tests). */
  inFlight(model: string): number {
    return this.#slots.get(model)?.inFlight ?? 0;
  }
}
