/**
 * The operator daemon.
 *
 * Lifecycle (every transition logged; calls in the wrong state refused):
 *
 *   starting ──start()──▶ running ──drain()──▶ draining ──(idle, or drain timeout → release)──▶ stopped
 *       └───────────────────────────┴──force() / fatal error (401, 403) ──────────────────────▶ stopped
 *
 * One poll is in flight at a time. Every third of the lease TTL it renews every held lease (one
 * request for any number of jobs); it carries changed progress, claims only what can start now
 * (free slots = concurrency − queued − running, per executor too), and parks at the control plane
 * until there is something to say, so cancels arrive pushed, not on a heartbeat. A
 * poll parked with nothing to claim is interrupted when a slot frees up. Outcomes go through one
 * coalescing reporter (one `report` request in flight, batching whatever accumulated meanwhile).
 * A job stays held — its lease renewed — until its outcome is acknowledged, so a control-plane outage
 * loses nothing.
 */
import PQueue from 'p-queue';
import type { Logger } from 'pino';
import { ApiError } from '../client/transport.ts';
import {
  type Job,
  type LogLine,
  MAX_CAPACITY,
  type PollRequest,
  type PollResponse,
  type Progress,
  type ReportEntry,
  type ReportRequest,
  type ReportResponse,
} from '../contract/index.ts';
import { abortReasonOf, type Executor, JobAbort, type JobLogger } from '../executor/index.ts';
import { backoffDelay, sleep } from '../lib/retry.ts';
import type { Metrics } from './metrics.ts';
import type { Registry } from './registry.ts';
import { type Outcome, runJob } from './runner.ts';

export type DaemonState = 'starting' | 'running' | 'draining' | 'stopped';

/** The control plane as the daemon needs it (OperatorClient implements it; tests may fake it). */
export interface ControlPlane {
  poll(req: PollRequest, opts?: { signal?: AbortSignal }): Promise<PollResponse>;
  report(req: ReportRequest, opts?: { signal?: AbortSignal }): Promise<ReportResponse>;
  checkpoint(
    id: string,
    body: { lease_token: string; checkpoint?: Record<string, unknown> | null },
    opts?: { signal?: AbortSignal },
  ): Promise<unknown>;
  appendLogs(
    id: string,
    leaseToken: string,
    lines: readonly LogLine[],
    opts?: { signal?: AbortSignal },
  ): Promise<unknown>;
}

export interface DaemonOptions {
  controlPlane: ControlPlane;
  registry: Registry;
  executorId: string;
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
}

/** Why the daemon stopped: a clean drain, a forced stop, or a fatal error. */
export type StopReason = { kind: 'drained' } | { kind: 'forced' } | { kind: 'fatal'; error: Error };

interface Held {
  job: Job;
  token: string;
  executor: Executor;
  controller: AbortController;
  phase: 'queued' | 'running' | 'reporting';
  progress: Progress | null;
  progressDirty: boolean;
  logLines: LogLine[];
  dispatchedAt: number;
  cancelSeenAt?: number;
  logger?: Logger;
}

type PendingReport = { held: Held; entry: ReportEntry };

export class Daemon {
  private stateValue: DaemonState = 'starting';
  private readonly held = new Map<string, Held>();
  private readonly queues = new Map<string, PQueue>();
  private readonly limits = new Map<string, number>();
  private readonly active = new Map<string, number>();
  private activeTotal = 0;
  private readonly o: DaemonOptions;
  private readonly log: Logger;
  private readonly stopController = new AbortController();
  private pollController: AbortController | null = null;
  private pollCapacity = 0;
  private loopDone: Promise<void> | null = null;
  private reports: PendingReport[] = [];
  private reportInFlight = false;
  private reportScheduled = false;
  private logTimer: NodeJS.Timeout | null = null;
  private idleWaiters: Array<() => void> = [];
  private stopResolve!: (r: StopReason) => void;
  /** Resolves when the daemon has stopped, with why. */
  readonly stopped: Promise<StopReason>;
  /** When every held lease was last renewed (epoch ms). */
  private lastRenewalAt = 0;
  /** The control plane's lease TTL, as its last poll answer said. */
  private leaseTtlMs = 30_000;
  private renewEveryMs(): number {
    return Math.max(50, Math.floor(this.leaseTtlMs / 3));
  }
  /** Last successful poll (epoch ms), for /healthz. */
  lastPollAt = 0;
  /** Whether the control plane has answered at least once, for /readyz. */
  controlPlaneAnswered = false;

