/**
 * The operator daemon's lifecycle, and where its parts meet.
 *
 *   starting ──start(), then the control plane accepts the token──▶ running ──drain()──▶ draining
 *       │                                                                      ──(idle, or drain timeout → release)──▶ stopped
 *       └──────────────────────────────┴──force() / fatal error (a refused token) ───────────────▶ stopped
 *
 * `start()` starts the executors and the poll loop; the daemon is `running` (and logs so) only once
 * the control plane has answered a poll, i.e. accepted the token. The first poll of a run asks for
 * no wait, so that answer comes at once and /readyz turns ready without waiting out a long poll.
 *
 * Every transition is logged; calls in the wrong state are refused. The parts, each in its file:
 * the poll loop with its claim plan, renewals and self-fencing (`poller.ts`); acting on the control
 * plane's answers and running each job (`dispatcher.ts`, `run-job.ts`); the ledger of held and
 * running jobs (`slots.ts`); the batched reporter (`reporter.ts`); log shipping (`log-shipper.ts`).
 *
 * Stop is not cancel: draining stops claiming, keeps renewing, lets jobs finish up to the drain
 * timeout, then releases the rest with their checkpoints; a second signal forces it.
 */
import type { Logger } from 'pino';
import type { ControlPlane } from './control-plane.ts';
import { describeError } from './control-plane.ts';
import { Dispatcher } from './dispatcher.ts';
import { LogShipper } from './log-shipper.ts';
import type { Metrics } from './metrics.ts';
import { Poller } from './poller.ts';
import type { Registry } from './registry.ts';
import { Reporter } from './reporter.ts';
import { Slots } from './slots.ts';

export type { ControlPlane } from './control-plane.ts';

export type DaemonState = 'starting' | 'running' | 'draining' | 'stopped';

export interface DaemonOptions {
  controlPlane: ControlPlane;
  registry: Registry;
  /** This operator's id (`DPO_EXECUTOR_ID`): the contract's `executor` field, shown as the job's holder. */
  operatorId: string;
  dataPlaneId: string;
  concurrency: number;
  executorConcurrency?: Readonly<Record<string, number>>;
  pollWaitMs: number;
  progressIntervalMs: number;
  jobTimeoutMs: number;
  jobTimeoutsMs?: Readonly<Record<string, number>>;
  logger: Logger;
  metrics: Metrics;
  /** Most log lines buffered per job before lines are dropped (counted). */
  maxBufferedLogLines?: number;
  /** The daemon's clock for leases and fencing (epoch ms); tests drive it. */
  now?: () => number;
}

/** Why the daemon stopped: a clean drain, a forced stop, or a fatal error. */
export type StopReason = { kind: 'drained' } | { kind: 'forced' } | { kind: 'fatal'; error: Error };

export class Daemon {
  private stateValue: DaemonState = 'starting';
  private readonly o: DaemonOptions;
  private readonly log: Logger;
  private readonly stopController = new AbortController();
  private readonly slots: Slots;
  private readonly poller: Poller;
  private readonly dispatcher: Dispatcher;
  private readonly reporter: Reporter;
  private readonly shipper: LogShipper;
  private loopDone: Promise<void> | null = null;
  private idleWaiters: Array<() => void> = [];
  private draining: Promise<StopReason> | null = null;
  private finished = false;
  private stopResolve!: (r: StopReason) => void;
  /** Resolves when the daemon has stopped, with why. */
  readonly stopped: Promise<StopReason>;

  constructor(options: DaemonOptions) {
    this.o = options;
    this.log = options.logger.child({ operator_id: options.operatorId });
    this.stopped = new Promise((resolve) => {
      this.stopResolve = resolve;
    });
    const limits = new Map<string, number>();
    for (const e of options.registry.executors) {
      limits.set(
        e.name,
        Math.min(options.executorConcurrency?.[e.name] ?? options.concurrency, options.concurrency),
      );
    }
    const now = options.now ?? Date.now;
    const common = {
      controlPlane: options.controlPlane,
      log: this.log,
      metrics: options.metrics,
      stopSignal: this.stopController.signal,
    };
    this.slots = new Slots(limits, options.concurrency, options.metrics);
    this.shipper = new LogShipper({
      ...common,
      operatorId: options.operatorId,
      maxBufferedLines: options.maxBufferedLogLines ?? 1_000,
      running: () => this.slots.holders(),
    });
    this.reporter = new Reporter({
      ...common,
      operatorId: options.operatorId,
      flushLogs: (executions) => this.shipper.flush(executions),
      acknowledged: (ex) => this.slots.drop(ex),
      idle: () => this.notifyIdle(),
      fatal: (err) => this.fatal(err),
    });
    this.dispatcher = new Dispatcher({
      ...common,
      registry: options.registry,
      slots: this.slots,
      reporter: this.reporter,
      shipper: this.shipper,
      jobTimeoutMs: options.jobTimeoutMs,
      jobTimeoutsMs: options.jobTimeoutsMs ?? {},
      accepting: () => this.stateValue === 'running',
      now,
      slotFreed: () => {
        this.poller.kick();
        this.notifyIdle();
      },
    });
    this.poller = new Poller({
      ...common,
      operatorId: options.operatorId,
      dataPlaneId: options.dataPlaneId,
      registry: options.registry,
      slots: this.slots,
      pollWaitMs: options.pollWaitMs,
      progressIntervalMs: options.progressIntervalMs,
      now,
      mode: () =>
        this.stateValue === 'running' || this.stateValue === 'starting'
          ? 'claiming'
          : this.stateValue === 'draining'
            ? 'renewing'
            : 'stopped',
      answer: (res, grantedAt) => {
        // The control plane answered: the token is accepted.
        if (this.stateValue === 'starting' && !this.finished) {
          this.transition('running', {
            data_plane_id: this.o.dataPlaneId,
            job_types: this.o.registry.jobTypes,
            concurrency: this.o.concurrency,
          });
        }
        this.dispatcher.answer(res, grantedAt);
        this.notifyIdle();
      },
      fenced: (ex) => this.dispatcher.lose(ex, 'fenced: lease not renewed for most of its TTL'),
      fatal: (err) => this.fatal(err),
    });
  }

