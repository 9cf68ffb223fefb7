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

/** A wake-up event, kept a while so a poll that parks after it was emitted still sees it. */
type WakeEvent =
  | { kind: 'claimable'; type: string; dataPlaneId: string | null; notBefore: number | null }
  | { kind: 'attention'; jobId: string; executor: string | null };

/** How many recent wake-up events are kept for polls that park late (group commit). */
const RECENT_EVENTS = 1024;

function deliver(p: Parked, e: WakeEvent): void {
  if (e.kind === 'attention') {
    if (p.executor === e.executor || p.heldIds.has(e.jobId)) p.wake();
    return;
  }
  if (!p.wantsClaims || !p.jobTypes.has(e.type)) return;
  if (e.dataPlaneId !== null && e.dataPlaneId !== p.dataPlaneId) return;
  if (e.notBefore === null || e.notBefore <= Date.now()) p.wake();
  else p.wakeAt(e.notBefore);
}

export class Waiters {
  private readonly polls = new Set<Parked>();
  private readonly terminal = new Map<string, Set<() => void>>();
  private readonly store: JobStore;
  /** Wake-up events emitted so far; `recent` holds the last {@link RECENT_EVENTS} of them. */
  private emitted = 0;
  private readonly recent: WakeEvent[] = [];

  constructor(store: JobStore) {
    this.store = store;
    const wakeUp = (e: WakeEvent) => {
      this.emitted++;
      this.recent.push(e);
      if (this.recent.length > RECENT_EVENTS) this.recent.shift();
      for (const p of this.polls) deliver(p, e);
    };
    store.subscribe({
      claimable: (type, dataPlaneId, notBefore) =>
        wakeUp({ kind: 'claimable', type, dataPlaneId, notBefore }),
      holderAttention: (jobId, executor) => wakeUp({ kind: 'attention', jobId, executor }),
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
   * How many wake-up events were emitted so far: read when a poll's statements run (inside the group
   * commit), it lets {@link parkPoll} deliver the events emitted between then and the park.
   */
  get generation(): number {
    return this.emitted;
  }

  /**
   * Parks a poll for up to `maxWaitMs`. Resolves `true` if the client went away meanwhile.
   * `since` ({@link generation} when the poll ran): the wake-up events emitted after it are delivered
   * at once, so none is lost between the poll's transaction and the park (with fewer events kept
   * than missed, it wakes at once).
   */
  parkPoll(poll: ParkedPoll, maxWaitMs: number, res: ServerResponse, since = this.emitted): Promise<boolean> {
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
      const missed = this.emitted - since;
      if (missed > this.recent.length) parked.wake();
      else for (const e of this.recent.slice(this.recent.length - missed)) deliver(parked, e);
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
