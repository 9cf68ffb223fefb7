/**
 * The lease is the truth (issue 22), over HTTP on the store's injected clock: a write after the
 * lease's expiry is refused even before any sweep; internal follow-ups are keyed where no user can
 * write; a revocation is kept until its holder polls or for one TTL; `lost` says why; a reschedule
 * keeps the cleared checkpoint for the next holder to stop; a last attempt's expiry with remote work
 * is cleaned up like a cancel before the job fails; a parked poll says how long it was parked, and
 * is capped at half the TTL whenever its operator holds leases.
 *
 * No test waits out a real TTL: `clock` is the store's clock and the tests move it.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import type { Job } from '../../src/contract/index.ts';
import { JobStore } from '../../src/control-plane/store.ts';
import {
  clients,
  startTestControlPlane,
  type TestControlPlane,
  TRUNCATE,
  truncateInput,
  waitFor,
} from '../helpers.ts';

const TTL = 10_000;

let cp: TestControlPlane | undefined;
let clock = Date.now();

afterEach(async () => {
  await cp?.close();
  cp = undefined;
});

interface PollAnswer {
  claimed: Job[];
  cancel: string[];
  lost: string[];
  lost_reasons: Record<string, string>;
  lease_ttl_ms: number;
  parked_ms: number;
}

async function setup(overrides: Parameters<typeof startTestControlPlane>[0] = {}) {
  clock = Date.now();
  cp = await startTestControlPlane({ now: () => clock, leaseTtlMs: TTL, ...overrides });
  const running = cp;
  const c = clients(running);
  const suffix = randomUUID().slice(0, 8);
  const exec = { a: `exec-a-${suffix}`, b: `exec-b-${suffix}` };
  const pollAs = async (executor: string, body: Record<string, unknown> = {}): Promise<PollAnswer> => {
    const r = await c.op<PollAnswer>('POST', '/v1/operators/poll', {
      executor,
      data_plane_id: running.dataPlaneId,
      job_types: [TRUNCATE],
      capacity: 0,
      wait_ms: 0,
      held: [],
      ...body,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body;
  };
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
  const checkpoint = (job: Job, body: Record<string, unknown>) =>
    c.op('POST', `/v1/jobs/${job.id}/checkpoint`, { lease_token: job.lease!.token, ...body });
  return { ...c, cp: running, exec, pollAs, claimAs, get, checkpoint };
}

describe('an expired lease accepts no write, before any sweep', () => {
  it('refuses complete, checkpoint, fail and log writes 1 ms after expires_at with 410, and the job does not complete', async () => {
    const t = await setup();
    const job = await t.submit(TRUNCATE, truncateInput(2201));
    const held = await t.claimAs(t.exec.a, job.id);
    const token = held.lease!.token;
    expect(Date.parse(held.lease!.expires_at)).toBe(clock + TTL);

    // At expires_at the lease still holds (it ends after it, as the sweep decides).
    clock += TTL;
    expect((await t.checkpoint(held, { progress: { fraction: 0.5 } })).status).toBe(200);

    // One millisecond later, with no sweep and no poll in between: every write is refused.
    clock += 1;
    const complete = await t.op('POST', `/v1/jobs/${job.id}/complete`, {
      lease_token: token,
      result: { type: TRUNCATE },
    });
    expect(complete.status).toBe(410);
    expect(complete.body.error).toMatchObject({ code: 'gone', details: { reason: 'expired' } });
    expect((await t.checkpoint(held, { checkpoint: { run: 'r1' } })).status).toBe(410);
    expect(
      (
        await t.op('POST', `/v1/jobs/${job.id}/fail`, {
          lease_token: token,
          failure: { code: 'X', message: 'x', retryable: false },
        })
      ).status,
    ).toBe(410);
    expect(
      (
        await t.op('POST', `/v1/jobs/${job.id}/logs`, {
          lease_token: token,
          lines: [{ ts: new Date(clock).toISOString(), level: 'info', msg: 'late' }],
        })
      ).status,
    ).toBe(410);
    const report = await t.op('POST', '/v1/operators/report', {
      executor: t.exec.a,
      reports: [{ id: job.id, lease_token: token, outcome: 'complete', result: { type: TRUNCATE } }],
    });
    expect(report.body.results).toMatchObject([{ id: job.id, status: 'lost', error: { code: 'gone' } }]);

    const after = await t.get(job.id);
    expect(after).toMatchObject({ state: 'running', result: null, checkpoint: null });
    // The sweep then records the expiry as before.
    expect(t.cp.store.expireLeases()).toBe(1);
    expect(await t.get(job.id)).toMatchObject({ state: 'pending', failures: [{ code: 'LEASE_EXPIRED' }] });
  });
});

describe('internal follow-ups are keyed where no user can write', () => {
  it('refuses a user key in the internal namespace with 422, and a user key equal to the old internal key no longer suppresses the forecast follow-up', async () => {
    const t = await setup();
    const forecast = await t.submit('forecast', FORECAST_INPUT);

    const reserved = await t.user('POST', '/v1/jobs', {
      type: TRUNCATE,
      company_id: 56,
      data_plane_id: t.cp.dataPlaneId,
      input: truncateInput(2202),
      idempotency_key: `dpo-internal:forecast-internal:${forecast.id}`,
    });
    expect(reserved.status).toBe(422);
    expect(reserved.body.error.details.issues).toMatchObject([
      { path: 'idempotency_key', code: 'reserved_idempotency_key' },
    ]);

    // The repro of issue 22: a user's job under the key the follow-up used to take.
    await t.submit(TRUNCATE, truncateInput(2203), { idempotency_key: `forecast-internal:${forecast.id}` });

    const held = await t.claimAs(t.exec.a, forecast.id, 'forecast');
    const done = await t.op('POST', `/v1/jobs/${forecast.id}/complete`, {
      lease_token: held.lease!.token,
      result: FORECAST_RESULT,
    });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    const followUps = await t.user<{ jobs: Job[] }>('GET', `/v1/jobs/${forecast.id}/follow-ups`);
    expect(followUps.body.jobs).toHaveLength(1);
    expect(followUps.body.jobs[0]).toMatchObject({
      type: 'forecast-internal',
      idempotency_key: `dpo-internal:forecast-internal:${forecast.id}`,
      request_source: { type: 'job', job_id: forecast.id },
    });
  });

  it("bills a materialized view's refresh even when the company used the billing job's old key first", async () => {
    const t = await setup();
    const view = await t.submit('materialize-view', MATERIALIZE_INPUT);
    await t.submit(TRUNCATE, truncateInput(2204), { idempotency_key: `billing:${view.id}` });
    const refused = await t.user('POST', '/v1/jobs', {
      type: TRUNCATE,
      company_id: 56,
      input: truncateInput(2205),
      idempotency_key: `dpo-internal:billing:${view.id}`,
    });
    expect(refused.status).toBe(422);

    const held = await t.claimAs(t.exec.a, view.id, 'materialize-view');
    const done = await t.op('POST', `/v1/jobs/${view.id}/complete`, {
      lease_token: held.lease!.token,
      result: MATERIALIZE_RESULT,
    });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    const followUps = await t.user<{ jobs: Job[] }>('GET', `/v1/jobs/${view.id}/follow-ups`);
    expect(followUps.body.jobs.map((j) => j.type)).toEqual([
      'materialized_views_collect_access_rules_billing_data',
    ]);
  });
});

describe('revocations and why a lease was lost', () => {
  it('keeps a reschedule’s revocation until the holder polls (answering it once, as rescheduled) within one TTL', async () => {
    const t = await setup();
    const job = await t.submit(TRUNCATE, truncateInput(2206));
    await t.claimAs(t.exec.a, job.id);
    await t.user('POST', `/v1/jobs/${job.id}/reschedule`, {});
    clock += TTL - 1;
    const first = await t.pollAs(t.exec.a);
    expect(first.lost).toEqual([job.id]);
    expect(first.lost_reasons).toEqual({ [job.id]: 'rescheduled' });
    expect((await t.pollAs(t.exec.a)).lost).toEqual([]);
  });

  it('forgets a revocation after one TTL (the holder fenced itself by then): the limit the contract states', async () => {
    const t = await setup({ leaseTtlMs: 3_000 });
    const job = await t.submit(TRUNCATE, truncateInput(2207));
    await t.claimAs(t.exec.a, job.id);
    await t.user('POST', `/v1/jobs/${job.id}/reschedule`, {});
    // Issue 22's repro: the holder polls 32 s later (TTL 3 s). No sweep needed to forget it.
    clock += 32_000;
    expect(await t.pollAs(t.exec.a)).toMatchObject({ lost: [], lost_reasons: {} });
  });

  it('says expired for a listed lease that ran out, and claimed for one a peer holds now', async () => {
    const t = await setup();
    const job = await t.submit(TRUNCATE, truncateInput(2208));
    const held = await t.claimAs(t.exec.a, job.id);
    clock += TTL + 1;
    const expired = await t.pollAs(t.exec.a, { held: [{ id: job.id, lease_token: held.lease!.token }] });
    expect(expired.lost_reasons).toEqual({ [job.id]: 'expired' });

    await t.claimAs(t.exec.b, job.id);
    const claimed = await t.pollAs(t.exec.a, { held: [{ id: job.id, lease_token: held.lease!.token }] });
    expect(claimed).toMatchObject({ lost: [job.id], lost_reasons: { [job.id]: 'claimed' } });
  });
});

describe('a reschedule leaves no remote work behind', () => {
  it('keeps the cleared checkpoint in stale_checkpoints for the next holder, who clears it once the work is stopped', async () => {
    const t = await setup();
    const job = await t.submit(TRUNCATE, truncateInput(2209));
    const held = await t.claimAs(t.exec.a, job.id);
    expect((await t.checkpoint(held, { checkpoint: { run: 'r1' } })).status).toBe(200);
    const r = await t.user('POST', `/v1/jobs/${job.id}/reschedule`, {});
    expect(r.body.job).toMatchObject({
      state: 'pending',
      checkpoint: null,
      progress: null,
      result: null,
      attempt: 0,
      stale_checkpoints: [{ run: 'r1' }],
    });

    const next = await t.claimAs(t.exec.b, job.id);
    expect(next.stale_checkpoints).toEqual([{ run: 'r1' }]);
    // A checkpoint alone keeps them; clear_stale clears them.
    expect((await t.checkpoint(next, { checkpoint: { run: 'r2' } })).body.job.stale_checkpoints).toEqual([
      { run: 'r1' },
    ]);
    expect((await t.checkpoint(next, { clear_stale: true })).body.job).toMatchObject({
      checkpoint: { run: 'r2' },
      stale_checkpoints: [],
    });
  });

  it('a cancel of a pending job whose only checkpoint is stale waits for an operator to stop that work', async () => {
    const t = await setup();
    const job = await t.submit(TRUNCATE, truncateInput(2210));
    const held = await t.claimAs(t.exec.a, job.id);
    await t.checkpoint(held, { checkpoint: { run: 'r1' } });
    await t.user('POST', `/v1/jobs/${job.id}/reschedule`, {});
    const cancel = await t.user('POST', `/v1/jobs/${job.id}/cancel`, {});
    expect(cancel.body).toMatchObject({
      outcome: 'cancellation_requested',
      job: { state: 'pending_cancellation' },
    });
    const cleaner = await t.claimAs(t.exec.b, job.id);
    expect(cleaner).toMatchObject({ state: 'pending_cancellation', stale_checkpoints: [{ run: 'r1' }] });
    const done = await t.op('POST', `/v1/jobs/${job.id}/cancelled`, { lease_token: cleaner.lease!.token });
    expect(done.body.job).toMatchObject({ state: 'cancelled', stale_checkpoints: [] });
  });
});

describe("a last attempt's expiry is cleaned up like a cancel", () => {
  it('keeps the job claimable for cleanup when its checkpoint names remote work; confirmed stopped, it ends failed', async () => {
    const t = await setup();
    const job = await t.submit(TRUNCATE, truncateInput(2211), { max_attempts: 1 });
    const held = await t.claimAs(t.exec.a, job.id);
    await t.checkpoint(held, { checkpoint: { run: 'r1' } });
    clock += TTL + 1;
    t.cp.store.expireLeases();
    expect(await t.get(job.id)).toMatchObject({
      state: 'pending_cancellation',
      lease: null,
      checkpoint: { run: 'r1' },
      failures: [{ code: 'LEASE_EXPIRED', attempt: 1, retryable: false }],
      ended_at: null,
    });
    const cleaner = await t.claimAs(t.exec.b, job.id);
    expect(cleaner).toMatchObject({ state: 'pending_cancellation', attempt: 1 });
    const done = await t.op('POST', `/v1/jobs/${job.id}/cancelled`, { lease_token: cleaner.lease!.token });
    expect(done.body.job).toMatchObject({ state: 'failed', failures: [{ code: 'LEASE_EXPIRED' }] });
    expect(done.body.job.ended_at).not.toBeNull();
  });

  it('fails a last attempt without a checkpoint at once, as before; a user cancel during cleanup ends it cancelled', async () => {
    const t = await setup();
    const plain = await t.submit(TRUNCATE, truncateInput(2212), { max_attempts: 1 });
    await t.claimAs(t.exec.a, plain.id);
    clock += TTL + 1;
    t.cp.store.expireLeases();
    expect(await t.get(plain.id)).toMatchObject({ state: 'failed' });

    const remote = await t.submit(TRUNCATE, truncateInput(2213), { max_attempts: 1 });
    const held = await t.claimAs(t.exec.a, remote.id);
    await t.checkpoint(held, { checkpoint: { run: 'r1' } });
    clock += TTL + 1;
    t.cp.store.expireLeases();
    const cleaner = await t.claimAs(t.exec.b, remote.id);
    await t.user('POST', `/v1/jobs/${remote.id}/cancel`, { reason: 'no longer needed' });
    const done = await t.op('POST', `/v1/jobs/${remote.id}/cancelled`, { lease_token: cleaner.lease!.token });
    expect(done.body.job).toMatchObject({ state: 'cancelled', cancellation_reason: 'no longer needed' });
  });
});

describe('a parked poll', () => {
  it('says how long it was parked (on the store’s clock) before it claimed', async () => {
    const t = await setup();
    const parked = t.pollAs(t.exec.a, { capacity: 1, wait_ms: 30_000 });
    await waitParked(t.cp);
    clock += 19_000;
    const job = await t.submit(TRUNCATE, truncateInput(2214));
    const answer = await parked;
    expect(answer.claimed.map((j) => j.id)).toEqual([job.id]);
    expect(answer.parked_ms).toBe(19_000);
    expect(Date.parse(answer.claimed[0]!.lease!.expires_at)).toBe(clock + TTL);
    // An answer given at once was parked for 0.
    expect((await t.pollAs(t.exec.a)).parked_ms).toBe(0);
  });

  it('is capped at half the TTL when its operator holds leases it does not list', async () => {
    const t = await setup({ leaseTtlMs: 400 });
    const job = await t.submit(TRUNCATE, truncateInput(2215));
    await t.claimAs(t.exec.a, job.id);
    // Not listed, asking for a minute: answered (with nothing) by the cap, not at 60 s; the
    // test's own timeout (well under 60 s) is what fails on a server that parks the whole minute.
    const answer = await t.pollAs(t.exec.a, { held: [], wait_ms: 60_000 });
    expect(answer).toMatchObject({ claimed: [], lost: [], cancel: [] });
  }, 20_000);
});

/** Waits until a poll is parked at the control plane (a condition, not a sleep). */
async function waitParked(running: TestControlPlane, n = 1): Promise<void> {
  await waitFor(() => running.parkedPolls() >= n, { what: 'a parked poll' });
}

