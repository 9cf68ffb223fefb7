/**
 * Parked long polls (operators) and terminal waits (users), woken by the store's post-commit events.
 *
 * A parked poll wakes when a job it could claim becomes claimable, when one of the jobs its executor
 * holds needs its attention (cancel requested, lease revoked), at the earliest retry backoff among the
 * jobs it could claim, or at its timeout. Waking re-runs the poll; a parked poll never claims by
 * itself, so a client that went away while parked claims nothing.
 */
import type { ServerResponse } from 'node:http';
import type { JobStore } from './store.ts';

export interface ParkedPoll {
  dataPlaneId: string;
  executor: string;
  jobTypes: ReadonlySet<string>;
  heldIds: ReadonlySet<string>;
  wantsClaims: boolean;
}

interface Parked extends ParkedPoll {
  wake(): void;
  /** Wake no later than `at` (epoch ms). */
  wakeAt(at: number): void;
}

export class Waiters {
  private readonly polls = new Set<Parked>();
  private readonly terminal = new Map<string, Set<() => void>>();
  private readonly store: JobStore;

  constructor(store: JobStore) {
    this.store = store;
    store.subscribe({
      claimable: (type, dataPlaneId, notBefore) => {
        for (const p of this.polls) {
          if (!p.wantsClaims || !p.jobTypes.has(type)) continue;
          if (dataPlaneId !== null && dataPlaneId !== p.dataPlaneId) continue;
          if (notBefore === null || notBefore <= Date.now()) p.wake();
          else p.wakeAt(notBefore);
        }
      },
      holderAttention: (jobId, executor) => {
        for (const p of this.polls) if (p.executor === executor || p.heldIds.has(jobId)) p.wake();
      },
      terminal: (jobId) => {
        const set = this.terminal.get(jobId);
        if (set) for (const wake of set) wake();
      },
    });
  }

  /** How many polls are parked now. */
  get parkedPolls(): number {
    return this.polls.size;
  }

  /**
   * Parks a poll for up to `maxWaitMs`. Resolves `true` if the client went away meanwhile.
   */
  parkPoll(poll: ParkedPoll, maxWaitMs: number, res: ServerResponse): Promise<boolean> {
    let wait = maxWaitMs;
    if (poll.wantsClaims) {
      const next = this.store.nextNotBefore(poll.dataPlaneId, [...poll.jobTypes]);
      if (next !== null) wait = Math.max(0, Math.min(wait, next - Date.now()));
    }
    return new Promise((resolve) => {
      let deadline = Date.now() + wait;
      let timer = setTimeout(() => done(false), wait);
      const done = (gone: boolean) => {
        clearTimeout(timer);
        this.polls.delete(parked);
        res.off('close', onClose);
        resolve(gone);
      };
      const onClose = () => done(true);
      const parked: Parked = {
        ...poll,
        wake: () => done(false),
        wakeAt: (at) => {
          if (at >= deadline) return;
          deadline = at;
          clearTimeout(timer);
          timer = setTimeout(() => done(false), Math.max(0, at - Date.now()));
        },
      };
      res.on('close', onClose);
      this.polls.add(parked);
    });
  }

  /** Waits until the job is terminal, the timeout passes, or the client goes away. */
  waitTerminal(jobId: string, timeoutMs: number, res: ServerResponse): Promise<void> {
    return new Promise((resolve) => {
      let set = this.terminal.get(jobId);
      if (set === undefined) {
        set = new Set();
        this.terminal.set(jobId, set);
      }
      const done = () => {
        clearTimeout(timer);
        res.off('close', done);
        set.delete(done);
        if (set.size === 0) this.terminal.delete(jobId);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      res.on('close', done);
      set.add(done);
    });
  }

  /** Answers every parked request now (server shutdown). */
  closeAll(): void {
    for (const p of [...this.polls]) p.wake();
    for (const set of [...this.terminal.values()]) for (const wake of [...set]) wake();
  }
}
