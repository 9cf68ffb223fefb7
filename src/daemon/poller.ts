/**
 * The poll loop, its claim plan, lease renewal and self-fencing.
 *
 * One poll is in flight at a time. Every quarter of the lease TTL it renews every held lease (one
 * request for any number of jobs); in between it carries only changed progress. It claims only what
 * can start now (free slots, per executor too) and parks at the control plane until there is
 * something to say, so cancels and lost leases arrive pushed, not on a heartbeat. A parked poll that
 * could not claim is interrupted when a slot frees up.
 *
 * Self-fencing: a job whose lease has not been renewed successfully for three quarters of the TTL
 * is aborted as `lost` (and dropped) before the control plane can hand it to a peer. Renewals go
 * every quarter TTL and a poll parks at most until the next renewal is due, so a connected daemon
 * hears of each renewal within half the TTL: fencing at three quarters never fires while connected,
 * and leaves the last quarter for the execution to stop before the lease can move. Times are taken
 * on this daemon's clock from when the renewing poll was SENT plus how long the control plane says
 * it parked the poll before renewing and claiming (`parked_ms`, measured on its clock): never later
 * than the grant, so clock offsets between the two machines do not matter, and a lease claimed at
 * the end of a long parked poll is not taken as already old (it was, before `parked_ms`: a daemon
 * with a short TTL fenced its fresh claims at once).
 *
 * The first poll of a run asks for no wait: its answer says at once that the token is accepted
 * (the daemon is then `running`, and ready). After an outage the loop logs once that it reconnected,
 * with how many polls failed and for how long.
 */
import type { Logger } from 'pino';
import { MAX_CAPACITY, type PollResponse, type Progress } from '../contract/index.ts';
import { type ControlPlane, untilAnswered } from './control-plane.ts';
import type { Registry } from './registry.ts';
import type { Execution, Slots } from './slots.ts';

/** Renew every held lease this often, as a fraction of the lease TTL. */
export const RENEW_FRACTION = 1 / 4;
/** Fence a job whose lease was not renewed for this fraction of the lease TTL. */
export const FENCE_FRACTION = 3 / 4;

/** What the poller sees of the daemon. */
export interface PollerContext {
  controlPlane: ControlPlane;
  operatorId: string;
  dataPlaneId: string;
  registry: Registry;
  slots: Slots;
  pollWaitMs: number;
  progressIntervalMs: number;
  log: Logger;
  /** The daemon's clock (epoch ms); tests drive it. */
  now(): number;
  /** Claiming (`running`), renewing only (`draining`), or done. */
  mode(): 'claiming' | 'renewing' | 'stopped';
  /** Aborted when the daemon stops. */
  stopSignal: AbortSignal;
  /**
   * The control plane's answer, for the daemon to act on (lost, cancel, claimed). `grantedAt` (this
   * daemon's clock) is no later than when the answer's leases were granted: the poll's send time
   * plus how long the control plane parked it.
   */
  answer(res: PollResponse, grantedAt: number): void;
  /** A held job was fenced: abort it as lost. */
  fenced(ex: Execution): void;
  fatal(err: Error): void;
}

export class Poller {
  private readonly c: PollerContext;
  private controller: AbortController | null = null;
  private capacity = 0;
  private lastRenewalAt = 0;
  private fenceTimer: NodeJS.Timeout | undefined;
  /** The control plane's lease TTL, as its last answer said. */
  leaseTtlMs = 30_000;
  /** When the control plane last answered (epoch ms), for /readyz. */
  lastPollAt = 0;
  /**
   * When the poll loop last started a step (a poll, or a retry after a failure; epoch ms), for
   * /healthz: a loop that makes progress starts one at least every few request timeouts, whatever
   * the control plane does.
   */
  lastStepAt = 0;
  /** Polls failed in a row, and since when (epoch ms), for the "reconnected" log line. */
  private failedPolls = 0;
  private failingSince = 0;

  constructor(context: PollerContext) {
    this.c = context;
  }

  private get renewEveryMs(): number {
    return Math.max(50, Math.floor(this.leaseTtlMs * RENEW_FRACTION));
  }

  get fenceAfterMs(): number {
    return Math.floor(this.leaseTtlMs * FENCE_FRACTION);
  }