  constructor(options: DaemonOptions) {
    this.o = options;
    this.log = options.logger.child({ executor: options.executorId });
    this.stopped = new Promise((resolve) => {
      this.stopResolve = resolve;
    });
    for (const e of options.registry.executors) {
      const limit = Math.min(
        options.executorConcurrency?.[e.name] ?? options.concurrency,
        options.concurrency,
      );
      this.limits.set(e.name, limit);
      this.active.set(e.name, 0);
      this.queues.set(e.name, new PQueue({ concurrency: limit }));
    }
    options.metrics.capacity.set(options.concurrency);
  }

  get state(): DaemonState {
    return this.stateValue;
  }

  /** Jobs held (queued, running or awaiting acknowledgement of their outcome). */
  get heldCount(): number {
    return this.held.size;
  }

  private transition(to: DaemonState, fields: Record<string, unknown> = {}): void {
    this.log.info({ from: this.stateValue, to, ...fields }, `daemon ${to}`);
    this.stateValue = to;
  }

  async start(): Promise<void> {
    if (this.stateValue !== 'starting') throw new Error(`start() called in state ${this.stateValue}`);
    for (const e of this.o.registry.executors) await e.start?.();
    this.transition('running', {
      data_plane_id: this.o.dataPlaneId,
      job_types: this.o.registry.jobTypes,
      concurrency: this.o.concurrency,
    });
    this.logTimer = setInterval(() => this.flushAllLogs(), this.o.progressIntervalMs);
    this.logTimer.unref();
    this.loopDone = this.loop();
  }

  // -------------------------------------------------------------------------------------------
  // The poll loop

  private freeSlots(executor: string): number {
    return Math.max(0, (this.limits.get(executor) ?? 0) - (this.active.get(executor) ?? 0));
  }

  private claimPlan(): { capacity: number; jobTypes: string[] } {
    if (this.stateValue !== 'running') return { capacity: 0, jobTypes: [] };
    const global = Math.max(0, this.o.concurrency - this.activeTotal);
    if (global === 0) return { capacity: 0, jobTypes: [] };
    const jobTypes: string[] = [];
    let perExecutor = 0;
    for (const e of this.o.registry.executors) {
      const free = this.freeSlots(e.name);
      if (free === 0) continue;
      perExecutor += free;
      for (const [type, ex] of this.o.registry.routes) if (ex === e) jobTypes.push(type);
    }
    return { capacity: Math.min(global, perExecutor, MAX_CAPACITY), jobTypes };
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (this.stateValue === 'running' || this.stateValue === 'draining') {
      if (this.stateValue === 'draining' && this.held.size === 0) break;
      const { capacity, jobTypes } = this.claimPlan();
      // Renew every held lease once a third of the TTL has passed; in between, send only the jobs
      // whose progress changed. Cancels reach us either way (the control plane knows our executor
      // id), so polls stay small however many jobs are held.
      const now = Date.now();
      const renew = this.held.size > 0 && now - this.lastRenewalAt >= this.renewEveryMs();
      const held: Array<{ id: string; lease_token: string; progress?: Progress | null }> = [];
      for (const h of this.held.values()) {
        if (!renew && !h.progressDirty) continue;
        held.push({
          id: h.job.id,
          lease_token: h.token,
          ...(h.progressDirty ? { progress: h.progress } : {}),
        });
        h.progressDirty = false;
      }
      if (renew) this.lastRenewalAt = now;
      // Holding jobs: come back by the next renewal and at least every progress interval. Draining:
      // do not park long, renewals only.
      const untilRenewal = Math.max(0, this.lastRenewalAt + this.renewEveryMs() - now);
      const waitMs =
        this.stateValue === 'draining'
          ? Math.min(this.o.progressIntervalMs, 1_000, untilRenewal)
          : this.held.size > 0
            ? Math.min(this.o.pollWaitMs, this.o.progressIntervalMs, untilRenewal)
            : this.o.pollWaitMs;
      const controller = new AbortController();
      this.pollController = controller;
      this.pollCapacity = capacity;
      try {
        const res = await this.o.controlPlane.poll(
          {
            executor: this.o.executorId,
            data_plane_id: this.o.dataPlaneId,
            job_types: jobTypes,
            capacity,
            wait_ms: waitMs,
            held,
          },
          { signal: AbortSignal.any([controller.signal, this.stopController.signal]) },
        );
        failures = 0;
        this.leaseTtlMs = res.lease_ttl_ms;
        this.lastPollAt = Date.now();
        this.controlPlaneAnswered = true;
        this.handlePoll(res);
      } catch (err) {
        // Progress we took out of the held entries goes again next time.
        for (const h of held) {
          const j = this.held.get(h.id);
          if (j && 'progress' in h) j.progressDirty = true;
        }
        if (renew) this.lastRenewalAt = 0;
        if (this.stopController.signal.aborted) break;
        if (controller.signal.aborted) continue; // interrupted on purpose: poll again at once
        if (isAuthError(err)) {
          this.fatal(err as Error);
          break;
        }
        failures++;
        const delay = backoffDelay(Math.min(failures, 10), 250, 5_000) + 50;
        this.log.warn({ err: errorInfo(err), failures, retry_in_ms: delay }, 'poll failed; retrying');
        try {
          await sleep(delay, this.stopController.signal);
        } catch {
          break;
        }
      } finally {
        this.pollController = null;
      }
      // Let jobs dispatched by this poll start (and trivial ones finish) before sizing the next claim.
      await new Promise((r) => setImmediate(r));
    }
  }

