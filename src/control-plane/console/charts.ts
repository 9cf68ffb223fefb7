/**
 * The series behind the console's "queue over time" chart, computed with SQL over the `jobs` table
 * and the job event log (`job_event_log`): pending and running jobs by type at the end of each
 * bucket, completions and final failures per minute, and the time from submission to first claim
 * (p50 and p95, nearest rank). The page only draws them.
 *
 * How the depth is reconstructed: the count now is read from `jobs` (exact), and every change of
 * state in the range is a delta, read from the event log with the state before it (the previous
 * event of the same job). Walking the buckets backwards from now, the count at the end of a bucket
 * is the count at the end of the next one minus that bucket's deltas. The log has no index on `at`:
 * its `seq` follows commit time, so the first entry of the range is found by a binary search on
 * `seq` (about 20 primary-key lookups).
 */
import { z } from 'zod';
import type { JobStore } from '../store.ts';

export const QueueRange = z.enum(['hour', 'day', 'week']);
export type QueueRange = z.infer<typeof QueueRange>;

/** Bucket width and count per range: 60 × 1 min, 96 × 15 min, 84 × 2 h. */
export const RANGES: Record<QueueRange, { bucketMs: number; buckets: number }> = {
  hour: { bucketMs: 60_000, buckets: 60 },
  day: { bucketMs: 15 * 60_000, buckets: 96 },
  week: { bucketMs: 2 * 3_600_000, buckets: 84 },
};

export interface QueueSeries {
  range: QueueRange;
  bucket_ms: number;
  /** The end of each bucket (epoch ms), oldest first. */
  t: number[];
  /** Jobs pending at the end of each bucket, by type (types with none in the range left out). */
  pending: Record<string, number[]>;
  /** Jobs running or being cancelled (`pending_cancellation`) at the end of each bucket, by type. */
  running: Record<string, number[]>;
  /** Completions per minute in each bucket. */
  completed_per_min: number[];
  /** Jobs that ended `failed` per minute in each bucket. */
  failed_per_min: number[];
  /** Submission to first claim, of the jobs first claimed in each bucket (ms; null: none claimed). */
  pickup_p50_ms: Array<number | null>;
  pickup_p95_ms: Array<number | null>;
  pickups: number[];
}

const CLASS: Record<string, 'pending' | 'running' | undefined> = {
  pending: 'pending',
  running: 'running',
  pending_cancellation: 'running',
};

