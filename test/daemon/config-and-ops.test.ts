import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadDaemonConfig } from '../../src/daemon/config.ts';
import { startOpsServer } from '../../src/daemon/ops-server.ts';
import { buildRegistry } from '../../src/daemon/registry.ts';
import type { Executor } from '../../src/executor/index.ts';
import { ConfigError } from '../../src/lib/config.ts';
import { clients, startTestControlPlane, type TestControlPlane, TRUNCATE, waitFor } from '../helpers.ts';
import { startTestDaemon, type TestDaemon } from '../support/daemon.ts';

const fake = (name: string, jobTypes: string[]): Executor => ({ name, jobTypes, execute: async () => ({}) });

describe('daemon configuration', () => {
  it('reads the token from a file and parses lists, pairs and durations', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpo-cfg-'));
    writeFileSync(join(dir, 'token'), 'tok-from-file\n');
    const cfg = loadDaemonConfig({
      DPO_TOKEN_FILE: join(dir, 'token'),
      DPO_DATA_PLANE_ID: 'dp-1',
      DPO_EXECUTORS: 'local, snowflake',
      DPO_EXECUTOR_CONCURRENCY: 'local=4,snowflake=20',
      DPO_JOB_TIMEOUTS_MS: 'forecast=60000',
      DPO_METRICS_LISTEN: '0.0.0.0:9999',
    });
    expect(cfg.token).toBe('tok-from-file');
    expect(cfg.DPO_EXECUTORS).toEqual(['local', 'snowflake']);
    expect(cfg.DPO_EXECUTOR_CONCURRENCY).toEqual({ local: 4, snowflake: 20 });
    expect(cfg.DPO_JOB_TIMEOUTS_MS).toEqual({ forecast: 60_000 });
    expect(cfg.DPO_METRICS_LISTEN).toEqual({ host: '0.0.0.0', port: 9999 });
    expect(cfg.executorId).toMatch(/-\d+$/);
  });

  it('lists every issue by variable name, and refuses both a token and a token file', () => {
    try {
      loadDaemonConfig({ DPO_TOKEN: 'a', DPO_TOKEN_FILE: '/nonexistent', DPO_CONCURRENCY: 'many' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const text = (err as ConfigError).issues.join('\n');
      for (const v of [
        'DPO_DATA_PLANE_ID',
        'DPO_EXECUTORS',
        'DPO_CONCURRENCY',
        'DPO_TOKEN, DPO_TOKEN_FILE',
      ]) {
        expect(text).toContain(v);
      }
    }
  });
});

describe('executor registry', () => {
  it('refuses a type served by two enabled executors unless DPO_ROUTES names one', () => {
    const a = fake('local', ['datasets_sample', 'forecast']);
    const b = fake('snowflake', ['datasets_sample']);
    expect(() => buildRegistry([a, b], {})).toThrow(/datasets_sample.*local and snowflake/);
    const r = buildRegistry([a, b], { datasets_sample: 'snowflake' });
    expect(r.routes.get('datasets_sample')).toBe(b);
    expect(r.routes.get('forecast')).toBe(a);
    expect(() => buildRegistry([a, b], { datasets_sample: 'bedrock' })).toThrow(/DPO_ROUTES/);
    expect(() => buildRegistry([a, a], {})).toThrow(/enabled twice/);
  });
});

describe('health and metrics endpoints', () => {
  let cp: TestControlPlane | undefined;
  let d: TestDaemon | undefined;
  afterEach(async () => {
    await d?.stop();
    await cp?.close();
  });

  it('answers /healthz, /readyz and /metrics with job counters', async () => {
    cp = await startTestControlPlane();
    d = await startTestDaemon(cp);
    const ops = await startOpsServer({
      host: '127.0.0.1',
      port: 0,
      daemon: d.daemon,
      metrics: d.metrics,
      staleAfterMs: 60_000,
    });
    try {
      await waitFor(async () => (await fetch(`${ops.url}/readyz`)).ok, { what: 'readiness' });
      const health = await fetch(`${ops.url}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ok', state: 'running' });
      const c = clients(cp);
      const job = await c.submit(TRUNCATE, { dataset_id: 0 });
      await c.user('GET', `/v1/jobs/${job.id}/wait?timeout_ms=5000`);
      const text = await waitFor(async () => {
        const t = await (await fetch(`${ops.url}/metrics`)).text();
        return t.includes('outcome="complete"') ? t : undefined;
      });
      expect(text).toMatch(/dpo_jobs_claimed_total\{job_type="datasets_truncate_table",executor="test"\} 1/);
      expect(text).toMatch(
        /dpo_control_plane_request_seconds_count\{path="\/v1\/operators\/poll",outcome="ok"\} [1-9]/,
      );
      expect(text).not.toContain(cp.operatorToken);
      await d.daemon.drain(1_000);
      expect((await fetch(`${ops.url}/readyz`)).status).toBe(503);
    } finally {
      await ops.close();
    }
  });

  it('polls within the contract when its concurrency exceeds what one poll may claim', async () => {
    cp = await startTestControlPlane();
    d = await startTestDaemon(cp, { concurrency: 5_000 });
    const c = clients(cp);
    const job = await c.submit(TRUNCATE, { dataset_id: 0 });
    const done = (await c.user('GET', `/v1/jobs/${job.id}/wait?timeout_ms=10000`)).body;
    expect(done.state).toBe('completed');
    const errors = (await d.metrics.requests.get()).values.filter(
      (v) => v.labels.outcome === 'error' && v.metricName?.endsWith('_count'),
    );
    expect(errors).toEqual([]);
  });
});
