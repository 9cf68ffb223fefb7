/**
 * Every operator the control plane has seen since it started, from their polls (in memory: a restart
 * forgets them until they poll again, within one poll interval).
 *
 * An operator is stale when no poll has begun for longer than its last poll's `wait_ms` (how long the
 * control plane may have parked it) plus the lease TTL: a live daemon polls again as soon as a poll
 * returns, and renews every quarter TTL when it holds jobs, so the TTL is a generous margin.
 */
import type { IncomingMessage } from 'node:http';
import { z } from 'zod';

export interface OperatorView {
  executor_id: string;
  data_plane_id: string;
  job_types: string[];
  capacity: number;
  /** Jobs it holds a lease on now (from the store, not from the poll: `held` is sent only at renewals). */
  jobs_held: number;
  last_poll_at: string;
  first_seen_at: string;
  /** From the `User-Agent` `dataplane-operator/<version>`, when the operator sends one. */
  version: string | null;
  stale: boolean;
  /** When it becomes (or became) stale without another poll. */
  stale_at: string;
  /** Jobs held and capacity over the last {@link HISTORY_SAMPLES} samples (epoch ms), oldest first. */
  history: { t: number[]; held: number[]; capacity: number[] };
}

export interface OperatorsResponse {
  operators: OperatorView[];
  lease_ttl_ms: number;
}

interface Seen {
  executor: string;
  dataPlaneId: string;
  jobTypes: string[];
  capacity: number;
  lastPollAt: number;
  firstSeenAt: number;
  waitMs: number;
  version: string | null;
  /** The User-Agent `version` was read from: parsed again only when it changes. */
  userAgent: string | undefined;
  history: { t: number[]; held: number[]; capacity: number[] };
}

/** A sample of each operator's held jobs and capacity is taken this often (and at each listing). */
export const SAMPLE_MS = 10_000;
/** Samples kept per operator: 15 minutes at one per {@link SAMPLE_MS}. */
export const HISTORY_SAMPLES = 90;

/** Operators are kept in memory; past this many the longest-quiet ones are forgotten. */
export const MAX_OPERATORS = 10_000;

const UserAgentVersion = z
  .string()
  .regex(/^dataplane-operator\/[0-9A-Za-z.+-]{1,40}\b/)
  .transform((ua) => ua.slice('dataplane-operator/'.length).split(/[\s(]/)[0] ?? null);

export class OperatorTracker {
  private readonly seen = new Map<string, Seen>();
  private readonly leaseTtlMs: number;
  private readonly now: () => number;
  constructor(leaseTtlMs: number, now: () => number) {
    this.leaseTtlMs = leaseTtlMs;
    this.now = now;
  }

  /** Called for each poll the control plane accepted (its body already validated). */
  polled(
    poll: {
      executor: string;
      data_plane_id: string;
      job_types: readonly string[];
      capacity: number;
      wait_ms?: number;
    },
    req: IncomingMessage,
  ): void {
    const key = `${poll.data_plane_id}\u0000${poll.executor}`;
    const now = this.now();
    const userAgent = req.headers['user-agent'];
    const prev = this.seen.get(key);
    let version: string | null;
    if (prev !== undefined && prev.userAgent === userAgent) version = prev.version;
    else {
      const ua = UserAgentVersion.safeParse(userAgent);
      version = ua.success ? ua.data : (prev?.version ?? null);
    }
    this.seen.delete(key); // re-inserted last: the map stays ordered by last poll
    this.seen.set(key, {
      executor: poll.executor,
      dataPlaneId: poll.data_plane_id,
      jobTypes: [...poll.job_types],
      capacity: poll.capacity,
      lastPollAt: now,
      firstSeenAt: prev?.firstSeenAt ?? now,
      waitMs: poll.wait_ms ?? 0,
      version,
      userAgent,
      history: prev?.history ?? { t: [], held: [], capacity: [] },
    });
    if (this.seen.size > MAX_OPERATORS) {
      const oldest = this.seen.keys().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
  }

  /**
   * Records each operator's held jobs and capacity now (a sample less than a second after the last
   * one replaces it); operators stale for longer than the history is long are not sampled.
   */
  sample(held: ReadonlyArray<{ executor: string; data_plane_id: string; n: number }>): void {
    const now = this.now();
    const heldBy = new Map(held.map((h) => [`${h.data_plane_id}\u0000${h.executor}`, h.n]));
    for (const [key, s] of this.seen) {
      if (now - s.lastPollAt > SAMPLE_MS * HISTORY_SAMPLES) continue;
      const h = s.history;
      if (h.t.length > 0 && now - (h.t.at(-1) ?? 0) < 1_000) {
        h.t.pop();
        h.held.pop();
        h.capacity.pop();
      }
      h.t.push(now);
      h.held.push(heldBy.get(key) ?? 0);
      h.capacity.push(s.capacity);
      if (h.t.length > HISTORY_SAMPLES) {
        h.t.shift();
        h.held.shift();
        h.capacity.shift();
      }
    }
  }

  list(held: ReadonlyArray<{ executor: string; data_plane_id: string; n: number }>): OperatorsResponse {
    this.sample(held);
    const now = this.now();
    const heldBy = new Map(held.map((h) => [`${h.data_plane_id}\u0000${h.executor}`, h.n]));
    const operators = [...this.seen.entries()].reverse().map(([key, s]): OperatorView => {
      const staleAt = s.lastPollAt + s.waitMs + this.leaseTtlMs;
      return {
        executor_id: s.executor,
        data_plane_id: s.dataPlaneId,
        job_types: s.jobTypes,
        capacity: s.capacity,
        jobs_held: heldBy.get(key) ?? 0,
        last_poll_at: new Date(s.lastPollAt).toISOString(),
        first_seen_at: new Date(s.firstSeenAt).toISOString(),
        version: s.version,
        stale: now > staleAt,
        stale_at: new Date(staleAt).toISOString(),
        history: { t: [...s.history.t], held: [...s.history.held], capacity: [...s.history.capacity] },
      };
    });
    operators.sort(
      (a, b) => a.data_plane_id.localeCompare(b.data_plane_id) || a.executor_id.localeCompare(b.executor_id),
    );
    return { operators, lease_ttl_ms: this.leaseTtlMs };
  }
}
