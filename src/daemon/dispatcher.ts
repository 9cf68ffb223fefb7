/**
 * The dispatcher acts on what the control plane says (lost, cancel, claimed) and runs each claimed
 * job on its executor, one execution per job at a time:
 *
 * - `lost` aborts the job's execution with `lost` and drops it: nothing is reported and remote work
 *   is left running (a peer may reattach). Lost because the job was `rescheduled` (the poll's
 *   `lost_reasons`), it aborts with `rescheduled` instead: the job starts fresh and nobody will
 *   reattach, so the executor stops the remote work it started (bounded) before it settles.
 * - `cancel` aborts it with `cancel`: the executor stops the work, confirms, and the daemon reports
 *   `cancelled`.
 * - A claim of a job id this daemon still runs (claimed back after a reschedule or an expiry)
 *   aborts the old execution with `lost` and starts the new one only once the old has settled.
 * - A job claimed in `pending_cancellation` (its holder went away mid-cancel) or cancelled before it
 *   started still reaches its executor when its checkpoint names remote work, with its signal
 *   already aborted for `cancel`: the executor reattaches, stops that work and confirms. Without a
 *   checkpoint there is nothing remote, and it is reported `cancelled` at once. Stale checkpoints
 *   (remote work a reschedule left behind) count as remote work here.
 */
import type { Logger } from 'pino';
import type { Job, PollResponse } from '../contract/index.ts';
import { abortReasonOf, type Executor, JobAbort } from '../executor/index.ts';
import { resultFailure } from '../lib/result.ts';
import { type ControlPlane, describeError, failureKind } from './control-plane.ts';
import type { LogShipper } from './log-shipper.ts';
import type { Metrics } from './metrics.ts';
import type { Registry } from './registry.ts';
import type { Reporter } from './reporter.ts';
import { abortedOutcome, type Outcome, runJob } from './run-job.ts';
import { Execution, type Slots } from './slots.ts';

/** What the dispatcher sees of the daemon. */
export interface DispatcherContext {
  controlPlane: ControlPlane;
  registry: Registry;
  slots: Slots;
  reporter: Reporter;
  shipper: LogShipper;
  metrics: Metrics;
  log: Logger;
  jobTimeoutMs: number;
  jobTimeoutsMs: Readonly<Record<string, number>>;
  stopSignal: AbortSignal;
  /** Whether new jobs may start (not draining). */
  accepting(): boolean;
  now(): number;
  /** A slot freed up: offer it at once. */
  slotFreed(): void;
}

/** Stands in for the executor of a type nobody here serves (the job is failed, never run). */
const NO_EXECUTOR: Executor = { name: 'none', jobTypes: [], execute: async () => undefined };

export class Dispatcher {
  private readonly c: DispatcherContext;

  constructor(context: DispatcherContext) {
    this.c = context;
  }

  answer(res: PollResponse, sentAt: number): void {
    for (const id of res.lost) {
      const ex = this.c.slots.get(id);
      if (ex === undefined) continue;
      if (res.lost_reasons[id] === 'rescheduled') {
        this.lose(
          ex,
          'lease lost: the job was rescheduled; stopping the remote work it started',
          'rescheduled',
        );
      } else {
        this.lose(
          ex,
          `lease lost (${res.lost_reasons[id] ?? 'expired'}): stopping locally, leaving remote work running`,
        );
      }
    }
    for (const id of res.cancel) {
      const ex = this.c.slots.get(id);
      if (!ex?.active || ex.signals.signal.aborted) continue;
      ex.cancelSeenAt = performance.now();
      this.c.shipper.jobLog(ex).info({}, 'cancel requested');
      ex.signals.abort('cancel');
    }
    for (const job of res.claimed) this.dispatch(job, sentAt);
  }

