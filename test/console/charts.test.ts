/**
 * The console's server side beyond the event stream: the queue-over-time series (against a model of
 * the scenario that produced them), the page's metadata, the root redirect, HEAD and the favicon,
 * the operators' history, the event log's retention, and the page's weight.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import pino from 'pino';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { JOB_TYPES } from '../../src/catalogue/index.ts';
import { JOB_STATES } from '../../src/contract/index.ts';
import type { QueueSeries } from '../../src/control-plane/console/charts.ts';
import { STATIC } from '../../src/control-plane/console/routes.ts';
import {
  call,
  clients,
  startTestControlPlane,
  type TestControlPlane,
  TRUNCATE,
  waitFor,
} from '../helpers.ts';
import { type QueueScenario, queueScenario } from './scenarios.ts';

const open: TestControlPlane[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const cp of open.splice(0)) await cp.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Nearest-rank percentile, as the server computes it. */
const rank = (sorted: number[], p: number) => sorted[Math.ceil((p * sorted.length) / 100) - 1];

describe('the queue over time', () => {
  let s: QueueScenario;

  it('gives the depth by type at the end of every bucket, the completions and failures, and the pickup percentiles, as the scenario made them', async () => {
    s = await queueScenario();
    open.push(s.cp);
    const r = await s.c.user<QueueSeries>('GET', '/v1/console/queue?range=hour');
    expect(r.status).toBe(200);
    const q = r.body;
    expect(q.t).toHaveLength(60);
    expect(q.bucket_ms).toBe(60_000);
    const start = q.t[0]! - q.bucket_ms;

    // The depth, bucket by bucket, from the model of every change the scenario made.
    for (const cls of ['pending', 'running'] as const) {
      for (const type of [TRUNCATE, 'datasets_sample']) {
        const want = q.t.map((end) =>
          s.expected.changes
            .filter((ch) => ch.type === type && ch.at < end)
            .reduce((n, ch) => n + (ch.to === cls ? 1 : 0) - (ch.from === cls ? 1 : 0), 0),
        );
        expect(q[cls][type], `${cls} ${type}`).toEqual(want);
      }
    }
    // The last bucket is now.
    expect(q.pending[TRUNCATE]!.at(-1)).toBe(s.expected.pending[TRUNCATE]);
    expect(q.running.datasets_sample!.at(-1)).toBe(s.expected.running.datasets_sample);

    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    expect(sum(q.completed_per_min)).toBe(s.expected.completed);
    expect(sum(q.failed_per_min)).toBe(s.expected.failed);
    expect(s.expected.completed).toBe(48 * 4 - 4); // the last minute's claims are not ended yet
    expect(s.expected.failed).toBe(47);

    const byBucket = new Map<number, number[]>();
    for (const p of s.expected.pickups) {
      const b = Math.floor((p.at - start) / q.bucket_ms);
      byBucket.set(b, [...(byBucket.get(b) ?? []), p.wait]);
    }
    expect(byBucket.size).toBeGreaterThan(40);
    q.pickups.forEach((n, b) => {
      const waits = (byBucket.get(b) ?? []).sort((x, y) => x - y);
      expect(n).toBe(waits.length);
      expect(q.pickup_p50_ms[b]).toBe(waits.length ? rank(waits, 50) : null);
      expect(q.pickup_p95_ms[b]).toBe(waits.length ? rank(waits, 95) : null);
    });
  });

  it('counts a job submitted before the range as pending until its claim in the range', async () => {
    const base = Date.now();
    let clock = base - 90 * 60_000;
    const cp = await startTestControlPlane({ now: () => clock, leaseTtlMs: 3_600_000 });
    open.push(cp);
    const c = clients(cp);
    for (let i = 0; i < 3; i++) await c.submit(TRUNCATE, { dataset_id: i + 1 });
    clock = base - 30 * 60_000;
    const claimedAt = clock;
    expect((await c.poll({ capacity: 2 })).body.claimed).toHaveLength(2);
    clock = base;
    const q = (await c.user<QueueSeries>('GET', '/v1/console/queue?range=hour')).body;
    expect(q.pending[TRUNCATE]).toEqual(q.t.map((end) => (end <= claimedAt ? 3 : 1)));
    expect(q.running[TRUNCATE]).toEqual(q.t.map((end) => (end <= claimedAt ? 0 : 2)));
    // Waited 60 minutes for the claim: first claims are timed from the submission.
    expect(q.pickup_p50_ms.filter((p) => p !== null)).toEqual([60 * 60_000]);
  });

  it('buckets the day by 15 minutes and the week by 2 hours, ending at the count now; refuses another range', async () => {
    s = await queueScenario();
    open.push(s.cp);
    for (const [range, n, ms] of [
      ['day', 96, 900_000],
      ['week', 84, 7_200_000],
    ] as const) {
      const q = (await s.c.user<QueueSeries>('GET', `/v1/console/queue?range=${range}`)).body;
      expect(q.t).toHaveLength(n);
      expect(q.bucket_ms).toBe(ms);
      expect(q.pending[TRUNCATE]!.at(-1)).toBe(s.expected.pending[TRUNCATE]);
      expect(q.running[TRUNCATE]!.at(-1)).toBe(s.expected.running[TRUNCATE]);
      const perBucket = (xs: number[]) => xs.reduce((a, b) => a + b, 0) * (ms / 60_000);
      expect(perBucket(q.completed_per_min)).toBeCloseTo(s.expected.completed, 6);
      expect(perBucket(q.failed_per_min)).toBeCloseTo(s.expected.failed, 6);
      expect(q.pickups.reduce((a, b) => a + b, 0)).toBe(s.expected.pickups.length);
    }
    const bad = await s.c.user('GET', '/v1/console/queue?range=year');
    expect(bad.status).toBe(400);
    expect((await call(s.cp.url, 'GET', '/v1/console/queue')).status).toBe(401);
    expect((await call(s.cp.url, 'GET', '/v1/console/queue', { token: s.cp.operatorToken })).status).toBe(
      403,
    );
  });
});