  /** Interrupts a parked poll that cannot claim, so freed slots are offered at once. */
  private kickPoll(): void {
    if (this.pollController && this.pollCapacity === 0 && this.stateValue === 'running') {
      this.pollController.abort();
    }
  }

  private handlePoll(res: PollResponse): void {
    for (const id of res.lost) {
      const h = this.held.get(id);
      if (!h) continue;
      this.o.metrics.leasesLost.inc();
      this.held.delete(id);
      this.o.metrics.held.set(this.held.size);
      if (h.phase !== 'reporting') {
        this.jobLog(h).warn({}, 'lease lost: stopping locally, leaving remote work running');
        h.controller.abort(new JobAbort('lost'));
      }
    }
    for (const id of res.cancel) {
      const h = this.held.get(id);
      if (!h || h.controller.signal.aborted || h.phase === 'reporting') continue;
      h.cancelSeenAt = performance.now();
      this.jobLog(h).info({}, 'cancel requested');
      h.controller.abort(new JobAbort('cancel'));
    }
    for (const job of res.claimed) this.dispatch(job);
    this.notifyIdle();
  }

  // -------------------------------------------------------------------------------------------
  // Running jobs

  private dispatch(job: Job): void {
    const executor = this.o.registry.routes.get(job.type);
    const token = job.lease?.token;
    if (token === undefined) {
      this.log.error({ job_id: job.id, job_type: job.type }, 'claimed job carries no lease; ignoring it');
      return;
    }
    if (executor === undefined) {
      // The control plane handed us a type we did not ask for: fail it, never crash.
      const h = this.track(job, token, undefined);
      this.enqueueReport(h, {
        kind: 'fail',
        failure: {
          code: 'UNKNOWN_JOB_TYPE',
          message: `no executor here serves '${job.type}'`,
          retryable: false,
        },
      });
      return;
    }
    if (this.stateValue !== 'running') {
      // Claimed as we started draining: hand it straight back.
      const h = this.track(job, token, executor);
      this.enqueueReport(h, { kind: 'release', reason: 'operator draining' });
      return;
    }
    const h = this.track(job, token, executor);
    this.o.metrics.claimed.inc({ job_type: job.type, executor: executor.name });
    this.active.set(executor.name, (this.active.get(executor.name) ?? 0) + 1);
    this.activeTotal++;
    this.o.metrics.inFlight.inc({ executor: executor.name });
    const queue = this.queues.get(executor.name)!;
    queue
      .add(() => this.execute(h))
      .catch((err: unknown) => {
        // execute() never throws; this is a last line of defence.
        this.log.error({ err: errorInfo(err), job_id: job.id }, 'job runner failed unexpectedly');
      });
  }

