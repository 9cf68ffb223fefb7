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
  waitFor,
} from '../helpers.ts';

let cp: TestControlPlane | undefined;
afterEach(async () => {
  await cp?.close();
  cp = undefined;
});
async function setup(overrides: Parameters<typeof startTestControlPlane>[0] = {}) {
  cp = await startTestControlPlane(overrides);
  return clients(cp);
}

describe('claims', () => {
  it('claims oldest first, only the types asked for, only for the token’s data plane', async () => {
    const c = await setup();
    const a = await c.submit(TRUNCATE, truncateInput(1));
    const b = await c.submit(TRUNCATE, truncateInput(2));
    await c.submit('datasets_sample', { dataset_id: 3 });
    await c.user('POST', '/v1/jobs', {
      type: TRUNCATE,
      company_id: 1,
      data_plane_id: cp!.otherDataPlaneId,
      input: truncateInput(),
    });
    const anyPlane = await c.user<Job>('POST', '/v1/jobs', {
      type: TRUNCATE,
      company_id: 1,
      input: truncateInput(),
    });
    const r = await c.poll({ capacity: 10 });
    expect(r.status).toBe(200);
    expect(r.body.claimed.map((j) => j.id)).toEqual([a.id, b.id, anyPlane.body.id]);
    expect(r.body.lease_ttl_ms).toBeGreaterThan(0);
    const claimed = r.body.claimed[2]!;
    expect(claimed).toMatchObject({ state: 'running', executor: 'test-executor', attempt: 1 });
    expect(claimed.data_plane_id).toBe(cp!.dataPlaneId);
    expect(claimed.lease?.token).toMatch(/^[0-9a-f]{32}$/);
    expect(claimed.started_at).not.toBeNull();
  });

  it('renews held leases and records progress in the same poll', async () => {
    const c = await setup({ leaseTtlMs: 5_000 });
    const job = await c.submit(TRUNCATE, truncateInput());
    const claimed = await c.claim(job.id);
    const before = Date.parse(claimed.lease!.expires_at);
    await waitFor(() => Date.now() > before - 5_000 + 20);
    await c.poll({
      capacity: 0,
      held: [{ id: job.id, lease_token: claimed.lease!.token, progress: { fraction: 0.5 } }],
    });
    const after = (await c.user<Job>('GET', `/v1/jobs/${job.id}`)).body;
    expect(Date.parse(after.lease!.expires_at)).toBeGreaterThan(before);
    expect(after.progress).toEqual({ fraction: 0.5 });
  });

  it('stores checkpoints and progress from the holder', async () => {
    const c = await setup();
    const job = await c.submit(TRUNCATE, truncateInput());
    const claimed = await c.claim(job.id);
    const r = await c.op('POST', `/v1/jobs/${job.id}/checkpoint`, {
      lease_token: claimed.lease!.token,
      checkpoint: { query_id: 'q-1' },
      progress: { fraction: 0.25, message: 'scanning' },
    });
    expect(r.status).toBe(200);
    expect(r.body.job).toMatchObject({ checkpoint: { query_id: 'q-1' }, progress: { fraction: 0.25 } });
  });
});