// --- the follow-up parents' inputs and results (valid under the catalogue's schemas) -------------

const FORECAST_INPUT = {
  as_of: null,
  details: {
    type: 'marketplace',
    company_constraint: { type: 'inclusion', company_ids: [56] },
    data_rules: {
      attributes: [{ attribute_id: 1, fields: [{ field: 'unique_id.value', filter: null, exported: true }] }],
    },
    pricing: { micro_cents_usd: 1000 },
  },
  dimensions: { distinct_counts: [], group_by: null },
  sample_rate_denominator: 128,
  schedule_unsampled_forecast: true,
};
const FORECAST_RESULT = {
  type: 'success',
  cost: 10,
  rows: 10,
  datasets: [{ dataset_id: 1, rows: 10, cost: 10 }],
  estimator: { type: 'sample', rate: 0.0078125 },
  scan_cost: {
    rows: 10,
    size: 100,
    sources: [{ rows: 10, size: 100, source: { type: 'dataset', dataset_id: 1 } }],
  },
};
const MATERIALIZE_INPUT = {
  nql: 'SELECT 1',
  compiled_select: 'SELECT 1',
  dataset_id: 1234,
  stats_enabled: false,
};
const MATERIALIZE_RESULT = { dataset_id: 1234, snapshot_id: 42, recalculation_id: randomUUID() };

