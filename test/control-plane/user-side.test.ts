import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Job } from '../../src/contract/index.ts';
import {
  clients,
  startTestControlPlane,
  type TestControlPlane,
  TRUNCATE,
  truncateInput,
  truncateResult,
} from '../helpers.ts';

let cp: TestControlPlane;
let c: ReturnType<typeof clients>;
beforeEach(async () => {
  cp = await startTestControlPlane();
  c = clients(cp);
});
afterEach(() => cp.close());

describe('submission', () => {
  it('creates a pending job with the full job object', async () => {
    const r = await c.user<Job>('POST', '/v1/jobs', {
      type: TRUNCATE,
      company_id: 56,
      data_plane_id: cp.dataPlaneId,
      input: truncateInput(7),
      max_attempts: 5,
    });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      type: TRUNCATE,
      state: 'pending',
      company_id: 56,
      data_plane_id: cp.dataPlaneId,
      input: { dataset_id: 7 },
      result: null,
      executor: null,
      attempt: 0,
      max_attempts: 5,
      lease: null,
      checkpoint: null,
      failures: [],
      request_source: { type: 'api_user' },
      started_at: null,
      ended_at: null,
    });
    expect(Date.parse(r.body.created_at)).not.toBeNaN();
  });

  it('returns the existing job with 200 when the idempotency key is reused', async () => {
    const key = `key-${randomUUID()}`;
    const body = { type: TRUNCATE, company_id: 56, input: truncateInput(), idempotency_key: key };
    const first = await c.user<Job>('POST', '/v1/jobs', body);
    const second = await c.user<Job>('POST', '/v1/jobs', body);
    expect(first.status).toBe(201);
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    const otherCompany = await c.user<Job>('POST', '/v1/jobs', { ...body, company_id: 57 });
    expect(otherCompany.status).toBe(201);
    expect(otherCompany.body.id).not.toBe(first.body.id);
  });

  it('refuses input that does not match the type with 422 and issues naming the field', async () => {
    const r = await c.user('POST', '/v1/jobs', {
      type: TRUNCATE,
      company_id: 56,
      input: { dataset_id: 'abc' },
    });
    expect(r.status).toBe(422);
    expect(r.body.error.code).toBe('validation_failed');
    expect(r.body.error.details.issues[0].path).toBe('input.dataset_id');
  });

  it('refuses unknown and internal job types with 422', async () => {
    const unknown = await c.user('POST', '/v1/jobs', { type: 'nope', company_id: 56, input: {} });
    expect(unknown.status).toBe(422);
    expect(unknown.body.error.details.issues[0].code).toBe('unknown_job_type');
    for (const type of ['forecast-internal', 'materialized_views_collect_access_rules_billing_data']) {
      const r = await c.user('POST', '/v1/jobs', { type, company_id: 56, input: {} });
      expect(r.status).toBe(422);
      expect(r.body.error.details.issues[0].code).toBe('internal_job_type');
    }
  });
});

describe('listing', () => {
  it('filters by state, type and data plane and pages with a cursor, newest first', async () => {
    const dp = `dp-list-${randomUUID().slice(0, 8)}`;
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) {
      const r = await c.user<Job>('POST', '/v1/jobs', {
        type: TRUNCATE,
        company_id: 56,
        data_plane_id: dp,
        input: truncateInput(i),
      });
      ids.push(r.body.id);
    }
    await c.user('POST', `/v1/jobs/${ids[0]}/cancel`, {});
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = `/v1/jobs?data_plane_id=${dp}&per_page=10${cursor ? `&cursor=${cursor}` : ''}`;
      const page = await c.user<{ jobs: Job[]; next_cursor: string | null }>('GET', q);
      expect(page.status).toBe(200);
      seen.push(...page.body.jobs.map((j) => j.id));
      cursor = page.body.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].reverse());

    const cancelled = await c.user<{ jobs: Job[] }>('GET', `/v1/jobs?data_plane_id=${dp}&state=cancelled`);
    expect(cancelled.body.jobs.map((j) => j.id)).toEqual([ids[0]]);
    const pending = await c.user<{ jobs: Job[] }>(
      'GET',
      `/v1/jobs?data_plane_id=${dp}&state=pending,running&type=${TRUNCATE}&per_page=100`,
    );
    expect(pending.body.jobs).toHaveLength(24);
    const otherType = await c.user<{ jobs: Job[] }>(
      'GET',
      `/v1/jobs?data_plane_id=${dp}&type=datasets_sample`,
    );
    expect(otherType.body.jobs).toHaveLength(0);
  });
});