describe('completion and failure', () => {
  it('refuses a result that does not match the type with 422 and leaves the job running', async () => {
    const c = await setup();
    const job = await c.submit(TRUNCATE, truncateInput());
    const claimed = await c.claim(job.id);
    const r = await c.op('POST', `/v1/jobs/${job.id}/complete`, {
      lease_token: claimed.lease!.token,
      result: { type: 'something_else' },
    });
    expect(r.status).toBe(422);
    expect(r.body.error.details.issues[0].path).toBe('result.type');
    expect((await c.user<Job>('GET', `/v1/jobs/${job.id}`)).body.state).toBe('running');
  });

  it('retries a retryable failure after a backoff, then succeeds on the next attempt', async () => {
    const c = await setup({ retryBaseMs: 300 });
    const job = await c.submit(TRUNCATE, truncateInput());
    const first = await c.claim(job.id);
    await c.op('POST', `/v1/jobs/${job.id}/checkpoint`, {
      lease_token: first.lease!.token,
      checkpoint: { run: 'a' },
    });
    const failed = await c.op('POST', `/v1/jobs/${job.id}/fail`, {
      lease_token: first.lease!.token,
      failure: { code: 'THROTTLED', message: 'slow down', retryable: true, details: { status: 429 } },
    });
    expect(failed.body.job).toMatchObject({
      state: 'pending',
      executor: null,
      lease: null,
      checkpoint: { run: 'a' },
    });
    expect(failed.body.job.failures).toMatchObject([
      { attempt: 1, executor: 'test-executor', code: 'THROTTLED', retryable: true, details: { status: 429 } },
    ]);
    const notBefore = Date.parse(failed.body.job.not_before);
    expect(notBefore).toBeGreaterThan(Date.now());
    // Claimable only after the backoff: a poll now claims nothing, a long poll wakes at the backoff.
    const early = await c.poll();
    expect(early.body.claimed).toEqual([]);
    const woke = await c.poll({ wait_ms: 10_000 });
    expect(woke.body.claimed.map((j) => j.id)).toEqual([job.id]);
    expect(Date.now()).toBeGreaterThanOrEqual(notBefore);
    const second = woke.body.claimed[0]!;
    expect(second.attempt).toBe(2);
    const done = await c.op('POST', `/v1/jobs/${job.id}/complete`, {
      lease_token: second.lease!.token,
      result: truncateResult,
    });
    expect(done.body.job).toMatchObject({ state: 'completed', result: truncateResult, attempt: 2 });
  });

  it('fails for good on a non-retryable failure, or once attempts are spent', async () => {
    const c = await setup({ retryBaseMs: 0 });
    const job = await c.submit(TRUNCATE, truncateInput());
    const claimed = await c.claim(job.id);
    const r = await c.op('POST', `/v1/jobs/${job.id}/fail`, {
      lease_token: claimed.lease!.token,
      failure: { code: 'INVALID_INPUT', message: 'bad', retryable: false },
    });
    expect(r.body.job.state).toBe('failed');
    expect(r.body.job.ended_at).not.toBeNull();

    const two = await c.submit(TRUNCATE, truncateInput(), { max_attempts: 2 });
    for (let attempt = 1; attempt <= 2; attempt++) {
      const held = await c.claim(two.id);
      expect(held.attempt).toBe(attempt);
      await c.op('POST', `/v1/jobs/${two.id}/fail`, {
        lease_token: held.lease!.token,
        failure: { code: 'FLAKY', message: `attempt ${attempt}`, retryable: true },
      });
    }
    const final = (await c.user<Job>('GET', `/v1/jobs/${two.id}`)).body;
    expect(final.state).toBe('failed');
    expect(final.failures).toHaveLength(2);
  });

  it('ends a job whose cancellation was requested as cancelled on fail or release', async () => {
    const c = await setup();
    for (const how of ['fail', 'release'] as const) {
      const job = await c.submit(TRUNCATE, truncateInput());
      const claimed = await c.claim(job.id);
      await c.user('POST', `/v1/jobs/${job.id}/cancel`);
      const body =
        how === 'fail'
          ? { lease_token: claimed.lease!.token, failure: { code: 'X', message: 'x', retryable: true } }
          : { lease_token: claimed.lease!.token, reason: 'drain' };
      const r = await c.op('POST', `/v1/jobs/${job.id}/${how}`, body);
      expect(r.body.job.state).toBe('cancelled');
    }
  });
});