describe('rules the contract section states once', () => {
  it('wakes the holder’s parked poll that does not list the job when its lease is revoked', async () => {
    // A TTL long enough that only the wake, not the TTL/2 cap, can answer within the test's timeout.
    const t = await setup({ leaseTtlMs: 600_000 });
    const job = await t.submit(TRUNCATE, truncateInput(2216));
    await t.claimAs(t.exec.a, job.id);
    const parked = t.pollAs(t.exec.a, { held: [], wait_ms: 60_000 });
    await waitParked(t.cp);
    await t.user('POST', `/v1/jobs/${job.id}/reschedule`, {});
    expect(await parked).toMatchObject({ lost: [job.id], lost_reasons: { [job.id]: 'rescheduled' } });
  }, 20_000);

  it('reschedule clears progress, result and attempt (a forced one too)', async () => {
    const t = await setup();
    const job = await t.submit(TRUNCATE, truncateInput(2217));
    const held = await t.claimAs(t.exec.a, job.id);
    await t.checkpoint(held, { progress: { fraction: 0.4, message: 'scanning' } });
    await t.op('POST', `/v1/jobs/${job.id}/complete`, {
      lease_token: held.lease!.token,
      result: { type: TRUNCATE },
    });
    const r = await t.user('POST', `/v1/jobs/${job.id}/reschedule`, { force: true });
    expect(r.body).toMatchObject({
      outcome: 'rescheduled',
      job: { state: 'pending', progress: null, result: null, attempt: 0, ended_at: null, started_at: null },
    });
  });

  it('keeps retry_after_ms a field of the request: the stored failure record does not carry it', async () => {
    const t = await setup();
    const job = await t.submit(TRUNCATE, truncateInput(2218));
    const held = await t.claimAs(t.exec.a, job.id);
    const r = await t.op('POST', `/v1/jobs/${job.id}/fail`, {
      lease_token: held.lease!.token,
      failure: { code: 'SLOW_DOWN', message: 'later', retryable: true, retry_after_ms: 4_321 },
    });
    expect(r.body.job.not_before).toBe(new Date(clock + 4_321).toISOString());
    expect(r.body.job.failures).toHaveLength(1);
    expect(r.body.job.failures[0]).not.toHaveProperty('retry_after_ms');
  });

  it('retries a cancel without an attempt limit: a max_attempts 1 job failing its cancel retryably stays pending_cancellation at attempt 1', async () => {
    const t = await setup({ retryBaseMs: 10, retryMaxMs: 10 });
    const job = await t.submit(TRUNCATE, truncateInput(2219), { max_attempts: 1 });
    let held = await t.claimAs(t.exec.a, job.id);
    await t.checkpoint(held, { checkpoint: { run: 'r1' } });
    await t.user('POST', `/v1/jobs/${job.id}/cancel`, {});
    for (let i = 0; i < 5; i++) {
      const r = await t.op('POST', `/v1/jobs/${job.id}/fail`, {
        lease_token: held.lease!.token,
        failure: { code: 'REMOTE_UNAVAILABLE', message: 'cannot reach the service', retryable: true },
      });
      expect(r.body.job).toMatchObject({ state: 'pending_cancellation', attempt: 1, lease: null });
      clock += 10;
      held = await t.claimAs(t.exec.b, job.id);
      expect(held).toMatchObject({ state: 'pending_cancellation', attempt: 1 });
    }
  });
});

