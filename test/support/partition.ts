/**
 * A control-plane link that can be cut, for tests of what the daemon does without its control
 * plane. From `cutNow()` on, every call fails, those in flight too: at once like a reset connection
 * (`reset`), or never answering until the caller gives up (`blackhole`, a dropped route).
 */
import type { ControlPlane } from '../../src/daemon/control-plane.ts';

export class Partition implements ControlPlane {
  private readonly inner: ControlPlane;
  private mode: 'open' | 'reset' | 'blackhole' = 'open';
  private readonly inFlight = new Set<(err: Error) => void>();

  constructor(inner: ControlPlane) {
    this.inner = inner;
  }

  cutNow(mode: 'reset' | 'blackhole' = 'reset'): void {
    this.mode = mode;
    for (const reject of this.inFlight) reject(new Error('connection reset (partitioned)'));
  }

  heal(): void {
    this.mode = 'open';
  }

  private gate<T>(call: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    if (this.mode === 'reset') {
      return new Promise((_, reject) =>
        setTimeout(() => reject(new Error('connect ECONNRESET (partitioned)')), 20),
      );
    }
    if (this.mode === 'blackhole') {
      return new Promise((_, reject) => {
        if (signal?.aborted) reject(signal.reason);
        signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    }
    const { promise, reject } = Promise.withResolvers<never>();
    this.inFlight.add(reject);
    return Promise.race([call(), promise]).finally(() => this.inFlight.delete(reject));
  }

  poll: ControlPlane['poll'] = (req, opts) => this.gate(() => this.inner.poll(req, opts), opts?.signal);
  report: ControlPlane['report'] = (req, opts) => this.gate(() => this.inner.report(req, opts), opts?.signal);
  checkpoint: ControlPlane['checkpoint'] = (id, body, opts) =>
    this.gate(() => this.inner.checkpoint(id, body, opts), opts?.signal);
  appendLogs: ControlPlane['appendLogs'] = (req, opts) =>
    this.gate(() => this.inner.appendLogs(req, opts), opts?.signal);
}