describe('cancel', () => {
  it('cancels a pending job at once with the reason', async () => {
    const job = await c.submit(TRUNCATE, truncateInput());
    const r = await c.user('POST', `/v1/jobs/${job.id}/cancel`, { reason: 'changed my mind' });
    expect(r.body.outcome).toBe('cancelled');
    expect(r.body.job).toMatchObject({ state: 'cancelled', cancellation_reason: 'changed my mind' });
    expect(r.body.job.ended_at).not.toBeNull();
  });

  it('asks the holder of a running job to cancel, and ends it when the holder confirms', async () => {
    const job = await c.submit(TRUNCATE, truncateInput());
    const claimed = await c.claim(job.id);
    const r = await c.user('POST', `/v1/jobs/${job.id}/cancel`);
    expect(r.body.outcome).toBe('cancellation_requested');
    expect(r.body.job.state).toBe('pending_cancellation');
    const again = await c.user('POST', `/v1/jobs/${job.id}/cancel`);
    expect(again.body.outcome).toBe('cancellation_requested');
    const poll = await c.poll({ capacity: 0, held: [{ id: job.id, lease_token: claimed.lease!.token }] });
    expect(poll.body.cancel).toEqual([job.id]);
    const done = await c.op('POST', `/v1/jobs/${job.id}/cancelled`, { lease_token: claimed.lease!.token });
    expect(done.status).toBe(200);
    expect(done.body.job.state).toBe('cancelled');
  });

  it('skips terminal jobs', async () => {
    const job = await c.submit(TRUNCATE, truncateInput());
    const claimed = await c.claim(job.id);
    await c.op('POST', `/v1/jobs/${job.id}/complete`, {
      lease_token: claimed.lease!.token,
      result: truncateResult,
    });
    const r = await c.user('POST', `/v1/jobs/${job.id}/cancel`);
    expect(r.body.outcome).toBe('skipped_terminal');
    expect(r.body.job.state).toBe('completed');
  });
});

describe('reschedule', () => {
  it('is a no-op on terminal jobs unless forced, and a forced one starts fresh', async () => {
    const job = await c.submit(TRUNCATE, truncateInput());
    const claimed = await c.claim(job.id);
    await c.op('POST', `/v1/jobs/${job.id}/checkpoint`, {
      lease_token: claimed.lease!.token,
      checkpoint: { q: 1 },
    });
    await c.op('POST', `/v1/jobs/${job.id}/complete`, {
      lease_token: claimed.lease!.token,
      result: truncateResult,
    });
    const skipped = await c.user('POST', `/v1/jobs/${job.id}/reschedule`);
    expect(skipped.body.outcome).toBe('skipped_terminal');
    expect(skipped.body.job.state).toBe('completed');
    const forced = await c.user('POST', `/v1/jobs/${job.id}/reschedule`, { force: true });
    expect(forced.body.outcome).toBe('rescheduled');
    expect(forced.body.job).toMatchObject({
      state: 'pending',
      executor: null,
      lease: null,
      checkpoint: null,
      result: null,
      attempt: 0,
      ended_at: null,
    });
  });

  it('fences the old holder of a running job: 410 on writes, listed as lost on its next poll', async () => {
    const job = await c.submit(TRUNCATE, truncateInput());
    const claimed = await c.claim(job.id);
    const token = claimed.lease!.token;
    const r = await c.user('POST', `/v1/jobs/${job.id}/reschedule`);
    expect(r.body.outcome).toBe('rescheduled');
    const stale = await c.op('POST', `/v1/jobs/${job.id}/complete`, {
      lease_token: token,
      result: truncateResult,
    });
    expect(stale.status).toBe(410);
    expect(stale.body.error.code).toBe('gone');
    const staleCheckpoint = await c.op('POST', `/v1/jobs/${job.id}/checkpoint`, { lease_token: token });
    expect(staleCheckpoint.status).toBe(410);
    const poll = await c.poll({ capacity: 0, held: [{ id: job.id, lease_token: token }] });
    expect(poll.body.lost).toEqual([job.id]);
    const reclaimed = await c.claim(job.id);
    expect(reclaimed.lease!.token).not.toBe(token);
    expect(reclaimed.attempt).toBe(1);
  });
});

describe('wait', () => {
  it('returns the job once it is terminal', async () => {
    const job = await c.submit(TRUNCATE, truncateInput());
    const claimed = await c.claim(job.id);
    const waiting = c.user<Job>('GET', `/v1/jobs/${job.id}/wait?timeout_ms=20000`);
    await c.op('POST', `/v1/jobs/${job.id}/complete`, {
      lease_token: claimed.lease!.token,
      result: truncateResult,
    });
    const r = await waiting;
    expect(r.status).toBe(200);
    expect(r.body.state).toBe('completed');
    expect(r.body.result).toEqual(truncateResult);
  });

  it('returns the job as it stands at the timeout', async () => {
    const job = await c.submit(TRUNCATE, truncateInput());
    const r = await c.user<Job>('GET', `/v1/jobs/${job.id}/wait?timeout_ms=50`);
    expect(r.status).toBe(200);
    expect(r.body.state).toBe('pending');
  });
});

describe('logs', () => {
  it('stores the holder’s lines with attempt and executor and reads them back after a cursor', async () => {
    const job = await c.submit(TRUNCATE, truncateInput());
    const claimed = await c.claim(job.id);
    const ts = new Date().toISOString();
    const lines = [
      { ts, level: 'info', msg: 'started' },
      { ts, level: 'warn', msg: 'slow' },
    ];
    const w = await c.op('POST', `/v1/jobs/${job.id}/logs`, { lease_token: claimed.lease!.token, lines });
    expect(w.body).toEqual({ appended: 2 });
    const r = await c.user('GET', `/v1/jobs/${job.id}/logs`);
    expect(r.body.lines).toMatchObject([
      { level: 'info', msg: 'started', attempt: 1, executor: 'test-executor' },
      { level: 'warn', msg: 'slow' },
    ]);
    const after = await c.user('GET', `/v1/jobs/${job.id}/logs?after=${r.body.lines[0].seq}`);
    expect(after.body.lines.map((l: { msg: string }) => l.msg)).toEqual(['slow']);
    const stale = await c.op('POST', `/v1/jobs/${job.id}/logs`, { lease_token: 'stale', lines });
    expect(stale.status).toBe(410);
  });
});