  private track(job: Job, token: string, executor: Executor | undefined): Held {
    const h: Held = {
      job,
      token,
      executor: executor ?? ({ name: 'none', jobTypes: [], execute: async () => undefined } as Executor),
      controller: new AbortController(),
      phase: 'queued',
      progress: job.progress,
      progressDirty: false,
      logLines: [],
      dispatchedAt: performance.now(),
    };
    this.held.set(job.id, h);
    this.o.metrics.held.set(this.held.size);
    return h;
  }

  private async execute(h: Held): Promise<void> {
    const { job, executor } = h;
    let outcome: Outcome;
    try {
      if (h.controller.signal.aborted) {
        // Aborted while queued: it never started.
        const reason = abortReasonOf(h.controller.signal);
        outcome =
          reason === 'cancel'
            ? { kind: 'cancelled' }
            : reason === 'lost'
              ? { kind: 'forget' }
              : { kind: 'release', reason: 'operator shutting down' };
      } else {
        h.phase = 'running';
        const pickup = Date.now() - Date.parse(job.created_at);
        this.o.metrics.pickup.observe(
          { job_type: job.type, executor: executor.name },
          Math.max(0, pickup) / 1000,
        );
        if (job.checkpoint)
          this.jobLog(h).info({ checkpoint: job.checkpoint }, 'reattaching from checkpoint');
        else if (this.log.isLevelEnabled('debug')) this.jobLog(h).debug({}, 'starting');
        outcome = await runJob(job, {
          executor,
          controller: h.controller,
          timeoutMs: this.o.jobTimeoutsMs?.[job.type] ?? this.o.jobTimeoutMs,
          context: {
            saveCheckpoint: (checkpoint) => this.saveCheckpoint(h, checkpoint),
            progress: (p) => {
              h.progress = p;
              h.progressDirty = true;
            },
            log: this.shippingLogger(h),
          },
        });
      }
    } catch (err) {
      outcome = { kind: 'fail', failure: { code: 'INTERNAL', message: String(err), retryable: true } };
    }
    if (h.cancelSeenAt !== undefined) {
      this.o.metrics.cancelLatency.observe((performance.now() - h.cancelSeenAt) / 1000);
    }
    this.active.set(executor.name, (this.active.get(executor.name) ?? 1) - 1);
    this.activeTotal--;
    this.o.metrics.inFlight.dec({ executor: executor.name });
    this.o.metrics.outcomes.inc({ job_type: job.type, executor: executor.name, outcome: outcome.kind });
    this.o.metrics.duration.observe(
      { job_type: job.type, executor: executor.name, outcome: outcome.kind },
      (performance.now() - h.dispatchedAt) / 1000,
    );
    const level = outcome.kind === 'fail' ? 'warn' : 'info';
    if (this.log.isLevelEnabled(level)) {
      this.jobLog(h)[level](
        outcome.kind === 'fail' ? { code: outcome.failure.code, retryable: outcome.failure.retryable } : {},
        `job ${outcome.kind === 'complete' ? 'completed' : outcome.kind}`,
      );
    }
    if (outcome.kind === 'forget') {
      // The job may already be held again under a new lease (re-claimed after a reschedule).
      if (this.held.get(job.id) === h) this.held.delete(job.id);
      this.o.metrics.held.set(this.held.size);
    } else {
      if (h.logLines.length > 0) await this.flushLogs(h);
      this.enqueueReport(h, outcome);
    }
    this.kickPoll();
    this.notifyIdle();
  }

  private async saveCheckpoint(h: Held, checkpoint: Record<string, unknown>): Promise<void> {
    try {
      await this.o.controlPlane.checkpoint(
        h.job.id,
        { lease_token: h.token, checkpoint },
        { signal: this.stopController.signal },
      );
      h.job = { ...h.job, checkpoint };
    } catch (err) {
      if (err instanceof ApiError && (err.status === 410 || err.status === 404)) {
        h.controller.abort(new JobAbort('lost'));
        throw new JobAbort('lost');
      }
      throw err;
    }
  }