describe('the page', () => {
  it("gives the filters' states and types from the contract and the catalogue", async () => {
    const cp = await startTestControlPlane();
    open.push(cp);
    const r = await clients(cp).user('GET', '/v1/console/meta');
    expect(r.body).toEqual({
      states: [...JOB_STATES],
      terminal_states: ['completed', 'cancelled', 'failed'],
      job_types: [...JOB_TYPES],
      queue_ranges: ['hour', 'day', 'week'],
    });
  });

  it('answers at the root with a redirect to /console, to HEAD /console, and with a favicon', async () => {
    const cp = await startTestControlPlane();
    open.push(cp);
    const root = await request(`${cp.url}/`);
    await root.body.dump();
    expect(root.statusCode).toBe(302);
    expect(root.headers.location).toBe('/console');
    const head = await request(`${cp.url}/console`, { method: 'HEAD' });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(await head.body.text()).toBe('');
    const ico = await request(`${cp.url}/favicon.ico`);
    await ico.body.dump();
    expect(ico.statusCode).toBe(302);
    const svg = await request(`${cp.url}${ico.headers.location}`);
    expect(svg.statusCode).toBe(200);
    expect(svg.headers['content-type']).toBe('image/svg+xml');
    expect(await svg.body.text()).toContain('<svg');
  });

  it('weighs under 60 kB gzipped, uPlot included, and serves every file its HTML and modules name', async () => {
    const cp = await startTestControlPlane();
    open.push(cp);
    let gz = 0;
    const sizes: Record<string, number> = {};
    const texts: Record<string, string> = {};
    for (const path of Object.keys(STATIC)) {
      const r = await request(`${cp.url}${path}`);
      expect(r.statusCode, path).toBe(200);
      const body = Buffer.from(await r.body.arrayBuffer());
      texts[path] = body.toString('utf8');
      sizes[path] = gzipSync(body).length;
      gz += sizes[path];
    }
    console.log(`console page: ${gz} bytes gzipped`, sizes);
    expect(gz).toBeLessThan(60_000);
    expect(sizes['/console/vendor/uPlot.iife.min.js']).toBeGreaterThan(20_000); // the library is counted
    // Every asset the page asks for is one the server serves.
    const named = new Set<string>();
    for (const m of texts['/console']!.matchAll(/(?:src|href)="(\/console\/[^"]+)"/g)) named.add(m[1]!);
    for (const [path, text] of Object.entries(texts)) {
      if (!path.endsWith('.js') || path.includes('/vendor/')) continue;
      for (const m of text.matchAll(/from '\.\/([a-z]+\.js)'/g)) named.add(`/console/${m[1]}`);
      for (const m of text.matchAll(/import\('\.\/([a-z]+\.js)'\)/g)) named.add(`/console/${m[1]}`);
      for (const m of text.matchAll(/'(\/console\/[^']+)'/g)) named.add(m[1]!); // loaded on demand
    }
    expect(named).toContain('/console/vendor/uPlot.iife.min.js');
    expect(named).toContain('/console/vendor/uPlot.min.css');
    expect(named.size).toBeGreaterThan(7);
    for (const path of named) expect(Object.keys(STATIC), path).toContain(path);
  });
});