  get state(): DaemonState {
    return this.stateValue;
  }

  /** Jobs held (queued, running or awaiting acknowledgement of their outcome). */
  get heldCount(): number {
    return this.slots.heldCount;
  }

  /** Last successful poll (epoch ms), for /readyz. */
  get lastPollAt(): number {
    return this.poller.lastPollAt;
  }

  /** When the poll loop last started a step (epoch ms), for /healthz. */
  get lastLoopStepAt(): number {
    return this.poller.lastStepAt;
  }

  private transition(to: DaemonState, fields: Record<string, unknown> = {}): void {
    this.log.info({ from: this.stateValue, to, ...fields }, `daemon ${to}`);
    this.stateValue = to;
  }

  /**
   * Starts the executors and the poll loop. The daemon turns `running` when the control plane first
   * answers (the token accepted), not here: a daemon that cannot reach it stays `starting`, alive but
   * not ready.
   */
  async start(): Promise<void> {
    if (this.stateValue !== 'starting' || this.loopDone !== null) {
      throw new Error(`start() called in state ${this.stateValue}`);
    }
    for (const e of this.o.registry.executors) await e.start?.();
    this.log.info(
      { data_plane_id: this.o.dataPlaneId },
      'executors started; connecting to the control plane',
    );
    this.shipper.start(this.o.progressIntervalMs);
    this.loopDone = this.poller.run();
  }

  private get idle(): boolean {
    return this.slots.running === 0 && this.reporter.idle;
  }

  private notifyIdle(): void {
    if (this.idle) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Resolves once nothing runs and every outcome has been acknowledged (true), or after `ms` (false). */
  private waitIdle(ms: number): Promise<boolean> {
    if (this.idle) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
        resolve(false);
      }, ms);
      this.idleWaiters.push(done);
    });
  }

  /**
   * Graceful stop (SIGTERM): claim nothing more, keep renewing, let running jobs finish for up to
   * `timeoutMs`, then release the rest with their checkpoints. Idempotent.
   */
  drain(timeoutMs: number): Promise<StopReason> {
    if (this.stateValue === 'stopped') return this.stopped;
    if (this.stateValue === 'starting') {
      void this.finish({ kind: 'drained' });
      return this.stopped;
    }
    this.draining ??= (async () => {
      this.transition('draining', { running: this.slots.running, drain_timeout_ms: timeoutMs });
      this.poller.interrupt();
      // Jobs still queued never started: release them now.
      this.dispatcher.abortQueued();
      if (!(await this.waitIdle(timeoutMs))) {
        this.log.warn({ running: this.slots.running }, 'drain timeout: releasing the jobs still running');
        this.dispatcher.abortAll('shutdown');
        await this.waitIdle(30_000);
      }
      await this.finish({ kind: 'drained' });
      return this.stopped;
    })();
    return this.draining;
  }

  /**
   * Forced stop (second signal): abort everything with `shutdown` (executors leave remote work
   * running), release what can be released within `graceMs`, and stop.
   */
  async force(graceMs = 5_000): Promise<StopReason> {
    if (this.stateValue === 'stopped') return this.stopped;
    this.log.warn({ running: this.slots.running }, 'forced stop: releasing every job');
    if (this.stateValue === 'running') this.transition('draining', { forced: true });
    this.poller.interrupt();
    this.dispatcher.abortAll('shutdown');
    await this.waitIdle(graceMs);
    await this.finish({ kind: 'forced' });
    return this.stopped;
  }

  /** A fatal error (a refused token, a broken invariant): stop at once, leave remote work alone. */
  fatal(error: Error): void {
    if (this.stateValue === 'stopped') return;
    this.log.fatal({ err: describeError(error) }, 'fatal error: stopping');
    this.dispatcher.abortAll('lost');
    void this.finish({ kind: 'fatal', error });
  }

  private async finish(reason: StopReason): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    this.stopController.abort();
    this.shipper.stop();
    await this.loopDone?.catch(() => undefined);
    for (const e of this.o.registry.executors) {
      try {
        await e.close?.();
      } catch (err) {
        this.log.warn({ err: describeError(err), executor: e.name }, 'executor close failed');
      }
    }
    this.transition('stopped', { reason: reason.kind, still_held: this.slots.heldCount });
    this.stopResolve(reason);
  }
}