describe('the store schema', () => {
  it('migrates a version 1 database in place: its jobs keep working and gain the new fields', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'dpo-migrate-')), 'cp.db');
    const opts = { path, leaseTtlMs: TTL, retryBaseMs: 10, retryMaxMs: 10, defaultMaxAttempts: 3 };
    const first = new JobStore(opts);
    const { job } = first.submit(
      { type: TRUNCATE, company_id: 56, data_plane_id: 'dp-m', input: truncateInput(2220) },
      { type: 'api_user' },
    );
    first.close();
    // Back to version 1's shape: the columns this version added are not there.
    const raw = new DatabaseSync(path);
    raw.exec(`ALTER TABLE jobs DROP COLUMN stale_checkpoints;
      ALTER TABLE jobs DROP COLUMN cleanup_ends_failed;
      ALTER TABLE revoked_leases DROP COLUMN reason;
      ALTER TABLE revoked_leases DROP COLUMN keep_until;
      UPDATE meta SET value = '1' WHERE key = 'schema_version';`);
    raw.close();
    const migrated = new JobStore(opts);
    try {
      expect(migrated.get(job.id)).toMatchObject({ state: 'pending', stale_checkpoints: [] });
      const out = migrated.poll({
        executor: 'm',
        dataPlaneId: 'dp-m',
        jobTypes: [TRUNCATE],
        capacity: 1,
        held: [],
      });
      expect(out.claimed.map((j) => j.id)).toEqual([job.id]);
      expect(migrated.reschedule(job.id, false).job.state).toBe('pending');
      expect(
        migrated.poll({ executor: 'm', dataPlaneId: 'dp-m', jobTypes: [], capacity: 0, held: [] }),
      ).toMatchObject({
        lost: [job.id],
        lostReasons: { [job.id]: 'rescheduled' },
      });
    } finally {
      migrated.close();
    }
  });
});
