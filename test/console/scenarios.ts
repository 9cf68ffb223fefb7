/**
 * Scenarios the console's tests draw: 500 jobs over the last 50 minutes on a driven clock (the queue
 * chart), and a job with three attempts (the Gantt). Everything goes through the contract's HTTP API.
 */
import { expect } from 'vitest';
import type { Job } from '../../src/contract/index.ts';
import {
  clients,
  startTestControlPlane,
  type TestControlPlane,
  TRUNCATE,
  truncateInput,
  waitFor,
} from '../helpers.ts';

export const SAMPLE = 'datasets_sample';
type Cls = 'pending' | 'running' | null;

export interface QueueScenario {
  cp: TestControlPlane;
  c: ReturnType<typeof clients>;
  /** Advances the store's clock. */
  advance(ms: number): void;
  /** What the scenario left, to check the chart's series against. */
  expected: {
    pending: Record<string, number>;
    running: Record<string, number>;
    completed: number;
    failed: number;
    /** Every first claim: when, and how long after its submission (ms). */
    pickups: Array<{ at: number; wait: number }>;
    /** Every change between pending, running and ended, when it happened (the model of the depth). */
    changes: Array<{ at: number; type: string; from: Cls; to: Cls }>;
  };
}

/**
 * 500 jobs (two types) submitted 10 a minute over 50 minutes ending now; each minute the operator
 * claims the jobs submitted two minutes before and ends those it claimed the minute before: 4 of 10
 * completed, 1 failed, the rest left running. The last minutes' jobs stay pending.
 */
export async function queueScenario(overrides: Parameters<typeof startTestControlPlane>[0] = {}) {
  let clock = Date.now() - 50 * 60_000;
  const cp = await startTestControlPlane({ now: () => clock, leaseTtlMs: 3_600_000, ...overrides });
  const c = clients(cp);
  const byMinute: Job[][] = [];
  const claimedByMinute: Job[][] = [];
  const pickups: Array<{ at: number; wait: number }> = [];
  const changes: QueueScenario['expected']['changes'] = [];
  let completed = 0;
  let failed = 0;
  for (let m = 0; m < 50; m++) {
    clock = Date.now() - (50 - m) * 60_000;
    const jobs: Job[] = [];
    for (let i = 0; i < 10; i++) {
      const j = await c.submit(
        i % 2 === 0 ? TRUNCATE : SAMPLE,
        i % 2 === 0 ? truncateInput(m * 10 + i + 1) : { dataset_id: 7 },
      );
      jobs.push(j);
      changes.push({ at: clock, type: j.type, from: null, to: 'pending' });
      clock += 1_000;
    }
    byMinute.push(jobs);
    clock += 20_000;
    const ready = byMinute[m - 2];
    if (ready) {
      const r = await c.poll({ job_types: [TRUNCATE, SAMPLE], capacity: ready.length });
      expect(r.status).toBe(200);
      expect(r.body.claimed.map((j) => j.id).sort()).toEqual(ready.map((j) => j.id).sort());
      for (const j of r.body.claimed) {
        pickups.push({ at: clock, wait: clock - Date.parse(j.created_at) });
        changes.push({ at: clock, type: j.type, from: 'pending', to: 'running' });
      }
      claimedByMinute[m] = r.body.claimed;
    }
    clock += 20_000;
    const toEnd = claimedByMinute[m - 1];
    if (toEnd) {
      for (const [i, j] of toEnd.entries()) {
        if (i < 4) {
          const res = await c.op('POST', `/v1/jobs/${j.id}/complete`, {
            lease_token: j.lease!.token,
            result: { type: j.type },
          });
          expect(res.status).toBe(200);
          completed++;
          changes.push({ at: clock, type: j.type, from: 'running', to: null });
        } else if (i === 4) {
          const res = await c.op('POST', `/v1/jobs/${j.id}/fail`, {
            lease_token: j.lease!.token,
            failure: { code: 'INVALID_INPUT', message: 'no such dataset', retryable: false },
          });
          expect(res.status).toBe(200);
          failed++;
          changes.push({ at: clock, type: j.type, from: 'running', to: null });
        }
      }
    }
  }
  clock = Date.now();
  const all = (await c.user<{ jobs: Job[] }>('GET', '/v1/jobs?per_page=500')).body.jobs;
  expect(all).toHaveLength(500);
  const count = (state: string) => {
    const out: Record<string, number> = {};
    for (const j of all) if (j.state === state) out[j.type] = (out[j.type] ?? 0) + 1;
    return out;
  };
  const scenario: QueueScenario = {
    cp,
    c,
    advance(ms) {
      clock += ms;
    },
    expected: { pending: count('pending'), running: count('running'), completed, failed, pickups, changes },
  };
  return scenario;
}

/**
 * One job, three attempts: the first (op-alpha) loses its lease, the second (op-bravo) fails and is
 * retried, the third (op-charlie) reports progress twice and is cancelled, which it confirms. `advance`
 * moves the store's clock (seconds to minutes between steps, so the bars have lengths to compare).
 */
export async function threeAttempts(cp: TestControlPlane, advance: (ms: number) => void) {
  const c = clients(cp);
  const job = await c.submit(TRUNCATE, truncateInput(9), { max_attempts: 3 });
  const claimAs = async (executor: string): Promise<Job> => {
    let claimed: Job | undefined;
    await waitFor(
      async () => {
        const r = await c.poll({ executor, capacity: 1 });
        claimed = r.body.claimed?.[0];
        return claimed !== undefined;
      },
      { what: `${executor} claims the job` },
    );
    expect(claimed!.id).toBe(job.id);
    return claimed!;
  };
  /** The holder's poll renews its lease: a write after more than a TTL since the last renewal is refused. */
  const renew = async (executor: string, held: Job) => {
    const r = await c.poll({ executor, capacity: 1, held: [{ id: job.id, lease_token: held.lease!.token }] });
    expect(r.body.lost).toEqual([]);
  };
  advance(4_000);
  await claimAs('op-alpha');
  // No renewal: the lease expires and the job is retried.
  advance(cp.store.leaseTtlMs + 1_000);
  await waitFor(
    async () => (await c.user<Job>('GET', `/v1/jobs/${job.id}`)).body.failures[0]?.code === 'LEASE_EXPIRED',
    { what: 'the first lease to expire' },
  );
  advance(6_000);
  const second = await claimAs('op-bravo');
  advance(15_000);
  await renew('op-bravo', second);
  advance(10_000);
  const failed = await c.op('POST', `/v1/jobs/${job.id}/fail`, {
    lease_token: second.lease!.token,
    failure: { code: 'UPSTREAM_UNAVAILABLE', message: 'the warehouse did not answer', retryable: true },
  });
  expect(failed.status).toBe(200);
  advance(8_000);
  const third = await claimAs('op-charlie');
  for (const fraction of [0.3, 0.6]) {
    advance(12_000);
    await renew('op-charlie', third);
    const r = await c.op('POST', `/v1/jobs/${job.id}/checkpoint`, {
      lease_token: third.lease!.token,
      progress: { fraction, message: `${fraction * 100} % scanned` },
    });
    expect(r.status).toBe(200);
  }
  advance(9_000);
  await renew('op-charlie', third);
  expect((await c.user('POST', `/v1/jobs/${job.id}/cancel`, { reason: 'not needed any more' })).status).toBe(
    200,
  );
  advance(3_000);
  const confirmed = await c.op('POST', `/v1/jobs/${job.id}/cancelled`, { lease_token: third.lease!.token });
  expect(confirmed.status).toBe(200);
  return job;
}
