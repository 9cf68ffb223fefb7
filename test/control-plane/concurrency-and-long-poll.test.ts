import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Job } from '../../src/contract/index.ts';
import {
  clients,
  startTestControlPlane,
  type TestControlPlane,
  TRUNCATE,
  truncateInput,
  waitFor,
} from '../helpers.ts';

let cp: TestControlPlane | undefined;
afterEach(async () => {
  await cp?.close();
  cp = undefined;
});

async function race(pollers: number, jobs: number) {
  cp = await startTestControlPlane();
  const c = clients(cp);
  const submitted = new Set<string>();
  // Submit in parallel batches to fill the queue quickly.
  for (let i = 0; i < jobs; i += 100) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(100, jobs - i) }, (_, k) => c.submit(TRUNCATE, truncateInput(i + k))),
    );
    for (const j of batch) submitted.add(j.id);
  }
  const claims = new Map<string, string>();
  let duplicates = 0;
  await Promise.all(
    Array.from({ length: pollers }, async (_, p) => {
      for (;;) {
        const r = await c.poll({ executor: `poller-${p}`, capacity: 7 });
        if (r.status !== 200) throw new Error(`poll failed: ${JSON.stringify(r.body)}`);
        if (r.body.claimed.length === 0) return;
        for (const job of r.body.claimed) {
          if (claims.has(job.id)) duplicates++;
          claims.set(job.id, `poller-${p}`);
        }
      }
    }),
  );
  return { submitted, claims, duplicates, pollersUsed: new Set(claims.values()).size };
}

describe('atomic claims under concurrent polls', () => {
  it.each([2, 10])('%i pollers racing for 1,000 jobs claim each exactly once', async (pollers) => {
    const { submitted, claims, duplicates, pollersUsed } = await race(pollers, 1_000);
    expect(duplicates).toBe(0);
    expect(new Set(claims.keys())).toEqual(submitted);
    expect(pollersUsed).toBeGreaterThan(1);
    const running = await clients(cp!).user<{ jobs: Job[] }>('GET', '/v1/jobs?state=pending&per_page=10');
    expect(running.body.jobs).toHaveLength(0);
  });
});

describe('the long poll', () => {
  it('parks an empty poll and answers as soon as a matching job is submitted', async () => {
    cp = await startTestControlPlane();
    const c = clients(cp);
    const started = performance.now();
    const parked = c.poll({ wait_ms: 20_000 });
    // An unrelated job (other type) must not wake it.
    await c.submit('datasets_sample', { dataset_id: 9 });
    const submittedAt = performance.now();
    const job = await c.submit(TRUNCATE, truncateInput());
    const r = await parked;
    const wake = performance.now() - submittedAt;
    expect(r.body.claimed.map((j) => j.id)).toEqual([job.id]);
    expect(performance.now() - started).toBeLessThan(20_000);
    process.stdout.write(`long poll woke ${wake.toFixed(2)} ms after the submit was sent\n`);
  });

  it('answers a parked poll holding a job as soon as that job is asked to cancel', async () => {
    cp = await startTestControlPlane();
    const c = clients(cp);
    const job = await c.submit(TRUNCATE, truncateInput());
    const claimed = await c.claim(job.id);
    const parked = c.poll({
      capacity: 0,
      wait_ms: 20_000,
      held: [{ id: job.id, lease_token: claimed.lease!.token }],
    });
    // Wait until the poll is parked: the cancel must reach it through the wake-up, not the first pass.
    await new Promise((r) => setImmediate(r));
    const t0 = performance.now();
    await c.user('POST', `/v1/jobs/${job.id}/cancel`);
    const r = await parked;
    const wake = performance.now() - t0;
    expect(r.body.cancel).toEqual([job.id]);
    process.stdout.write(`parked poll saw the cancel ${wake.toFixed(2)} ms after the request was sent\n`);
  });

  it('pushes a cancel to the executor’s parked poll even when the poll does not list the job', async () => {
    cp = await startTestControlPlane();
    const c = clients(cp);
    const job = await c.submit(TRUNCATE, truncateInput());
    await c.claim(job.id);
    const other = await c.poll({ executor: 'someone-else', capacity: 0, wait_ms: 300 });
    const parked = c.poll({ capacity: 0, wait_ms: 20_000, held: [] });
    await c.user('POST', `/v1/jobs/${job.id}/cancel`);
    expect((await parked).body.cancel).toEqual([job.id]);
    expect(other.body.cancel).toEqual([]);
  });

  it('forgets a parked poll whose client hung up, so no job is claimed into a dead connection', async () => {
    cp = await startTestControlPlane();
    const c = clients(cp);
    // A raw connection that sends a poll and hangs up while it is parked.
    const body = JSON.stringify({
      executor: 'gone',
      data_plane_id: cp.dataPlaneId,
      job_types: [TRUNCATE],
      capacity: 5,
      wait_ms: 20_000,
    });
    const socket = connect(cp.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    socket.write(
      `POST /v1/operators/poll HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${cp.operatorToken}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    // Requests are handled in arrival order: once a later one is answered, the first is parked.
    await waitFor(async () => (await c.poll({ executor: 'probe', capacity: 0 })).status === 200);
    socket.destroy();
    await new Promise((r) => socket.once('close', r));
    const job = await c.submit(TRUNCATE, truncateInput());
    const r = await c.poll({ capacity: 5 });
    expect(r.body.claimed.map((j) => j.id)).toEqual([job.id]);
  });

  it('answers a parked poll at once when a held job is rescheduled away from it', async () => {
    cp = await startTestControlPlane();
    const c = clients(cp);
    const job = await c.submit(TRUNCATE, truncateInput());
    const claimed = await c.claim(job.id);
    const parked = c.poll({
      capacity: 0,
      wait_ms: 20_000,
      held: [{ id: job.id, lease_token: claimed.lease!.token }],
    });
    await c.user('POST', `/v1/jobs/${job.id}/reschedule`);
    expect((await parked).body.lost).toEqual([job.id]);
  });

  it('parks a poll that holds leases for at most half the lease TTL, so renewals never lapse', async () => {
    cp = await startTestControlPlane({ leaseTtlMs: 400 });
    const c = clients(cp);
    const job = await c.submit(TRUNCATE, truncateInput());
    const claimed = await c.claim(job.id);
    const held = [{ id: job.id, lease_token: claimed.lease!.token }];
    const t0 = performance.now();
    for (let i = 0; i < 4; i++) {
      const r = await c.poll({ capacity: 0, wait_ms: 30_000, held });
      expect(r.body.lost).toEqual([]);
    }
    // Four parked polls answered well within one wait_ms: each was capped near TTL/2.
    expect(performance.now() - t0).toBeLessThan(30_000);
    expect((await c.user<Job>('GET', `/v1/jobs/${job.id}`)).body.state).toBe('running');
  });
});