  /** The lease is gone (told so, or fenced): abort as lost and stop holding the job. */
  lose(ex: Execution, why: string, reason: 'lost' | 'rescheduled' = 'lost'): void {
    this.c.metrics.leasesLost.inc();
    this.c.slots.drop(ex);
    if (ex.active) {
      this.c.shipper.jobLog(ex).warn({}, why);
      ex.signals.abort(reason);
    }
  }

  /** Aborts every execution still working with `reason` (drain timeout, forced stop, fatal error). */
  abortAll(reason: 'shutdown' | 'lost'): void {
    for (const ex of this.c.slots.holders()) if (ex.active) ex.signals.abort(reason);
  }

  /** Aborts executions that have not started yet (drain: release them now). */
  abortQueued(): void {
    for (const ex of this.c.slots.holders()) if (ex.phase === 'queued') ex.signals.abort('shutdown');
  }

  private dispatch(job: Job, sentAt: number): void {
    const token = job.lease?.token;
    if (token === undefined) {
      this.c.log.error({ job_id: job.id, job_type: job.type }, 'claimed job carries no lease; ignoring it');
      return;
    }
    const executor = this.c.registry.routes.get(job.type);
    if (executor === undefined || !this.c.accepting()) {
      // A type we did not ask for is failed, never run; a job claimed as we started draining goes
      // straight back.
      const ex = new Execution(job, token, executor ?? NO_EXECUTOR, sentAt);
      this.supersede(this.c.slots.hold(ex, false));
      ex.settle();
      this.c.reporter.enqueue(
        ex,
        executor === undefined
          ? {
              kind: 'fail',
              failure: {
                code: 'UNKNOWN_JOB_TYPE',
                message: `no executor here serves '${job.type}'`,
                retryable: false,
              },
            }
          : { kind: 'release', reason: 'operator draining' },
      );
      return;
    }
    const ex = new Execution(job, token, executor, sentAt);
    const previous = this.c.slots.hold(ex, true);
    this.supersede(previous);
    if (job.state === 'pending_cancellation') {
      ex.cancelSeenAt = performance.now();
      ex.signals.abort('cancel');
    }
    this.c.metrics.claimed.inc({ job_type: job.type, executor: executor.name });
    void this.run(ex, previous?.settled).catch((err: unknown) => {
      // run() never throws; this is a last line of defence.
      this.c.log.error({ err: describeError(err), job_id: job.id }, 'job execution failed unexpectedly');
    });
  }

  /** The same job was claimed again while an older execution of it still runs: stop that one. */
  private supersede(previous: Execution | undefined): void {
    // Already told it lost its lease (the same answer said so): nothing more to do.
    if (!previous?.active || previous.signals.leaseSignal.aborted) return;
    this.c.metrics.leasesLost.inc();
    this.c.shipper.jobLog(previous).warn({}, 'claimed again: stopping the previous execution first');
    previous.signals.abort('lost');
  }

