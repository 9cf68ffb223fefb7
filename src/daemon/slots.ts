/**
 * The daemon's one ledger of jobs: which execution holds each job's lease (`held`), and which
 * executions occupy a slot (queued or running). Every count the daemon needs — free slots per
 * executor and overall, jobs held, jobs running — is derived from here, and the gauges are set here.
 *
 * An execution keeps its slot until it settles, even after it stopped being the job's holder (its
 * lease was lost, or the same job was claimed again): an abort is a request, and the slot is free
 * only once the executor has actually returned.
 */
import type { Logger } from 'pino';
import type { Job, LogLine, Progress } from '../contract/index.ts';
import type { Executor } from '../executor/index.ts';
import { JobSignals } from '../executor/signals.ts';
import type { Metrics } from './metrics.ts';

export type Phase = 'queued' | 'running' | 'reporting' | 'done';

/** One execution of one claimed job under one lease. */
export class Execution {
  readonly job: Job;
  readonly token: string;
  readonly executor: Executor;
  readonly signals = new JobSignals();
  phase: Phase = 'queued';
  progress: Progress | null;
  progressDirty = false;
  logLines: LogLine[] = [];
  readonly dispatchedAt = performance.now();
  /** When (daemon clock, ms) the last poll that renewed this lease was sent. */
  renewedAt: number;
  cancelSeenAt: number | undefined;
  logger: Logger | undefined;
  /** Resolves once the executor has returned (the slot is free). */
  readonly settled: Promise<void>;
  settle!: () => void;

  constructor(job: Job, token: string, executor: Executor, renewedAt: number) {
    this.job = job;
    this.token = token;
    this.executor = executor;
    this.progress = job.progress;
    this.renewedAt = renewedAt;
    this.settled = new Promise((resolve) => {
      this.settle = resolve;
    });
  }

  /** Queued or running: an executor may be working on it. */
  get active(): boolean {
    return this.phase === 'queued' || this.phase === 'running';
  }
}

export class Slots {
  private readonly held = new Map<string, Execution>();
  /** By job id: the execution occupying a slot for it, held or not (at most one: see `hold`). */
  private readonly working = new Map<string, Execution>();
  private readonly busy = new Map<string, number>();
  private busyTotal = 0;
  private readonly limits: ReadonlyMap<string, number>;
  private readonly concurrency: number;
  private readonly metrics: Metrics;

  constructor(limits: ReadonlyMap<string, number>, concurrency: number, metrics: Metrics) {
    this.limits = limits;
    this.concurrency = concurrency;
    this.metrics = metrics;
    metrics.capacity.set(concurrency);
  }

  /** Free slots of one executor, within the overall limit. */
  freeFor(executor: string): number {
    return Math.max(
      0,
      Math.min((this.limits.get(executor) ?? 0) - (this.busy.get(executor) ?? 0), this.free),
    );
  }

  get free(): number {
    return Math.max(0, this.concurrency - this.busyTotal);
  }

  /** Executions occupying a slot (queued or running), held or not. */
  get running(): number {
    return this.busyTotal;
  }

  get heldCount(): number {
    return this.held.size;
  }

  get(id: string): Execution | undefined {
    return this.held.get(id);
  }

  holders(): IterableIterator<Execution> {
    return this.held.values();
  }

  /**
   * Makes `ex` the holder of its job and gives it a slot. Returns the execution it replaces (the
   * same job claimed again while an older execution of it still runs): the caller aborts that one
   * and starts `ex` only once it settled.
   */
  hold(ex: Execution, occupy: boolean): Execution | undefined {
    const previous = this.working.get(ex.job.id) ?? this.held.get(ex.job.id);
    this.held.set(ex.job.id, ex);
    if (occupy) {
      this.working.set(ex.job.id, ex);
      this.busy.set(ex.executor.name, (this.busy.get(ex.executor.name) ?? 0) + 1);
      this.busyTotal++;
      this.metrics.inFlight.inc({ executor: ex.executor.name });
    }
    this.metrics.held.set(this.held.size);
    return previous;
  }

  /** `ex` no longer holds its job (outcome acknowledged, lease lost, fenced). */
  drop(ex: Execution): void {
    if (this.held.get(ex.job.id) === ex) this.held.delete(ex.job.id);
    this.metrics.held.set(this.held.size);
  }

  /** The executor returned: its slot is free. */
  vacate(ex: Execution): void {
    if (this.working.get(ex.job.id) === ex) this.working.delete(ex.job.id);
    this.busy.set(ex.executor.name, (this.busy.get(ex.executor.name) ?? 1) - 1);
    this.busyTotal--;
    this.metrics.inFlight.dec({ executor: ex.executor.name });
  }
}