describe('release', () => {
  it('hands a job back: pending at once, attempt given back, checkpoint kept', async () => {
    const c = await setup();
    const job = await c.submit(TRUNCATE, truncateInput());
    const claimed = await c.claim(job.id);
    await c.op('POST', `/v1/jobs/${job.id}/checkpoint`, {
      lease_token: claimed.lease!.token,
      checkpoint: { run: 'r1' },
    });
    const r = await c.op('POST', `/v1/jobs/${job.id}/release`, {
      lease_token: claimed.lease!.token,
      reason: 'drain',
    });
    expect(r.body.job).toMatchObject({
      state: 'pending',
      attempt: 0,
      executor: null,
      lease: null,
      checkpoint: { run: 'r1' },
    });
    const again = await c.claim(job.id);
    expect(again.attempt).toBe(1);
    expect(again.checkpoint).toEqual({ run: 'r1' });
  });
});

describe('lease expiry', () => {
  it('puts a running job back to pending with LEASE_EXPIRED, keeping the checkpoint', async () => {
    const c = await setup({ leaseTtlMs: 200 });
    const job = await c.submit(TRUNCATE, truncateInput());
    const claimed = await c.claim(job.id);
    await c.op('POST', `/v1/jobs/${job.id}/checkpoint`, {
      lease_token: claimed.lease!.token,
      checkpoint: { run: 'x' },
    });
    const expired = await waitFor(async () => {
      const j = (await c.user<Job>('GET', `/v1/jobs/${job.id}`)).body;
      return j.state === 'pending' ? j : undefined;
    });
    expect(expired.failures).toMatchObject([{ code: 'LEASE_EXPIRED', attempt: 1, retryable: true }]);
    expect(expired.checkpoint).toEqual({ run: 'x' });
    const late = await c.op('POST', `/v1/jobs/${job.id}/complete`, {
      lease_token: claimed.lease!.token,
      result: truncateResult,
    });
    expect(late.status).toBe(410);
  });

  it('cancels a job in pending_cancellation whose lease expires', async () => {
    const c = await setup({ leaseTtlMs: 200 });
    const job = await c.submit(TRUNCATE, truncateInput());
    await c.claim(job.id);
    await c.user('POST', `/v1/jobs/${job.id}/cancel`);
    const j = await waitFor(async () => {
      const r = (await c.user<Job>('GET', `/v1/jobs/${job.id}`)).body;
      return r.state === 'cancelled' ? r : undefined;
    });
    expect(j.ended_at).not.toBeNull();
  });

  it('fails a job whose lease expires on its last attempt', async () => {
    const c = await setup({ leaseTtlMs: 200 });
    const job = await c.submit(TRUNCATE, truncateInput(), { max_attempts: 1 });
    await c.claim(job.id);
    const j = await waitFor(async () => {
      const r = (await c.user<Job>('GET', `/v1/jobs/${job.id}`)).body;
      return r.state === 'failed' ? r : undefined;
    });
    expect(j.failures.map((f) => f.code)).toEqual(['LEASE_EXPIRED']);
  });
});