  /** Polls until the daemon stops (or has nothing left to renew while draining). */
  async run(): Promise<void> {
    this.armFence();
    try {
      while (this.c.mode() !== 'stopped') {
        if (this.c.mode() === 'renewing' && this.c.slots.heldCount === 0) break;
        const ok = await untilAnswered(() => this.pollOnce(), this.c, 'poll');
        if (ok === undefined) break;
        // Let jobs dispatched by this poll start (and trivial ones finish) before sizing the next claim.
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      clearTimeout(this.fenceTimer);
    }
  }

  /** Interrupts a parked poll that could not claim, so freed slots are offered at once. */
  kick(): void {
    if (this.controller && this.capacity === 0 && this.c.mode() === 'claiming') this.controller.abort();
  }

  /** Interrupts the poll in flight whatever it claims (draining: stop parking). */
  interrupt(): void {
    this.controller?.abort();
  }

  private claimPlan(): { capacity: number; jobTypes: string[] } {
    if (this.c.mode() !== 'claiming' || this.c.slots.free === 0) return { capacity: 0, jobTypes: [] };
    const jobTypes: string[] = [];
    let capacity = 0;
    for (const e of this.c.registry.executors) {
      const free = this.c.slots.freeFor(e.name);
      if (free === 0) continue;
      capacity += free;
      for (const [type, ex] of this.c.registry.routes) if (ex === e) jobTypes.push(type);
    }
    return { capacity: Math.min(this.c.slots.free, capacity, MAX_CAPACITY), jobTypes };
  }

  /** One poll; resolves `true` when answered or interrupted on purpose, throws on failure. */
  private async pollOnce(): Promise<true> {
    this.lastStepAt = Date.now();
    const { capacity, jobTypes } = this.claimPlan();
    const now = this.c.now();
    const renew = this.c.slots.heldCount > 0 && now - this.lastRenewalAt >= this.renewEveryMs;
    const listed: Execution[] = [];
    const withProgress: Execution[] = [];
    const held: Array<{ id: string; lease_token: string; progress?: Progress | null }> = [];
    for (const ex of this.c.slots.holders()) {
      if (!renew && !ex.progressDirty) continue;
      listed.push(ex);
      if (ex.progressDirty) {
        withProgress.push(ex);
        held.push({ id: ex.job.id, lease_token: ex.token, progress: ex.progress });
        ex.progressDirty = false;
      } else {
        held.push({ id: ex.job.id, lease_token: ex.token });
      }
    }
    if (renew) this.lastRenewalAt = now;
    // Holding jobs: come back by the next renewal and at least every progress interval. Renewing
    // only (draining): do not park long.
    const untilRenewal = Math.max(0, this.lastRenewalAt + this.renewEveryMs - now);
    const waitMs =
      this.lastPollAt === 0
        ? 0 // the first poll of a run: answered at once, so the daemon knows its token is accepted
        : this.c.mode() === 'renewing'
          ? Math.min(this.c.progressIntervalMs, 1_000, untilRenewal)
          : this.c.slots.heldCount > 0
            ? Math.min(this.c.pollWaitMs, this.c.progressIntervalMs, untilRenewal)
            : this.c.pollWaitMs;
    const controller = new AbortController();
    this.controller = controller;
    this.capacity = capacity;
    try {
      const res = await this.c.controlPlane.poll(
        {
          executor: this.c.operatorId,
          data_plane_id: this.c.dataPlaneId,
          job_types: jobTypes,
          capacity,
          wait_ms: waitMs,
          held,
        },
        { signal: AbortSignal.any([controller.signal, this.c.stopSignal]) },
      );
      this.leaseTtlMs = res.lease_ttl_ms;
      this.lastPollAt = Date.now();
      if (this.failedPolls > 0) {
        const seconds = ((Date.now() - this.failingSince) / 1000).toFixed(1);
        this.c.log.info(
          { failed_polls: this.failedPolls, outage_ms: Date.now() - this.failingSince },
          `reconnected after ${this.failedPolls} failed poll${this.failedPolls === 1 ? '' : 's'} (for ${seconds} s)`,
        );
        this.failedPolls = 0;
      }
      // The control plane renewed and claimed after parking the poll: no earlier than this.
      const grantedAt = now + res.parked_ms;
      const lost = new Set(res.lost);
      for (const ex of listed) if (!lost.has(ex.job.id)) ex.renewedAt = Math.max(ex.renewedAt, grantedAt);
      this.c.answer(res, grantedAt);
      return true;
    } catch (err) {
      // Progress taken out of the held entries goes again next time; so does the renewal.
      for (const ex of withProgress) ex.progressDirty = true;
      if (renew) this.lastRenewalAt = 0;
      if (controller.signal.aborted && !this.c.stopSignal.aborted) return true; // interrupted on purpose
      if (!this.c.stopSignal.aborted) {
        if (this.failedPolls === 0) this.failingSince = Date.now();
        this.failedPolls++;
      }
      throw err;
    } finally {
      this.controller = null;
    }
  }

  /** Checks the held leases a few times per fence window, whatever the poll is doing. */
  private armFence(): void {
    const tick = () => {
      const now = this.c.now();
      const limit = this.fenceAfterMs;
      for (const ex of [...this.c.slots.holders()]) {
        if (ex.active && now - ex.renewedAt >= limit) {
          this.c.log.warn(
            {
              job_id: ex.job.id,
              job_type: ex.job.type,
              unrenewed_ms: now - ex.renewedAt,
              lease_ttl_ms: this.leaseTtlMs,
            },
            'lease not renewed for most of its TTL: fencing the job (stopping it locally as lost)',
          );
          this.c.fenced(ex);
        }
      }
    };
    // A twentieth of the TTL (as the control plane last said it) between checks.
    const next = () => {
      this.fenceTimer = setTimeout(
        () => {
          tick();
          if (!this.c.stopSignal.aborted) next();
        },
        Math.max(10, Math.min(1_000, Math.floor(this.leaseTtlMs / 20))),
      );
      this.fenceTimer.unref();
    };
    next();
  }
}
