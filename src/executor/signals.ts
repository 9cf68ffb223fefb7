/**
 * A job's two signals and the one rule for aborting them, shared by the daemon and the executor
 * test kit. `signal` carries the first reason the job must stop (`cancel`, `timeout`, `lost`,
 * `shutdown`). `leaseSignal` carries only `lost` and `shutdown`, and is aborted even after `signal`
 * was: a cancel or a timeout is still being confirmed downstream when the lease goes, and that
 * confirmation must end too.
 */
import { type AbortReason, JobAbort } from './index.ts';

export class JobSignals {
  private readonly job = new AbortController();
  private readonly lease = new AbortController();

  get signal(): AbortSignal {
    return this.job.signal;
  }

  get leaseSignal(): AbortSignal {
    return this.lease.signal;
  }

  abort(reason: AbortReason): void {
    if (
      (reason === 'lost' || reason === 'rescheduled' || reason === 'shutdown') &&
      !this.lease.signal.aborted
    ) {
      this.lease.abort(new JobAbort(reason));
    }
    if (!this.job.signal.aborted) this.job.abort(new JobAbort(reason));
  }
}