describe('batched report', () => {
  it('applies each entry and answers ok, lost or invalid per job', async () => {
    const c = await setup();
    const jobs = [];
    for (let i = 0; i < 5; i++) jobs.push(await c.submit(TRUNCATE, truncateInput(i)));
    const claimed = (await c.poll({ capacity: 5 })).body.claimed;
    expect(claimed).toHaveLength(5);
    const [a, b, d, e, f] = claimed as [Job, Job, Job, Job, Job];
    await c.user('POST', `/v1/jobs/${d.id}/cancel`);
    const r = await c.op('POST', '/v1/operators/report', {
      executor: 'test-executor',
      reports: [
        { id: a.id, lease_token: a.lease!.token, outcome: 'complete', result: truncateResult },
        {
          id: b.id,
          lease_token: b.lease!.token,
          outcome: 'fail',
          failure: { code: 'BOOM', message: 'x', retryable: false },
        },
        { id: d.id, lease_token: d.lease!.token, outcome: 'cancelled' },
        { id: e.id, lease_token: 'stale-token', outcome: 'release', reason: 'drain' },
        { id: f.id, lease_token: f.lease!.token, outcome: 'complete', result: { wrong: true } },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.body.results.map((x: { status: string }) => x.status)).toEqual([
      'ok',
      'ok',
      'ok',
      'lost',
      'invalid',
    ]);
    expect(r.body.results[4].error.code).toBe('validation_failed');
    const states = await Promise.all(
      [a, b, d, e, f].map(async (j) => (await c.user<Job>('GET', `/v1/jobs/${j.id}`)).body.state),
    );
    expect(states).toEqual(['completed', 'failed', 'cancelled', 'running', 'running']);
  });
});

describe('internal follow-up jobs', () => {
  const forecastInput = (schedule: boolean) => ({
    as_of: null,
    details: {
      type: 'marketplace',
      company_constraint: { type: 'inclusion', company_ids: [56] },
      data_rules: {
        attributes: [
          { attribute_id: 1, fields: [{ field: 'unique_id.value', filter: null, exported: true }] },
        ],
      },
      pricing: { micro_cents_usd: 1000 },
    },
    dimensions: { distinct_counts: [], group_by: null },
    sample_rate_denominator: 128,
    schedule_unsampled_forecast: schedule,
  });
  const forecastResult = {
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

  it('enqueues forecast-internal with the same input after a forecast asking for it completes', async () => {
    const c = await setup();
    for (const schedule of [true, false]) {
      const job = await c.submit('forecast', forecastInput(schedule));
      const claimed = await c.claim(job.id, 'forecast');
      await c.op('POST', `/v1/jobs/${job.id}/complete`, {
        lease_token: claimed.lease!.token,
        result: forecastResult,
      });
      const internal = (
        await c.user<{ jobs: Job[] }>('GET', '/v1/jobs?type=forecast-internal')
      ).body.jobs.filter((j) => (j.request_source as { job_id?: string }).job_id === job.id);
      expect(internal).toHaveLength(schedule ? 1 : 0);
      if (schedule) {
        expect(internal[0]).toMatchObject({
          state: 'pending',
          input: forecastInput(true),
          company_id: 56,
          data_plane_id: cp!.dataPlaneId,
          request_source: { type: 'job', job_id: job.id, job_type: 'forecast' },
        });
      }
    }
  });

  it('enqueues the billing job for the dataset after a materialize-view completes, once', async () => {
    const c = await setup();
    const job = await c.submit('materialize-view', {
      nql: 'SELECT 1',
      compiled_select: 'SELECT 1',
      dataset_id: 1234,
      stats_enabled: false,
    });
    const claimed = await c.claim(job.id, 'materialize-view');
    const result = { dataset_id: 1234, snapshot_id: 42, recalculation_id: randomUUID() };
    await c.op('POST', `/v1/jobs/${job.id}/complete`, { lease_token: claimed.lease!.token, result });
    const billingType = 'materialized_views_collect_access_rules_billing_data';
    const billing = async () =>
      (await c.user<{ jobs: Job[] }>('GET', `/v1/jobs?type=${billingType}`)).body.jobs.filter(
        (j) => (j.input as { refresh_job_id: string }).refresh_job_id === job.id,
      );
    const [b] = await billing();
    expect(b).toMatchObject({
      input: { dataset_id: 1234, refresh_job_id: job.id },
      request_source: { type: 'job', job_id: job.id, job_type: 'materialize-view' },
    });
    expect((b!.input as { compiled_query: string }).compiled_query).toContain('company_56.dataset_1234');
    // A forced re-run that completes again does not enqueue a second billing job.
    await c.user('POST', `/v1/jobs/${job.id}/reschedule`, { force: true });
    const again = await c.claim(job.id, 'materialize-view');
    await c.op('POST', `/v1/jobs/${job.id}/complete`, { lease_token: again.lease!.token, result });
    expect(await billing()).toHaveLength(1);
  });
});