/** The lowest `seq` of the event log whose entry is at or after `ms` (or past the end). */
function firstSeqAtOrAfter(store: JobStore, ms: number): number {
  const bounds = store.consoleQuery('SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM job_event_log')[0] as {
    lo: number | null;
    hi: number | null;
  };
  if (bounds.lo === null || bounds.hi === null) return 1;
  const atFrom = (seq: number): number | null =>
    (store.consoleQuery('SELECT at FROM job_event_log WHERE seq >= ? ORDER BY seq LIMIT 1', seq)[0]?.at as
      | number
      | undefined) ?? null;
  let lo = bounds.lo;
  let hi = bounds.hi + 1;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const at = atFrom(mid);
    if (at === null || at >= ms) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export function queueSeries(store: JobStore, range: QueueRange): QueueSeries {
  const { bucketMs, buckets } = RANGES[range];
  const now = store.clock();
  const end = Math.ceil((now + 1) / bucketMs) * bucketMs;
  const start = end - buckets * bucketMs;
  const first = firstSeqAtOrAfter(store, start);
  const t = Array.from({ length: buckets }, (_, i) => start + (i + 1) * bucketMs);
  const bucketOf = (at = 'at') => `MIN(${buckets - 1}, MAX(0, (${at} - ${start}) / ${bucketMs}))`;

  // Changes of state in the range, with the state before each (null for a submission).
  const changes = store.consoleQuery(
    `WITH ev AS (
       SELECT seq, job_seq, type, state, kind, at,
              LAG(state) OVER (PARTITION BY job_seq ORDER BY seq) AS prev_in_range
       FROM job_event_log WHERE seq >= ?
     ), tr AS (
       SELECT type, state, at,
              CASE WHEN prev_in_range IS NOT NULL THEN prev_in_range
                   WHEN kind = 'created' THEN NULL
                   ELSE (SELECT p.state FROM job_event_log p WHERE p.job_seq = ev.job_seq AND p.seq < ev.seq
                         ORDER BY p.seq DESC LIMIT 1) END AS prev
       FROM ev
     )
     SELECT ${bucketOf()} AS b, type, prev, state, COUNT(*) AS n FROM tr
     WHERE prev IS NOT state GROUP BY b, type, prev, state`,
    first,
  ) as Array<{ b: number; type: string; prev: string | null; state: string; n: number }>;

  const series = { pending: new Map<string, number[]>(), running: new Map<string, number[]>() };
  const get = (cls: 'pending' | 'running', type: string) => {
    let s = series[cls].get(type);
    if (s === undefined) {
      s = new Array<number>(buckets).fill(0);
      series[cls].set(type, s);
    }
    return s;
  };
  // Deltas per bucket first, then turned into levels backwards from the exact count now.
  const deltas = { pending: new Map<string, number[]>(), running: new Map<string, number[]>() };
  const delta = (cls: 'pending' | 'running', type: string, b: number, n: number) => {
    let d = deltas[cls].get(type);
    if (d === undefined) {
      d = new Array<number>(buckets).fill(0);
      deltas[cls].set(type, d);
    }
    d[b] = (d[b] ?? 0) + n;
  };
  for (const c of changes) {
    const to = CLASS[c.state];
    const from = c.prev === null ? undefined : CLASS[c.prev];
    if (to === from) continue;
    if (to) delta(to, c.type, c.b, c.n);
    if (from) delta(from, c.type, c.b, -c.n);
  }
  for (const r of store.queueStats()) {
    const cls = CLASS[r.state];
    if (cls) {
      const s = get(cls, r.type);
      s[buckets - 1] = (s[buckets - 1] ?? 0) + r.n;
    }
  }
  for (const cls of ['pending', 'running'] as const) {
    for (const type of deltas[cls].keys()) get(cls, type);
    for (const [type, s] of series[cls]) {
      const d = deltas[cls].get(type);
      for (let b = buckets - 2; b >= 0; b--) s[b] = Math.max(0, (s[b + 1] ?? 0) - (d?.[b + 1] ?? 0));
    }
  }

  const ends = store.consoleQuery(
    `SELECT ${bucketOf()} AS b, SUM(kind = 'completed') AS completed, SUM(kind = 'failed') AS failed
     FROM job_event_log WHERE seq >= ? AND kind IN ('completed', 'failed') GROUP BY b`,
    first,
  ) as Array<{ b: number; completed: number; failed: number }>;
  const perMin = bucketMs / 60_000;
  const completed = new Array<number>(buckets).fill(0);
  const failed = new Array<number>(buckets).fill(0);
  for (const e of ends) {
    completed[e.b] = e.completed / perMin;
    failed[e.b] = e.failed / perMin;
  }

  // Nearest-rank percentiles: the value of rank ceil(p × n / 100).
  const pickups = store.consoleQuery(
    `WITH p AS (
       SELECT ${bucketOf('e.at')} AS b, e.at - j.created_at AS wait
       FROM job_event_log e JOIN jobs j ON j.seq = e.job_seq
       WHERE e.seq >= ? AND e.kind = 'claimed' AND e.attempt = 1
     ), r AS (
       SELECT b, wait, ROW_NUMBER() OVER (PARTITION BY b ORDER BY wait) AS rn, COUNT(*) OVER (PARTITION BY b) AS n
       FROM p
     )
     SELECT b, MAX(n) AS n, MAX(CASE WHEN rn = (n * 50 + 99) / 100 THEN wait END) AS p50,
            MAX(CASE WHEN rn = (n * 95 + 99) / 100 THEN wait END) AS p95
     FROM r GROUP BY b`,
    first,
  ) as Array<{ b: number; n: number; p50: number; p95: number }>;
  const p50 = new Array<number | null>(buckets).fill(null);
  const p95 = new Array<number | null>(buckets).fill(null);
  const count = new Array<number>(buckets).fill(0);
  for (const p of pickups) {
    p50[p.b] = Math.max(0, p.p50);
    p95[p.b] = Math.max(0, p.p95);
    count[p.b] = p.n;
  }

  const nonZero = (m: Map<string, number[]>) =>
    Object.fromEntries([...m].filter(([, s]) => s.some((v) => v > 0)).sort(([a], [b]) => a.localeCompare(b)));
  return {
    range,
    bucket_ms: bucketMs,
    t,
    pending: nonZero(series.pending),
    running: nonZero(series.running),
    completed_per_min: completed,
    failed_per_min: failed,
    pickup_p50_ms: p50,
    pickup_p95_ms: p95,
    pickups: count,
  };
}
