/**
 * Leases revoked from their holder (reschedule, expiry) reach it as `lost` within one poll; a cancel
 * is confirmed downstream (an unheld `pending_cancellation` job whose checkpoint names remote work is
 * claimed by an operator to stop it); `retry_after_ms`; a batched report is atomic per entry.
 *
 * Time is the store's injected clock: the tests advance `clock` and expire leases themselves, so no
 * test waits out a real TTL or backoff.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { Job } from '../../src/contract/index.ts';
import {
  clients,
  startTestControlPlane,
  type TestControlPlane,
  TRUNCATE,
  truncateInput,
  truncateResult,
} from '../helpers.ts';

const TTL = 10_000;
const DELETE_TABLE = 'datasets_delete_table';

let cp: TestControlPlane | undefined;
let clock = Date.now();

afterEach(async () => {
  await cp?.close();
  cp = undefined;
});

const iso = (ms: number) => new Date(ms).toISOString();

async function setup(overrides: Parameters<typeof startTestControlPlane>[0] = {}) {
  clock = Date.now();
  cp = await startTestControlPlane({ now: () => clock, leaseTtlMs: TTL, ...overrides });
  const running = cp;
  const c = clients(running);
  const suffix = randomUUID().slice(0, 8);
  const exec = { a: `exec-a-${suffix}`, b: `exec-b-${suffix}`, c: `exec-c-${suffix}` };

  /** A poll as `executor`; claims nothing unless `capacity` says so. */
  const pollAs = async (executor: string, body: Record<string, unknown> = {}) => {
    const r = await c.poll({ executor, capacity: 0, ...body });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body;
  };
  /** Claims exactly the job `id` as `executor`. */
  const claimAs = async (executor: string, id: string, type = TRUNCATE): Promise<Job> => {
    const r = await pollAs(executor, { job_types: [type], capacity: 1 });
    expect(r.claimed.map((j) => j.id)).toEqual([id]);
    return r.claimed[0]!;
  };
  const get = async (id: string): Promise<Job> => {
    const r = await c.user<Job>('GET', `/v1/jobs/${id}`);
    expect(r.status).toBe(200);
    return r.body;
  };
  /** Moves the store's clock and ends the leases that lapsed. */
  const advance = (ms: number): number => {
    clock += ms;
    return running.store.expireLeases();
  };
  const checkpoint = async (job: Job, value: Record<string, unknown>) => {
    const r = await c.op('POST', `/v1/jobs/${job.id}/checkpoint`, {
      lease_token: job.lease!.token,
      checkpoint: value,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.job as Job;
  };
  const cancel = async (id: string) => {
    const r = await c.user<{ outcome: string; job: Job }>('POST', `/v1/jobs/${id}/cancel`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body;
  };
  const report = async (executor: string, reports: unknown[]) => {
    const r = await c.op<{ results: Array<{ id: string; status: string; error?: { code: string } }> }>(
      'POST',
      '/v1/operators/report',
      { executor, reports },
    );
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.results;
  };
  /** Claimed, checkpointed (`{run: 'r1'}`), then cancelled: held `pending_cancellation` by exec.a. */
  const cancellingWithCheckpoint = async (datasetId: number) => {
    const job = await c.submit(TRUNCATE, truncateInput(datasetId));
    const held = await claimAs(exec.a, job.id);
    await checkpoint(held, { run: 'r1' });
    const cancelled = await cancel(job.id);
    expect(cancelled).toMatchObject({
      outcome: 'cancellation_requested',
      job: { state: 'pending_cancellation' },
    });
    return held;
  };
  /** Claimed, then cancelled without a checkpoint: held `pending_cancellation` by exec.a. */
  const cancellingWithoutCheckpoint = async (datasetId: number) => {
    const job = await c.submit(TRUNCATE, truncateInput(datasetId));
    const held = await claimAs(exec.a, job.id);
    expect((await cancel(job.id)).job.state).toBe('pending_cancellation');
    return held;
  };
  return {
    ...c,
    cp: running,
    exec,
    pollAs,
    claimAs,
    get,
    advance,
    checkpoint,
    cancel,
    report,
    cancellingWithCheckpoint,
    cancellingWithoutCheckpoint,
  };
}

describe('lost: every revoked lease reaches its holder within one poll', () => {
  it('answers lost for a rescheduled job on the holder’s next poll even when held omits it, once', async () => {
    const t = await setup();
    const job = await t.submit(TRUNCATE, truncateInput(101));
    const held = await t.claimAs(t.exec.a, job.id);

    const r = await t.user('POST', `/v1/jobs/${job.id}/reschedule`);
    expect(r.body).toMatchObject({ outcome: 'rescheduled', job: { state: 'pending', lease: null } });

    // Another executor is not told: the revocation is the holder's.
    expect((await t.pollAs(t.exec.b, { held: [] })).lost).toEqual([]);

    const first = await t.pollAs(t.exec.a, { held: [] });
    expect(first.lost).toEqual([job.id]);
    expect(first.cancel).toEqual([]);
    const second = await t.pollAs(t.exec.a, { held: [] });
    expect(second.lost).toEqual([]);

    // The old token is fenced off.
    const late = await t.op('POST', `/v1/jobs/${job.id}/complete`, {
      lease_token: held.lease!.token,
      result: truncateResult,
    });
    expect(late.status).toBe(410);
  });

  it('answers lost for an expired lease on the holder’s next poll, and again when it renews the old token after a peer claimed the job', async () => {
    const t = await setup();
    const job = await t.submit(TRUNCATE, truncateInput(102));
    const held = await t.claimAs(t.exec.a, job.id);
    expect(held.attempt).toBe(1);

    expect(t.advance(TTL + 1)).toBe(1);
    const expired = await t.get(job.id);
    expect(expired).toMatchObject({ state: 'pending', lease: null, executor: null });
    expect(expired.failures).toMatchObject([{ code: 'LEASE_EXPIRED', attempt: 1, executor: t.exec.a }]);

    expect((await t.pollAs(t.exec.a, { held: [] })).lost).toEqual([job.id]);
    expect((await t.pollAs(t.exec.a, { held: [] })).lost).toEqual([]);

    const peer = await t.claimAs(t.exec.b, job.id);
    expect(peer).toMatchObject({ state: 'running', executor: t.exec.b, attempt: 2 });
    expect(peer.lease!.token).not.toBe(held.lease!.token);

    const renewal = await t.pollAs(t.exec.a, { held: [{ id: job.id, lease_token: held.lease!.token }] });
    expect(renewal.lost).toEqual([job.id]);
    expect(renewal.cancel).toEqual([]);

    // The peer's lease is untouched by the stale renewal.
    const peerRenewal = await t.pollAs(t.exec.b, { held: [{ id: job.id, lease_token: peer.lease!.token }] });
    expect(peerRenewal).toMatchObject({ lost: [], cancel: [] });
    expect(await t.get(job.id)).toMatchObject({
      state: 'running',
      executor: t.exec.b,
      lease: { token: peer.lease!.token },
    });
  });

  it('answers lost for the old lease and claims the job with a new token in one poll after a reschedule, and never reports the new token lost', async () => {
    const t = await setup();
    const job = await t.submit(TRUNCATE, truncateInput(103));
    const old = await t.claimAs(t.exec.a, job.id);
    expect((await t.user('POST', `/v1/jobs/${job.id}/reschedule`)).body.outcome).toBe('rescheduled');

    const r = await t.pollAs(t.exec.a, { held: [], capacity: 1 });
    expect(r.lost).toEqual([job.id]);
    expect(r.claimed.map((j) => j.id)).toEqual([job.id]);
    const fresh = r.claimed[0]!;
    expect(fresh).toMatchObject({ state: 'running', executor: t.exec.a, attempt: 1 });
    expect(fresh.lease!.token).not.toBe(old.lease!.token);

    const renewal = await t.pollAs(t.exec.a, { held: [{ id: job.id, lease_token: fresh.lease!.token }] });
    expect(renewal).toMatchObject({ lost: [], cancel: [], claimed: [] });
    expect((await t.pollAs(t.exec.a, { held: [] })).lost).toEqual([]);

    const stale = await t.op('POST', `/v1/jobs/${job.id}/complete`, {
      lease_token: old.lease!.token,
      result: truncateResult,
    });
    expect(stale.status).toBe(410);
    const done = await t.op('POST', `/v1/jobs/${job.id}/complete`, {
      lease_token: fresh.lease!.token,
      result: truncateResult,
    });
    expect(done.status).toBe(200);
    expect(done.body.job.state).toBe('completed');
  });
});

describe('cancel confirmed downstream', () => {
  it('keeps a cancelling job with a checkpoint pending_cancellation and unheld when its lease expires; another operator claims it at the same attempt and confirms cancelled', async () => {
    const t = await setup();
    const held = await t.cancellingWithCheckpoint(201);
    const id = held.id;

    expect(t.advance(TTL + 1)).toBe(1);
    const unheld = await t.get(id);
    expect(unheld).toMatchObject({
      state: 'pending_cancellation',
      lease: null,
      executor: null,
      checkpoint: { run: 'r1' },
      attempt: 1,
      ended_at: null,
    });
    expect(unheld.failures).toMatchObject([
      { code: 'LEASE_EXPIRED', attempt: 1, executor: t.exec.a, retryable: true },
    ]);
    // The old holder learns it lost the job; it is not asked to cancel it any more.
    expect(await t.pollAs(t.exec.a, { held: [] })).toMatchObject({ lost: [id], cancel: [] });

    const claimed = await t.claimAs(t.exec.b, id);
    expect(claimed).toMatchObject({
      state: 'pending_cancellation',
      executor: t.exec.b,
      attempt: 1,
      checkpoint: { run: 'r1' },
    });
    expect(claimed.lease!.token).not.toBe(held.lease!.token);
    // Held by exec.b now: its polls carry the cancel.
    expect((await t.pollAs(t.exec.b, { held: [{ id, lease_token: claimed.lease!.token }] })).cancel).toEqual([
      id,
    ]);

    const results = await t.report(t.exec.b, [
      { id, lease_token: claimed.lease!.token, outcome: 'cancelled' },
    ]);
    expect(results).toEqual([{ id, status: 'ok' }]);
    const end = await t.get(id);
    expect(end).toMatchObject({ state: 'cancelled', lease: null });
    expect(end.ended_at).not.toBeNull();
  });

  it('ends a cancelling job without a checkpoint cancelled at once when its lease expires, recording LEASE_EXPIRED and telling the holder it is lost', async () => {
    const t = await setup();
    const held = await t.cancellingWithoutCheckpoint(202);
    const id = held.id;

    expect(t.advance(TTL + 1)).toBe(1);
    const end = await t.get(id);
    expect(end).toMatchObject({ state: 'cancelled', lease: null, checkpoint: null });
    expect(end.ended_at).toBe(iso(clock));
    expect(end.failures).toMatchObject([{ code: 'LEASE_EXPIRED', attempt: 1, executor: t.exec.a }]);

    expect((await t.pollAs(t.exec.a, { held: [] })).lost).toEqual([id]);
    expect((await t.pollAs(t.exec.b, { capacity: 10 })).claimed).toEqual([]);
  });

  it('turns a cancel of a pending job with a checkpoint into an unheld pending_cancellation that an operator claims and confirms; without a checkpoint it cancels at once', async () => {
    const t = await setup();
    const job = await t.submit(TRUNCATE, truncateInput(203));
    const first = await t.claimAs(t.exec.a, job.id);
    await t.checkpoint(first, { run: 'r1' });
    const released = await t.op('POST', `/v1/jobs/${job.id}/release`, {
      lease_token: first.lease!.token,
      reason: 'drain',
    });
    expect(released.body.job).toMatchObject({ state: 'pending', attempt: 0, checkpoint: { run: 'r1' } });

    const r = await t.cancel(job.id);
    expect(r.outcome).toBe('cancellation_requested');
    expect(r.job).toMatchObject({
      state: 'pending_cancellation',
      lease: null,
      executor: null,
      checkpoint: { run: 'r1' },
      ended_at: null,
    });

    const claimed = await t.claimAs(t.exec.b, job.id);
    expect(claimed).toMatchObject({
      state: 'pending_cancellation',
      executor: t.exec.b,
      attempt: released.body.job.attempt,
      checkpoint: { run: 'r1' },
    });
    const results = await t.report(t.exec.b, [
      { id: job.id, lease_token: claimed.lease!.token, outcome: 'cancelled' },
    ]);
    expect(results).toEqual([{ id: job.id, status: 'ok' }]);
    expect((await t.get(job.id)).state).toBe('cancelled');

    const plain = await t.submit(TRUNCATE, truncateInput(204));
    const cancelled = await t.cancel(plain.id);
    expect(cancelled.outcome).toBe('cancelled');
    expect(cancelled.job.state).toBe('cancelled');
    expect(cancelled.job.ended_at).not.toBeNull();
  });

  it('leaves a cancelling job with a checkpoint pending_cancellation and unheld on release (without a checkpoint: cancelled)', async () => {
    const t = await setup();
    const held = await t.cancellingWithCheckpoint(205);
    const r = await t.op('POST', `/v1/jobs/${held.id}/release`, {
      lease_token: held.lease!.token,
      reason: 'drain',
    });
    expect(r.status).toBe(200);
    expect(r.body.job).toMatchObject({
      state: 'pending_cancellation',
      lease: null,
      executor: null,
      checkpoint: { run: 'r1' },
      not_before: null,
      ended_at: null,
    });
    // A release is the holder's own: nothing is revoked, and it is no longer asked to cancel.
    expect(await t.pollAs(t.exec.a, { held: [] })).toMatchObject({ lost: [], cancel: [] });
    const claimed = await t.claimAs(t.exec.b, held.id);
    expect(claimed).toMatchObject({ state: 'pending_cancellation', attempt: 1, checkpoint: { run: 'r1' } });

    const bare = await t.cancellingWithoutCheckpoint(206);
    const r2 = await t.op('POST', `/v1/jobs/${bare.id}/release`, {
      lease_token: bare.lease!.token,
      reason: 'drain',
    });
    expect(r2.status).toBe(200);
    expect(r2.body.job.state).toBe('cancelled');
  });

  it('leaves a cancelling job with a checkpoint pending_cancellation and unheld after a retryable failure, claimable only after not_before (without a checkpoint: cancelled)', async () => {
    const t = await setup({ retryBaseMs: 5_000, retryMaxMs: 60_000 });
    const held = await t.cancellingWithCheckpoint(207);
    const r = await t.op('POST', `/v1/jobs/${held.id}/fail`, {
      lease_token: held.lease!.token,
      failure: { code: 'THROTTLED', message: 'slow down', retryable: true },
    });
    expect(r.status).toBe(200);
    const notBefore = clock + 5_000;
    expect(r.body.job).toMatchObject({
      state: 'pending_cancellation',
      lease: null,
      executor: null,
      checkpoint: { run: 'r1' },
      not_before: iso(notBefore),
      ended_at: null,
    });
    expect(r.body.job.failures).toMatchObject([{ code: 'THROTTLED', attempt: 1, retryable: true }]);

    expect((await t.pollAs(t.exec.b, { capacity: 10 })).claimed).toEqual([]);
    t.advance(4_999);
    expect((await t.pollAs(t.exec.b, { capacity: 10 })).claimed).toEqual([]);
    t.advance(1);
    const claimed = await t.claimAs(t.exec.b, held.id);
    expect(claimed).toMatchObject({
      state: 'pending_cancellation',
      executor: t.exec.b,
      attempt: 1,
      checkpoint: { run: 'r1' },
      not_before: null,
    });

    const bare = await t.cancellingWithoutCheckpoint(208);
    const r2 = await t.op('POST', `/v1/jobs/${bare.id}/fail`, {
      lease_token: bare.lease!.token,
      failure: { code: 'THROTTLED', message: 'slow down', retryable: true },
    });
    expect(r2.status).toBe(200);
    expect(r2.body.job.state).toBe('cancelled');
  });

  it('ends a cancelling job with a checkpoint failed on a non-retryable failure (without a checkpoint: cancelled)', async () => {
    const t = await setup();
    const held = await t.cancellingWithCheckpoint(209);
    const r = await t.op('POST', `/v1/jobs/${held.id}/fail`, {
      lease_token: held.lease!.token,
      failure: { code: 'REMOTE_FAILED', message: 'the run failed', retryable: false },
    });
    expect(r.status).toBe(200);
    expect(r.body.job).toMatchObject({ state: 'failed', lease: null, checkpoint: { run: 'r1' } });
    expect(r.body.job.ended_at).not.toBeNull();
    expect(r.body.job.failures).toMatchObject([{ code: 'REMOTE_FAILED', retryable: false }]);

    const bare = await t.cancellingWithoutCheckpoint(210);
    const r2 = await t.op('POST', `/v1/jobs/${bare.id}/fail`, {
      lease_token: bare.lease!.token,
      failure: { code: 'REMOTE_FAILED', message: 'the run failed', retryable: false },
    });
    expect(r2.status).toBe(200);
    expect(r2.body.job.state).toBe('cancelled');
  });

  it('holds a pending_cancellation job claimed for its cancel: another operator cannot claim it while the lease lives, only after it expires', async () => {
    const t = await setup();
    const held = await t.cancellingWithCheckpoint(211);
    const id = held.id;
    t.advance(TTL + 1);
    expect((await t.get(id)).state).toBe('pending_cancellation');

    const claimed = await t.claimAs(t.exec.b, id);
    expect(claimed.state).toBe('pending_cancellation');
    expect(await t.get(id)).toMatchObject({ executor: t.exec.b, lease: { token: claimed.lease!.token } });

    expect((await t.pollAs(t.exec.c, { capacity: 10 })).claimed).toEqual([]);
    t.advance(TTL);
    expect((await t.pollAs(t.exec.c, { capacity: 10 })).claimed).toEqual([]);
    expect(await t.get(id)).toMatchObject({ executor: t.exec.b, lease: { token: claimed.lease!.token } });

    // Once exec.b's lease lapses, the cancel is still owed: exec.c takes it over, exec.b lost it.
    t.advance(1);
    const takeover = await t.claimAs(t.exec.c, id);
    expect(takeover).toMatchObject({ state: 'pending_cancellation', executor: t.exec.c, attempt: 1 });
    expect((await t.pollAs(t.exec.b, { held: [] })).lost).toEqual([id]);
    const late = await t.op('POST', `/v1/jobs/${id}/cancelled`, { lease_token: claimed.lease!.token });
    expect(late.status).toBe(410);
  });
});

describe('retry_after_ms', () => {
  it('offers a retryable failure again exactly retry_after_ms later, replacing the backoff', async () => {
    const t = await setup({ retryBaseMs: 50 });
    const job = await t.submit(TRUNCATE, truncateInput(301));
    const held = await t.claimAs(t.exec.a, job.id);
    const failedAt = clock;
    const r = await t.op('POST', `/v1/jobs/${job.id}/fail`, {
      lease_token: held.lease!.token,
      failure: { code: 'THROTTLED', message: 'come back later', retryable: true, retry_after_ms: 120_000 },
    });
    expect(r.status).toBe(200);
    expect(r.body.job).toMatchObject({ state: 'pending', lease: null, not_before: iso(failedAt + 120_000) });

    expect((await t.pollAs(t.exec.a, { capacity: 10 })).claimed).toEqual([]);
    t.advance(119_999);
    expect((await t.pollAs(t.exec.a, { capacity: 10 })).claimed).toEqual([]);
    t.advance(1);
    const again = await t.claimAs(t.exec.a, job.id);
    expect(again).toMatchObject({ state: 'running', attempt: 2, not_before: null });
  });

  it('a throttled failure gives its attempt back, up to maxThrottledRetries per job; then it counts', async () => {
    const t = await setup({ defaultMaxAttempts: 1, maxThrottledRetries: 2 });
    const job = await t.submit(TRUNCATE, truncateInput(302));
    const throttle = async () => {
      const held = await t.claimAs(t.exec.a, job.id);
      expect(held.attempt).toBe(1);
      const r = await t.op('POST', `/v1/jobs/${job.id}/fail`, {
        lease_token: held.lease!.token,
        failure: {
          code: 'AWS_UNAVAILABLE',
          message: 'throttled',
          retryable: true,
          retry_after_ms: 5_000,
          throttled: true,
        },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      t.advance(5_000);
      return r.body.job as Job;
    };
    // One attempt only, yet two throttled failures leave it pending with its attempt given back.
    for (let i = 1; i <= 2; i++) {
      expect(await throttle()).toMatchObject({ state: 'pending', attempt: 0 });
    }
    const third = await throttle();
    expect(third.state).toBe('failed');
    expect(third.failures.map((f) => f.throttled ?? false)).toEqual([true, true, false]);
  });

  it('a throttled failure that is not retryable is an ordinary failure', async () => {
    const t = await setup({ defaultMaxAttempts: 1 });
    const job = await t.submit(TRUNCATE, truncateInput(303));
    const held = await t.claimAs(t.exec.a, job.id);
    const r = await t.op('POST', `/v1/jobs/${job.id}/fail`, {
      lease_token: held.lease!.token,
      failure: { code: 'AWS_ACCESS_DENIED', message: 'no', retryable: false, throttled: true },
    });
    expect((r.body.job as Job).state).toBe('failed');
  });
});

describe('batched report', () => {
  it('rolls back an entry whose follow-up the store refuses, alone: invalid, still running with its lease, no follow-up; the other entries commit', async () => {
    const t = await setup({
      followUps: (parent) =>
        parent.type === TRUNCATE
          ? [
              // A valid follow-up first, so a partial commit would leave a job behind.
              { type: 'datasets_sample', company_id: parent.company_id, input: { dataset_id: 1 } } as any,
              { type: 'no_such_type', company_id: parent.company_id, input: {} } as any,
            ]
          : [],
    });
    const truncate = await t.submit(TRUNCATE, truncateInput(401));
    const del1 = await t.submit(DELETE_TABLE, {
      external_id: 'company_56.dataset_402',
      is_narrative_managed: false,
    });
    const del2 = await t.submit(DELETE_TABLE, {
      external_id: 'company_56.dataset_403',
      is_narrative_managed: false,
    });
    const claimed = (await t.pollAs(t.exec.a, { job_types: [TRUNCATE, DELETE_TABLE], capacity: 3 })).claimed;
    expect(claimed.map((j) => j.id)).toEqual([truncate.id, del1.id, del2.id]);
    const [a, b, d] = claimed as [Job, Job, Job];

    const results = await t.report(t.exec.a, [
      { id: a.id, lease_token: a.lease!.token, outcome: 'complete', result: truncateResult },
      { id: b.id, lease_token: b.lease!.token, outcome: 'complete', result: { type: DELETE_TABLE } },
      {
        id: d.id,
        lease_token: d.lease!.token,
        outcome: 'fail',
        failure: { code: 'BOOM', message: 'x', retryable: false },
      },
    ]);
    expect(results.map((x) => [x.id, x.status])).toEqual([
      [a.id, 'invalid'],
      [b.id, 'ok'],
      [d.id, 'ok'],
    ]);
    expect(results[0]!.error).toBeDefined();

    const first = await t.get(a.id);
    expect(first).toMatchObject({
      state: 'running',
      executor: t.exec.a,
      lease: { token: a.lease!.token, expires_at: a.lease!.expires_at },
      result: null,
      ended_at: null,
    });
    expect(await t.get(b.id)).toMatchObject({ state: 'completed', result: { type: DELETE_TABLE } });
    expect((await t.get(d.id)).state).toBe('failed');

    const all = (await t.user<{ jobs: Job[] }>('GET', '/v1/jobs?per_page=100')).body.jobs;
    expect(all.map((j) => j.id).sort()).toEqual([truncate.id, del1.id, del2.id].sort());
    // The lease survived the rolled-back entry: it still renews.
    const renewal = await t.pollAs(t.exec.a, { held: [{ id: a.id, lease_token: a.lease!.token }] });
    expect(renewal).toMatchObject({ lost: [], cancel: [] });
  });
});