  /** The job's logger, made on first use (a pino child costs more than the rest of a no-op job). */
  private jobLog(h: Held): Logger {
    h.logger ??= this.log.child({ job_id: h.job.id, job_type: h.job.type, executor_name: h.executor.name });
    return h.logger;
  }

  /** The executor's logger: each line to the daemon's log and buffered for the job's log. */
  private shippingLogger(h: Held): JobLogger {
    const max = this.o.maxBufferedLogLines ?? 1_000;
    const line =
      (level: 'debug' | 'info' | 'warn' | 'error') => (msg: string, fields?: Record<string, unknown>) => {
        if (this.log.isLevelEnabled(level)) this.jobLog(h)[level](fields ?? {}, msg);
        if (level === 'debug') return;
        if (h.logLines.length >= max) {
          this.o.metrics.logLinesDropped.inc();
          return;
        }
        h.logLines.push({ ts: new Date().toISOString(), level, msg: msg.slice(0, 16_000) });
      };
    return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
  }

  private async flushLogs(h: Held): Promise<void> {
    const lines = h.logLines;
    if (lines.length === 0) return;
    h.logLines = [];
    try {
      await this.o.controlPlane.appendLogs(h.job.id, h.token, lines, { signal: this.stopController.signal });
    } catch (err) {
      // Logs are best effort; the outcome is not.
      this.log.debug({ err: errorInfo(err), job_id: h.job.id }, 'could not ship job log lines');
    }
  }

