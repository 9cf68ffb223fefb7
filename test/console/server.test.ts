/**
 * The console's server side, through real sockets: the job event stream and its Last-Event-ID replay,
 * a job's timeline, follow-ups and live log, the operators endpoint, and the queue metrics.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { OperatorClient } from '../../src/client/operator-client.ts';
import type { Job } from '../../src/contract/index.ts';
import { packageVersion } from '../../src/lib/version.ts';
import {
  call,
  clients,
  startTestControlPlane,
  type TestControlPlane,
  TRUNCATE,
  truncateInput,
  truncateResult,
} from '../helpers.ts';
import { openSse, type SseClient } from './sse-client.ts';

let cp: TestControlPlane | undefined;
const streams: SseClient[] = [];
afterEach(async () => {
  for (const s of streams.splice(0)) s.close();
  await cp?.close();
  cp = undefined;
});
async function setup(overrides: Parameters<typeof startTestControlPlane>[0] = {}) {
  cp = await startTestControlPlane(overrides);
  return clients(cp);
}
async function sse(path: string, token: string | undefined, lastEventId?: number) {
  const s = await openSse(`${cp!.url}${path}`, token, lastEventId === undefined ? {} : { lastEventId });
  streams.push(s);
  return s;
}

describe('the job event stream', () => {
  it('streams every change live, and a client reconnecting with Last-Event-ID misses no event', async () => {
    const c = await setup();
    const first = await sse('/v1/events', cp!.adminToken);
    expect(first.status).toBe(200);
    const [hello] = await first.waitFor(1, 'hello');
    expect(hello!.data.seq).toBe(hello!.id);

    const a = await c.submit(TRUNCATE, truncateInput(1));
    const claimed = await c.claim(a.id);
    await first.waitFor(2, 'job');
    first.close();
    const seen = first.frames.filter((f) => f.event === 'job');
    expect(seen.map((f) => [f.data.job_id, f.data.kind, f.data.state])).toEqual([
      [a.id, 'created', 'pending'],
      [a.id, 'claimed', 'running'],
    ]);
    expect(seen[1]!.data).toMatchObject({ executor: 'test-executor', attempt: 1, type: TRUNCATE });

    // While nobody listens: a checkpoint, a completion, a second job and its cancel.
    await c.op('POST', `/v1/jobs/${a.id}/checkpoint`, {
      lease_token: claimed.lease!.token,
      progress: { fraction: 0.5, message: 'half' },
    });
    await c.op('POST', `/v1/jobs/${a.id}/complete`, {
      lease_token: claimed.lease!.token,
      result: truncateResult,
    });
    const b = await c.submit(TRUNCATE, truncateInput(2));
    await c.user('POST', `/v1/jobs/${b.id}/cancel`, {});

    const again = await sse('/v1/events', cp!.adminToken, seen.at(-1)!.id!);
    const missed = await again.waitFor(4, 'job');
    expect(missed.map((f) => [f.data.job_id, f.data.kind])).toEqual([
      [a.id, 'progress'],
      [a.id, 'completed'],
      [b.id, 'created'],
      [b.id, 'cancelled'],
    ]);
    // Exactly the log's entries after the last one seen, in order, none twice.
    const all = cp!.store.events(0, 1000);
    expect([...seen, ...missed].map((f) => f.id)).toEqual(all.map((e) => e.seq));
    expect(again.frames.some((f) => f.event === 'hello')).toBe(false);

    // And it is live again after the replay.
    const d = await c.submit(TRUNCATE, truncateInput(3));
    const live = await again.waitFor(5, 'job');
    expect(live[4]!.data).toMatchObject({ job_id: d.id, kind: 'created' });
  });

  it('filters to one job with job_id', async () => {
    const c = await setup();
    const a = await c.submit(TRUNCATE, truncateInput(1));
    const one = await sse(`/v1/events?job_id=${a.id}`, cp!.adminToken, 0);
    await c.submit(TRUNCATE, truncateInput(2));
    await c.user('POST', `/v1/jobs/${a.id}/cancel`, {});
    const got = await one.waitFor(2, 'job');
    expect(got.map((f) => f.data.kind)).toEqual(['created', 'cancelled']);
    expect(new Set(got.map((f) => f.data.job_id))).toEqual(new Set([a.id]));
  });

  it('needs the admin token', async () => {
    await setup();
    expect((await sse('/v1/events', undefined)).status).toBe(401);
    expect((await sse('/v1/events', 'not-a-token')).status).toBe(401);
    expect((await sse('/v1/events', cp!.operatorToken)).status).toBe(403);
    const r = await call(cp!.url, 'GET', '/v1/operators', { token: cp!.operatorToken });
    expect(r.status).toBe(403);
  });
});

describe('the page', () => {
  it('is served without a token, carries no data, and allows only its own scripts and API', async () => {
    await setup();
    const html = await fetch(`${cp!.url}/console`);
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = html.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(html.headers.get('referrer-policy')).toBe('no-referrer');
    expect(await html.text()).not.toMatch(/<script>/);
    const js = await fetch(`${cp!.url}/console/app.js`);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const code = await js.text();
    expect(code).toContain('sessionStorage');
    expect(code).not.toContain('EventSource(');
    expect((await fetch(`${cp!.url}/console/other.js`)).status).toBe(404);
  });
});

describe('a job', () => {
  it('has a timeline of every change with its operator, and links to its follow-ups both ways', async () => {
    const c = await setup({
      followUps: (parent) =>
        parent.type === TRUNCATE && (parent.input as { dataset_id: number }).dataset_id === 7
          ? [{ type: 'datasets_sample', company_id: 56, input: { dataset_id: 7 } }]
          : [],
    });
    const a = await c.submit(TRUNCATE, truncateInput(7));
    const first = await c.claim(a.id);
    await c.op('POST', `/v1/jobs/${a.id}/fail`, {
      lease_token: first.lease!.token,
      failure: { code: 'BOOM', message: 'transient', retryable: true, retry_after_ms: 0 },
    });
    const second = await c.claim(a.id);
    await c.op('POST', `/v1/jobs/${a.id}/checkpoint`, {
      lease_token: second.lease!.token,
      checkpoint: { query_id: 'q-1' },
    });
    await c.op('POST', `/v1/jobs/${a.id}/complete`, {
      lease_token: second.lease!.token,
      result: truncateResult,
    });

    const t = await c.user<{ events: any[] }>('GET', `/v1/jobs/${a.id}/events`);
    expect(t.status).toBe(200);
    expect(t.body.events.map((e) => [e.kind, e.state, e.attempt])).toEqual([
      ['created', 'pending', 0],
      ['claimed', 'running', 1],
      ['retry_scheduled', 'pending', 1],
      ['claimed', 'running', 2],
      ['checkpoint', 'running', 2],
      ['completed', 'completed', 2],
    ]);
    expect(t.body.events[1].executor).toBe('test-executor');
    expect(t.body.events[2].data.failure).toMatchObject({ code: 'BOOM', message: 'transient' });
    expect(t.body.events[4].data).toEqual({ checkpoint: { query_id: 'q-1' } });

    const ups = await c.user<{ jobs: Job[] }>('GET', `/v1/jobs/${a.id}/follow-ups`);
    expect(ups.body.jobs.map((j) => j.type)).toEqual(['datasets_sample']);
    const child = ups.body.jobs[0]!;
    expect(child.request_source).toMatchObject({ type: 'job', job_id: a.id });
    expect((await c.user<{ jobs: Job[] }>('GET', `/v1/jobs/${child.id}/follow-ups`)).body.jobs).toEqual([]);
    expect((await c.user('GET', '/v1/jobs/00000000-0000-4000-8000-000000000000/events')).status).toBe(404);
    expect((await c.user('GET', '/v1/jobs/nope/follow-ups')).status).toBe(404);
  });

  it('streams its log live, and replays after Last-Event-ID', async () => {
    const c = await setup();
    const a = await c.submit(TRUNCATE, truncateInput(1));
    const job = await c.claim(a.id);
    const line = (msg: string) => ({ ts: new Date().toISOString(), level: 'info', msg });
    await c.op('POST', `/v1/jobs/${a.id}/logs`, {
      lease_token: job.lease!.token,
      lines: [line('one'), line('two')],
    });
    const s = await sse(`/v1/jobs/${a.id}/logs/stream`, cp!.adminToken);
    const two = await s.waitFor(2, 'log');
    expect(two.map((f) => f.data.msg)).toEqual(['one', 'two']);
    await c.op('POST', `/v1/jobs/${a.id}/logs`, { lease_token: job.lease!.token, lines: [line('three')] });
    const three = await s.waitFor(3, 'log');
    expect(three[2]!.data).toMatchObject({ msg: 'three', attempt: 1, executor: 'test-executor' });
    expect(three.map((f) => f.id)).toEqual(three.map((f) => f.data.seq));

    const resumed = await sse(`/v1/jobs/${a.id}/logs/stream`, cp!.adminToken, two[1]!.id!);
    expect((await resumed.waitFor(1, 'log')).map((f) => f.data.msg)).toEqual(['three']);
  });
});

describe('GET /v1/operators', () => {
  it("shows the version the daemon's own client sends", async () => {
    const c = await setup();
    const client = new OperatorClient({ url: cp!.url, token: cp!.operatorToken });
    try {
      await client.poll({
        executor: 'op-v',
        data_plane_id: cp!.dataPlaneId,
        job_types: [TRUNCATE],
        capacity: 0,
        wait_ms: 0,
        held: [],
      });
    } finally {
      await client.close();
    }
    const r = await c.user('GET', '/v1/operators');
    const seen = r.body.operators.find((o: { executor_id: string }) => o.executor_id === 'op-v');
    expect(packageVersion()).toMatch(/^\d+\.\d+\.\d+/);
    expect(seen?.version).toBe(packageVersion());
  });

  it('lists every operator seen, with what it polled for, the jobs it holds, its version, and marks the quiet ones stale', async () => {
    let clock = Date.parse('2026-11-29T12:00:00Z');
    const c = await setup({ now: () => clock, leaseTtlMs: 30_000 });
    const a = await c.submit(TRUNCATE, truncateInput(1));
    await c.submit(TRUNCATE, truncateInput(2));
    await call(cp!.url, 'POST', '/v1/operators/poll', {
      token: cp!.operatorToken,
      headers: { 'user-agent': 'dataplane-operator/1.2.3 (node 24)' },
      body: {
        executor: 'op-a',
        data_plane_id: cp!.dataPlaneId,
        job_types: [TRUNCATE],
        capacity: 1,
        wait_ms: 0,
        held: [],
      },
    });
    clock += 20_000;
    await call(cp!.url, 'POST', '/v1/operators/poll', {
      token: cp!.otherOperatorToken,
      body: {
        executor: 'op-b',
        data_plane_id: cp!.otherDataPlaneId,
        job_types: ['datasets_sample', TRUNCATE],
        capacity: 4,
        wait_ms: 0,
        held: [],
      },
    });
    const r = await c.user('GET', '/v1/operators');
    expect(r.status).toBe(200);
    expect(r.body.lease_ttl_ms).toBe(30_000);
    const byId = Object.fromEntries(r.body.operators.map((o: any) => [o.executor_id, o]));
    expect(byId['op-a']).toMatchObject({
      data_plane_id: cp!.dataPlaneId,
      job_types: [TRUNCATE],
      capacity: 1,
      jobs_held: 1,
      version: '1.2.3',
      last_poll_at: '2026-11-29T12:00:00.000Z',
      stale: false,
    });
    expect(byId['op-b']).toMatchObject({
      data_plane_id: cp!.otherDataPlaneId,
      job_types: ['datasets_sample', TRUNCATE],
      capacity: 4,
      jobs_held: 0,
      version: null,
      stale: false,
    });
    expect((await c.user<Job>('GET', `/v1/jobs/${a.id}`)).body.executor).toBe('op-a');

    // op-a has not polled for its wait (0) plus the lease TTL: stale. op-b polled 20 s later: not yet.
    clock += 10_001;
    const later = await c.user('GET', '/v1/operators');
    const stale = Object.fromEntries(later.body.operators.map((o: any) => [o.executor_id, o.stale]));
    expect(stale).toEqual({ 'op-a': true, 'op-b': false });
  });
});

describe('queue metrics on /metrics', () => {
  const sample = (text: string, name: string, labels: Record<string, string>): number | undefined => {
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`)) continue;
      const inner = line.slice(name.length + 1, line.indexOf('}'));
      const got = Object.fromEntries(
        [...inner.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]] as [string, string]),
      );
      if (
        Object.entries(labels).every(([k, v]) => got[k] === v) &&
        Object.keys(got).length === Object.keys(labels).length
      ) {
        return Number(line.slice(line.lastIndexOf(' ') + 1));
      }
    }
    return undefined;
  };

  it('gives pending and running by data plane and type, the oldest pending age, and claims, completions, failures and lease expiries', async () => {
    let clock = Date.parse('2026-11-29T12:00:00Z');
    const c = await setup({ now: () => clock, leaseTtlMs: 30_000 });
    const dp = cp!.dataPlaneId;
    const jobs = [];
    for (let i = 0; i < 4; i++) jobs.push(await c.submit(TRUNCATE, truncateInput(i)));
    clock += 5_000;
    await c.submit('datasets_sample', { dataset_id: 9 });
    await c.user('POST', '/v1/jobs', {
      type: TRUNCATE,
      company_id: 1,
      data_plane_id: 'dp-unknown',
      input: truncateInput(),
    });
    await c.user('POST', '/v1/jobs', { type: TRUNCATE, company_id: 1, input: truncateInput() });

    // Claim three: complete one, fail one for good, leave one to expire.
    const r = await c.poll({ capacity: 3 });
    const [done, bad, quiet] = r.body.claimed;
    await c.op('POST', `/v1/jobs/${done!.id}/complete`, {
      lease_token: done!.lease!.token,
      result: truncateResult,
    });
    await c.op('POST', `/v1/jobs/${bad!.id}/fail`, {
      lease_token: bad!.lease!.token,
      failure: { code: 'NOPE', message: 'no', retryable: false },
    });
    clock += 31_000;
    expect(cp!.store.expireLeases()).toBe(1);
    expect((await c.user<Job>('GET', `/v1/jobs/${quiet!.id}`)).body.state).toBe('pending');

    const res = await fetch(`${cp!.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    const q = (state: string, data_plane_id: string, type: string) =>
      sample(text, 'dpo_cp_queue_jobs', { state, data_plane_id, type });
    // Pending: jobs[3] and the expired one on dp, none running; the unknown data plane is 'other'.
    expect(q('pending', dp, TRUNCATE)).toBe(2);
    expect(q('running', dp, TRUNCATE)).toBeUndefined();
    expect(q('pending', dp, 'datasets_sample')).toBe(1);
    expect(q('pending', 'other', TRUNCATE)).toBe(1);
    expect(q('pending', 'any', TRUNCATE)).toBe(1);
    expect(sample(text, 'dpo_cp_oldest_pending_job_age_seconds', { data_plane_id: dp })).toBe(36);
    expect(sample(text, 'dpo_cp_oldest_pending_job_age_seconds', { data_plane_id: 'any' })).toBe(31);
    const l = { data_plane_id: dp, type: TRUNCATE };
    expect(sample(text, 'dpo_cp_job_claims_total', l)).toBe(3);
    expect(sample(text, 'dpo_cp_job_completions_total', l)).toBe(1);
    expect(sample(text, 'dpo_cp_job_failures_total', { ...l, final: 'true' })).toBe(1);
    expect(sample(text, 'dpo_cp_job_failures_total', { ...l, final: 'false' })).toBe(1);
    expect(sample(text, 'dpo_cp_lease_expiries_total', l)).toBe(1);

    // Claimed again: running now, and a second claim counted.
    await c.poll({ capacity: 1 });
    const after = await (await fetch(`${cp!.url}/metrics`)).text();
    expect(sample(after, 'dpo_cp_queue_jobs', { state: 'running', data_plane_id: dp, type: TRUNCATE })).toBe(
      1,
    );
    expect(sample(after, 'dpo_cp_job_claims_total', l)).toBe(4);
  });
});