describe('the operators', () => {
  it("keep a history of each one's held jobs and capacity", async () => {
    let clock = Date.now();
    const cp = await startTestControlPlane({ now: () => clock, leaseTtlMs: 3_600_000 });
    open.push(cp);
    const c = clients(cp);
    await c.poll({ capacity: 4 });
    const list = async () => (await c.user('GET', '/v1/operators')).body.operators[0].history;
    expect(await list()).toEqual({ t: [clock], held: [0], capacity: [4] });
    await c.submit(TRUNCATE, { dataset_id: 1 });
    await c.submit(TRUNCATE, { dataset_id: 2 });
    clock += 10_000;
    await c.poll({ capacity: 4 });
    const t1 = clock;
    expect(await list()).toEqual({ t: [t1 - 10_000, t1], held: [0, 2], capacity: [4, 4] });
    clock += 500; // within a second: replaces the last sample
    await c.poll({ capacity: 2 });
    expect(await list()).toEqual({ t: [t1 - 10_000, t1 + 500], held: [0, 2], capacity: [4, 2] });
  });
});

describe('the job event log', () => {
  const logSink = () => {
    const lines: string[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk, _e, done) {
          lines.push(String(chunk));
          done();
        },
      }),
    );
    return { lines, logger };
  };

  it('is pruned of entries older than 30 days by default, in chunks, keeping the jobs and the newer entries', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpo-retention-'));
    dirs.push(dir);
    const dbPath = join(dir, 'cp.db');
    let clock = Date.now() - 40 * 86_400_000;
    const first = await startTestControlPlane({ dbPath, now: () => clock });
    // 6,000 old entries (more than one chunk of 5,000), written through the store directly for speed.
    for (let i = 0; i < 6_000; i++) {
      first.store.submit(
        { type: TRUNCATE, company_id: 1, data_plane_id: null, input: { dataset_id: i + 1 } },
        { type: 'api_user', token_name: 'test' },
      );
    }
    clock = Date.now() - 10 * 86_400_000;
    const recent = await clients(first).submit(TRUNCATE, { dataset_id: 1 });
    const before = first.store.events(0, 10_000).length;
    expect(before).toBe(6_001);
    await first.close();

    clock = Date.now();
    const { lines, logger } = logSink();
    const second = await startTestControlPlane({ dbPath, now: () => clock, logger });
    open.push(second);
    await waitFor(() => lines.some((l) => l.includes('job event log pruned')), { what: 'the pruning' });
    const left = second.store.events(0, 10_000);
    expect(left.map((e) => e.job_id)).toEqual([recent.id]);
    expect(JSON.parse(lines.find((l) => l.includes('job event log pruned'))!)).toMatchObject({
      pruned: 6_000,
    });
    const jobs = await clients(second).user('GET', '/v1/jobs?per_page=10');
    expect(jobs.body.jobs).toHaveLength(10); // the jobs stay
  });

  it('keeps every entry with a retention of 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpo-retention-'));
    dirs.push(dir);
    const dbPath = join(dir, 'cp.db');
    let clock = Date.now() - 400 * 86_400_000;
    const first = await startTestControlPlane({ dbPath, now: () => clock });
    await clients(first).submit(TRUNCATE, { dataset_id: 1 });
    await first.close();
    clock = Date.now();
    const { lines, logger } = logSink();
    const second = await startTestControlPlane({ dbPath, now: () => clock, logger, eventLogRetentionMs: 0 });
    open.push(second);
    // A request after the start: the mount-time sweep (when there is one) has run by now.
    expect((await clients(second).user('GET', '/v1/jobs')).status).toBe(200);
    expect(second.store.events(0, 10)).toHaveLength(1);
    expect(lines.join('')).not.toContain('pruned');
  });
});