  private async run(ex: Execution, after: Promise<void> | undefined): Promise<void> {
    const { job, executor } = ex;
    if (after !== undefined) await after;
    const timeoutMs = this.c.jobTimeoutsMs[job.type] ?? this.c.jobTimeoutMs;
    let outcome: Outcome;
    try {
      const reason = abortReasonOf(ex.signals.signal);
      // Aborted before it started: nothing ran, unless a cancel must stop the remote work a
      // previous holder left (its checkpoint names it).
      const remote = job.checkpoint !== null || job.stale_checkpoints.length > 0;
      const skip = reason !== undefined && !(reason === 'cancel' && remote);
      if (skip) {
        outcome = abortedOutcome(ex.signals, timeoutMs) ?? { kind: 'forget' };
      } else {
        ex.phase = 'running';
        if (reason === undefined) {
          const pickup = Date.now() - Date.parse(job.created_at);
          this.c.metrics.pickup.observe(
            { job_type: job.type, executor: executor.name },
            Math.max(0, pickup) / 1000,
          );
        }
        // The job's log (`jobs logs`) says what happened to every job, whatever its executor: the
        // start here, the outcome in settle(); executors add their statement or remote handle.
        const where = `attempt ${job.attempt} of ${job.max_attempts} on executor ${executor.name}`;
        if (job.checkpoint) {
          this.c.shipper
            .loggerFor(ex)
            .info(`reattaching from checkpoint: ${where}${reason === 'cancel' ? ', to cancel' : ''}`, {
              checkpoint: job.checkpoint,
              cancel: reason === 'cancel',
            });
        } else this.c.shipper.loggerFor(ex).info(`starting: ${where}`);
        outcome = await runJob(job, {
          executor,
          signals: ex.signals,
          timeoutMs,
          now: this.c.now,
          context: {
            saveCheckpoint: (checkpoint) => this.saveCheckpoint(ex, { checkpoint }),
            clearStaleCheckpoints: () => this.saveCheckpoint(ex, { clear_stale: true }),
            progress: (p) => {
              ex.progress = p;
              ex.progressDirty = true;
            },
            log: this.c.shipper.loggerFor(ex),
          },
        });
      }
    } catch (err) {
      outcome = { kind: 'fail', failure: { code: 'INTERNAL', message: String(err), retryable: true } };
    }
    this.settle(ex, outcome);
  }

  private settle(ex: Execution, outcome: Outcome): void {
    const { job, executor } = ex;
    if (ex.cancelSeenAt !== undefined) {
      this.c.metrics.cancelLatency.observe((performance.now() - ex.cancelSeenAt) / 1000);
    }
    this.c.slots.vacate(ex);
    ex.settle();
    const labels = { job_type: job.type, executor: executor.name, outcome: outcome.kind };
    this.c.metrics.outcomes.inc(labels);
    this.c.metrics.duration.observe(labels, (performance.now() - ex.dispatchedAt) / 1000);
    if (outcome.kind === 'fail') {
      const code = this.c.metrics.failureCode(outcome.failure.code);
      this.c.metrics.failures.inc({ job_type: job.type, executor: executor.name, code });
    } else if (outcome.kind === 'complete' && resultFailure(outcome.result) !== undefined) {
      this.c.metrics.resultFailures.inc({ job_type: job.type, executor: executor.name });
    }
    if (outcome.kind === 'forget') {
      // The lease is gone: nothing more can be written to the job's log.
      if (this.c.log.isLevelEnabled('info')) this.c.shipper.jobLog(ex).info({}, 'job forget');
    } else if (outcome.kind === 'fail') {
      const { code, retryable } = outcome.failure;
      this.c.shipper
        .loggerFor(ex)
        .warn(`job fail: ${code}${retryable ? ' (retryable)' : ''}`, { code, retryable });
    } else {
      const seconds = ((performance.now() - ex.dispatchedAt) / 1000).toFixed(1);
      this.c.shipper
        .loggerFor(ex)
        .info(`job ${outcome.kind === 'complete' ? 'completed' : outcome.kind} after ${seconds} s`);
    }
    if (outcome.kind === 'forget' || this.c.slots.get(job.id) !== ex) {
      // Lost, or superseded by a newer claim of the same job: report nothing.
      ex.phase = 'done';
      this.c.slots.drop(ex);
    } else {
      this.c.reporter.enqueue(ex, outcome);
    }
    this.c.slotFreed();
  }

  private async saveCheckpoint(
    ex: Execution,
    body: { checkpoint?: Record<string, unknown>; clear_stale?: true },
  ): Promise<void> {
    try {
      await this.c.controlPlane.checkpoint(
        ex.job.id,
        { lease_token: ex.token, ...body },
        { signal: this.c.stopSignal },
      );
    } catch (err) {
      if (failureKind(err) === 'gone') {
        if (this.c.slots.get(ex.job.id) === ex) this.lose(ex, 'lease lost while saving a checkpoint');
        else ex.signals.abort('lost');
        throw new JobAbort('lost');
      }
      throw err;
    }
  }
}
