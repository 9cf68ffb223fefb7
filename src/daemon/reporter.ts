/**
 * The batched reporter: every outcome (complete, fail, cancelled, release) goes through one
 * `report` request in flight at a time, batching whatever accumulated meanwhile, so a busy daemon
 * spends a fraction of a request per job. A job stays held (its lease renewed by the poll) until
 * the control plane acknowledged its outcome, so an outage loses nothing: the batch is retried
 * until the control plane is back or the daemon stops.
 *
 * Before a batch goes out, the log lines its jobs still buffer are shipped (one request for all of
 * them), since the lease, and with it the right to append, ends with the report.
 */
import type { Logger } from 'pino';
import type { ReportEntry } from '../contract/index.ts';
import { type ControlPlane, describeError, untilAnswered } from './control-plane.ts';
import type { Metrics } from './metrics.ts';
import type { Outcome } from './run-job.ts';
import type { Execution } from './slots.ts';

/** What the reporter sees of the daemon. */
export interface ReporterContext {
  controlPlane: ControlPlane;
  operatorId: string;
  log: Logger;
  metrics: Metrics;
  /** Aborted when the daemon stops. */
  stopSignal: AbortSignal;
  /** Ships the buffered log lines of these executions (best effort). */
  flushLogs(executions: readonly Execution[]): Promise<void>;
  /** The control plane answered for this execution's outcome (ok, lost or invalid). */
  acknowledged(ex: Execution): void;
  /** A refused token: the daemon must stop. */
  fatal(err: Error): void;
  /** Nothing is left to report (a drain waits for it). */
  idle(): void;
}

type Pending = { ex: Execution; entry: ReportEntry };

export class Reporter {
  private queue: Pending[] = [];
  private inFlight = false;
  private scheduled = false;
  private readonly c: ReporterContext;

  constructor(context: ReporterContext) {
    this.c = context;
  }

  /** Nothing queued and nothing in flight. */
  get idle(): boolean {
    return this.queue.length === 0 && !this.inFlight && !this.scheduled;
  }

  enqueue(ex: Execution, outcome: Exclude<Outcome, { kind: 'forget' }>): void {
    ex.phase = 'reporting';
    const base = { id: ex.job.id, lease_token: ex.token };
    const entry: ReportEntry =
      outcome.kind === 'complete'
        ? { ...base, outcome: 'complete', result: outcome.result }
        : outcome.kind === 'fail'
          ? { ...base, outcome: 'fail', failure: outcome.failure }
          : outcome.kind === 'cancelled'
            ? { ...base, outcome: 'cancelled' }
            : { ...base, outcome: 'release', reason: outcome.reason };
    this.queue.push({ ex, entry });
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight) return;
    this.scheduled = true;
    // One turn of the event loop lets the outcomes of jobs finishing together share a request.
    setImmediate(() => {
      this.scheduled = false;
      this.inFlight = true;
      void this.flush()
        .catch((err: unknown) =>
          this.c.log.error({ err: describeError(err) }, 'reporter failed unexpectedly'),
        )
        .finally(() => {
          this.inFlight = false;
          if (this.queue.length > 0 && !this.c.stopSignal.aborted) this.schedule();
          else if (this.idle) this.c.idle();
        });
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0 && !this.c.stopSignal.aborted) {
      const batch = this.queue.splice(0, 1_000);
      await this.c.flushLogs(batch.map((b) => b.ex));
      const res = await untilAnswered(
        () =>
          this.c.controlPlane.report(
            { executor: this.c.operatorId, reports: batch.map((b) => b.entry) },
            { signal: this.c.stopSignal },
          ),
        this.c,
        'report',
        () => ({ pending: batch.length + this.queue.length }),
      );
      if (res === undefined) {
        // Stopped: the outcomes stay unacknowledged (their leases lapse; the jobs are re-delivered).
        this.queue.unshift(...batch);
        return;
      }
      res.results.forEach((r, i) => {
        const item = batch[i];
        if (!item || item.entry.id !== r.id) return;
        const { ex } = item;
        if (r.status === 'invalid' && item.entry.outcome === 'complete') {
          // The control plane refused the result (its schema differs from ours): fail the job
          // rather than leave it hanging.
          this.c.log.error(
            { job_id: r.id, job_type: ex.job.type, error: r.error },
            'control plane refused the result',
          );
          this.queue.push({
            ex,
            entry: {
              id: r.id,
              lease_token: ex.token,
              outcome: 'fail',
              failure: {
                code: 'INVALID_RESULT',
                message: `the control plane refused the result: ${r.error?.message ?? 'invalid'}`,
                retryable: false,
                details: r.error?.details,
              },
            },
          });
          return;
        }
        if (r.status === 'invalid') {
          this.c.log.error(
            { job_id: r.id, job_type: ex.job.type, error: r.error },
            'control plane refused a report',
          );
        } else if (r.status === 'lost') {
          this.c.metrics.leasesLost.inc();
          this.c.log.warn(
            { job_id: r.id, job_type: ex.job.type },
            'lease lost before the outcome was reported',
          );
        }
        ex.phase = 'done';
        this.c.acknowledged(ex);
      });
    }
  }
}