  private flushAllLogs(): void {
    for (const h of this.held.values()) {
      if (h.logLines.length > 0 && h.phase === 'running') void this.flushLogs(h);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Reporting

  private enqueueReport(h: Held, outcome: Exclude<Outcome, { kind: 'forget' }>): void {
    h.phase = 'reporting';
    const base = { id: h.job.id, lease_token: h.token };
    const entry: ReportEntry =
      outcome.kind === 'complete'
        ? { ...base, outcome: 'complete', result: outcome.result }
        : outcome.kind === 'fail'
          ? { ...base, outcome: 'fail', failure: outcome.failure }
          : outcome.kind === 'cancelled'
            ? { ...base, outcome: 'cancelled' }
            : { ...base, outcome: 'release', reason: outcome.reason };
    this.reports.push({ held: h, entry });
    this.scheduleReport();
  }

  private scheduleReport(): void {
    if (this.reportScheduled || this.reportInFlight) return;
    this.reportScheduled = true;
    setImmediate(() => {
      this.reportScheduled = false;
      this.reportInFlight = true;
      void this.flushReports()
        .catch((err: unknown) => this.log.error({ err: errorInfo(err) }, 'reporter failed unexpectedly'))
        .finally(() => {
          this.reportInFlight = false;
          if (this.reports.length > 0) this.scheduleReport();
          this.notifyIdle();
        });
    });
  }

  private async flushReports(): Promise<void> {
    let failures = 0;
    while (this.reports.length > 0) {
      const batch = this.reports.splice(0, 1_000);
      try {
        const res = await this.o.controlPlane.report(
          { executor: this.o.executorId, reports: batch.map((b) => b.entry) },
          { signal: this.stopController.signal },
        );
        failures = 0;
        res.results.forEach((r, i) => {
          const item = batch[i];
          if (!item || item.entry.id !== r.id) return;
          const h = item.held;
          if (r.status === 'invalid' && item.entry.outcome === 'complete') {
            // The control plane refused the result (its schema differs from ours): fail the job
            // rather than leave it hanging.
            this.log.error(
              { job_id: r.id, job_type: h.job.type, error: r.error },
              'control plane refused the result',
            );
            this.reports.push({
              held: h,
              entry: {
                id: r.id,
                lease_token: h.token,
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
            this.log.error(
              { job_id: r.id, job_type: h.job.type, error: r.error },
              'control plane refused a report',
            );
          } else if (r.status === 'lost') {
            this.o.metrics.leasesLost.inc();
            this.log.warn(
              { job_id: r.id, job_type: h.job.type },
              'lease lost before the outcome was reported',
            );
          }
          if (this.held.get(r.id) === h) this.held.delete(r.id);
        });
        this.o.metrics.held.set(this.held.size);
      } catch (err) {
        // Keep the outcomes (and so the leases, renewed by every poll) until the control plane is back.
        this.reports.unshift(...batch);
        if (this.stopController.signal.aborted) return;
        if (isAuthError(err)) {
          this.fatal(err as Error);
          return;
        }
        failures++;
        const delay = backoffDelay(Math.min(failures, 10), 250, 5_000) + 50;
        this.log.warn(
          { err: errorInfo(err), pending: this.reports.length, retry_in_ms: delay },
          'report failed; retrying',
        );
        try {
          await sleep(delay, this.stopController.signal);
        } catch {
          return;
        }
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Stopping

  private notifyIdle(): void {
    if (this.activeTotal === 0 && this.reports.length === 0 && !this.reportInFlight) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Resolves once nothing runs and every outcome has been acknowledged, or after `ms`. */
  private waitIdle(ms: number): Promise<boolean> {
    if (this.activeTotal === 0 && this.reports.length === 0 && !this.reportInFlight)
      return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
        resolve(false);
      }, ms);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.push(done);
    });
  }

  private abortAll(reason: 'shutdown' | 'lost'): void {
    for (const h of this.held.values()) {
      if (h.phase !== 'reporting' && !h.controller.signal.aborted) h.controller.abort(new JobAbort(reason));
    }
  }

  private draining: Promise<StopReason> | null = null;

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
      this.transition('draining', { running: this.activeTotal, drain_timeout_ms: timeoutMs });
      this.pollController?.abort();
      // Jobs still queued never started: release them now.
      for (const h of this.held.values())
        if (h.phase === 'queued') h.controller.abort(new JobAbort('shutdown'));
      if (!(await this.waitIdle(timeoutMs))) {
        this.log.warn({ running: this.activeTotal }, 'drain timeout: releasing the jobs still running');
        this.abortAll('shutdown');
        await this.waitIdle(30_000);
      }
      await this.finishLoop();
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
    this.log.warn({ running: this.activeTotal }, 'forced stop: releasing every job');
    if (this.stateValue === 'running') this.transition('draining', { forced: true });
    this.pollController?.abort();
    this.abortAll('shutdown');
    await this.waitIdle(graceMs);
    await this.finish({ kind: 'forced' });
    return this.stopped;
  }

  /** A fatal error (bad token, an invariant broken): stop at once, leave remote work alone. */
  fatal(error: Error): void {
    if (this.stateValue === 'stopped') return;
    this.log.fatal({ err: errorInfo(error) }, 'fatal error: stopping');
    this.abortAll('lost');
    void this.finish({ kind: 'fatal', error });
  }

  private async finishLoop(): Promise<void> {
    this.stopController.abort();
    await this.loopDone;
  }

  private finished = false;
  private async finish(reason: StopReason): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    this.stopController.abort();
    if (this.logTimer) clearInterval(this.logTimer);
    for (const q of this.queues.values()) q.clear();
    await this.loopDone?.catch(() => undefined);
    for (const e of this.o.registry.executors) {
      try {
        await e.close?.();
      } catch (err) {
        this.log.warn({ err: errorInfo(err), executor_name: e.name }, 'executor close failed');
      }
    }
    this.transition('stopped', { reason: reason.kind, still_held: this.held.size });
    this.stopResolve(reason);
  }
}

function isAuthError(err: unknown): boolean {
  return err instanceof ApiError && (err.status === 401 || err.status === 403);
}

/** Error fields for logs: message and code, never request bodies (which may carry secrets). */
export function errorInfo(err: unknown): Record<string, unknown> {
  if (err instanceof ApiError)
    return { type: 'ApiError', status: err.status, code: err.code, message: err.message };
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { type: err.name, message: err.message, ...(code === undefined ? {} : { code }) };
  }
  return { message: String(err) };
}
