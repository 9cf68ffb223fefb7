/**
 * The control plane's queue metrics (Prometheus, `GET /metrics`): queue depth read from the store at
 * scrape time, and counters of the job event log's claims, completions, failures, lease expiries and
 * cancellations.
 *
 * Labels stay low-cardinality: `type` is one of the catalogue's job types, and `data_plane_id` is
 * one the control plane has an operator token for; any other is `other`, and a job submitted for no
 * particular data plane is `any`.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { JobEvent, JobStore } from '../store.ts';

export interface QueueMetrics {
  registry: Registry;
  /** The exposition text, from one read of the queue. */
  scrape(): Promise<string>;
  /** Counts one event of the job event log. */
  count(event: JobEvent): void;
}

export function createQueueMetrics(store: JobStore, knownDataPlanes: readonly string[]): QueueMetrics {
  const registry = new Registry();
  const known = new Set(knownDataPlanes);
  const dp = (id: string | null): string => (id === null ? 'any' : known.has(id) ? id : 'other');
  const labelNames = ['data_plane_id', 'type'] as const;
  // Both gauges read one query per scrape (it walks every waiting and held job: ~150 ms at 50,000).
  let snapshot: ReturnType<JobStore['queueStats']> | undefined;
  const queueStats = () => {
    snapshot ??= store.queueStats();
    return snapshot;
  };

  const queue = new Gauge({
    name: 'dpo_cp_queue_jobs',
    help: 'Jobs waiting or held, by state (pending, running, pending_cancellation), data plane and type',
    labelNames: ['state', ...labelNames],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of queueStats()) {
        queue.inc({ state: r.state, data_plane_id: dp(r.data_plane_id), type: r.type }, r.n);
      }
    },
  });
  const oldest = new Gauge({
    name: 'dpo_cp_oldest_pending_job_age_seconds',
    help: 'Age since submission of the oldest pending job, by data plane (absent when none is pending)',
    labelNames: ['data_plane_id'],
    registers: [registry],
    collect() {
      this.reset();
      const now = store.clock();
      const byDp = new Map<string, number>();
      for (const r of queueStats()) {
        if (r.state !== 'pending') continue;
        const key = dp(r.data_plane_id);
        byDp.set(key, Math.min(byDp.get(key) ?? Number.POSITIVE_INFINITY, r.oldest));
      }
      for (const [key, t] of byDp) oldest.set({ data_plane_id: key }, Math.max(0, (now - t) / 1000));
    },
  });
  const claims = new Counter({
    name: 'dpo_cp_job_claims_total',
    help: 'Jobs claimed by operators (a claim to stop the remote work of a cancelled job included)',
    labelNames,
    registers: [registry],
  });
  const completions = new Counter({
    name: 'dpo_cp_job_completions_total',
    help: 'Jobs completed',
    labelNames,
    registers: [registry],
  });
  const failures = new Counter({
    name: 'dpo_cp_job_failures_total',
    help: 'Failed attempts (final ones and retried ones, lease expiries included), by whether the job ended failed',
    labelNames: [...labelNames, 'final'],
    registers: [registry],
  });
  const expiries = new Counter({
    name: 'dpo_cp_lease_expiries_total',
    help: 'Leases that expired without renewal',
    labelNames,
    registers: [registry],
  });
  /**
   * From the event log, so no write path counts by hand: `requested` when a cancel leaves work to stop
   * downstream (the job enters pending_cancellation), `cancelled` when a job ends cancelled (at once,
   * or once an operator confirmed the work stopped). A cancel of a terminal job changes nothing and is
   * not counted.
   */
  const cancellations = new Counter({
    name: 'dpo_cp_cancellations_total',
    help: 'Cancellations: requested (work to stop downstream) and cancelled (the job ended cancelled)',
    labelNames: [...labelNames, 'outcome'],
    registers: [registry],
  });

  return {
    registry,
    async scrape() {
      snapshot = undefined;
      try {
        return await registry.metrics();
      } finally {
        snapshot = undefined;
      }
    },
    count(e) {
      const labels = { data_plane_id: dp(e.data_plane_id), type: e.type };
      let failure: { code?: unknown } | null = null;
      switch (e.kind) {
        case 'claimed':
        case 'claimed_for_cancel':
          claims.inc(labels);
          return;
        case 'completed':
          completions.inc(labels);
          return;
        case 'failed':
          failure = e.data as { code?: unknown } | null;
          failures.inc({ ...labels, final: 'true' });
          break;
        case 'retry_scheduled':
          failure = (e.data as { failure?: { code?: unknown } } | null)?.failure ?? null;
          failures.inc({ ...labels, final: 'false' });
          break;
        case 'failure':
          failure = e.data as { code?: unknown } | null;
          failures.inc({ ...labels, final: 'false' });
          break;
        case 'cancel_requested':
          cancellations.inc({ ...labels, outcome: 'requested' });
          return;
        case 'cancelled':
          cancellations.inc({ ...labels, outcome: 'cancelled' });
          failure = (e.data as { failure?: { code?: unknown } | null } | null)?.failure ?? null;
          if (failure !== null) failures.inc({ ...labels, final: 'false' });
          break;
        default:
          return;
      }
      if (failure?.code === 'LEASE_EXPIRED') expiries.inc(labels);
    },
  };
}
