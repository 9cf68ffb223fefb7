/**
 * `dataplane-operator dev` as a user runs it: a child process that brings up the whole stack, runs
 * every example to completion, keeps serving, stops cleanly on SIGINT, and on a second start reuses
 * its data and its example jobs instead of duplicating them.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Job } from '../../src/contract/index.ts';
import { call, startTestControlPlane } from '../helpers.ts';
import { type CliProcess, runCli } from '../support/processes.ts';

const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples');
let child: CliProcess | undefined;
afterEach(() => {
  child?.kill('SIGKILL');
  child = undefined;
});

async function startDev(dataDir: string): Promise<{ proc: CliProcess; url: string }> {
  const proc = runCli(['dev', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--rows', '20000'], {
    DPO_METRICS_LISTEN: '127.0.0.1:0',
  });
  child = proc;
  await proc.waitForOutput(/all examples completed/, 60_000);
  await proc.waitForOutput(/Ctrl-C stops everything/);
  const url = /control plane\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(proc.stdout())?.[1];
  if (!url) throw new Error(`no control plane URL in:\n${proc.stdout()}`);
  return { proc, url };
}

describe('dataplane-operator dev', () => {
  it('runs every example to completion, serves, and stops cleanly on SIGINT; a second start does not duplicate', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'dpo-dev-'));
    const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThanOrEqual(10);

    const first = await startDev(dataDir);
    // Every example plus the two follow-ups the control plane creates (forecast-internal, billing).
    const total = files.length + 2;
    expect(first.proc.stdout()).toContain(`all examples completed: ${total} of ${total} completed`);
    expect(first.proc.stdout()).toMatch(/metrics\s+http:\/\/127\.0\.0\.1:\d+\/metrics/);

    // It keeps serving: a job submitted now runs on the local data plane.
    const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    const submitted = await call<Job>(first.url, 'POST', '/v1/jobs', {
      token,
      body: JSON.parse(readFileSync(join(EXAMPLES, '1-nql-forecast.json'), 'utf8')),
    });
    expect(submitted.status).toBe(201);
    const waited = await call<Job>(first.url, 'GET', `/v1/jobs/${submitted.body.id}/wait?timeout_ms=20000`, {
      token,
    });
    expect(waited.body.state).toBe('completed');
    expect((waited.body.result as { type: string }).type).toBe('Success');

    // A longer history than one page of the job list: the examples' jobs are no longer the newest.
    const more = 210;
    const ids: string[] = [];
    for (let i = 0; i < more; i++) {
      const r = await call<Job>(first.url, 'POST', '/v1/jobs', {
        token,
        body: {
          type: 'nql-forecast',
          company_id: 56,
          data_plane_id: 'dp-local',
          input: { nql: 'n/a', compiled_sql: `SELECT ${i} AS i` },
        },
      });
      ids.push(r.body.id);
    }
    for (const id of ids) {
      const w = await call<Job>(first.url, 'GET', `/v1/jobs/${id}/wait?timeout_ms=20000`, { token });
      expect(w.body.state).toBe('completed');
    }

    first.proc.kill('SIGINT');
    expect(await first.proc.exited).toBe(0);
    expect(first.proc.stdout()).toContain('stopped.');

    const second = await startDev(dataDir);
    expect(second.proc.stdout()).toMatch(/dataset 424: 20,000 rows \(reused\)/);
    const list = await call<{ jobs: Job[] }>(second.url, 'GET', '/v1/jobs?per_page=1000', { token });
    // The examples' jobs of the first run, its follow-ups and the jobs submitted by hand: no more.
    expect(list.body.jobs).toHaveLength(total + 1 + more);
    expect(second.proc.stdout()).toContain(`all examples completed: ${total} of ${total} completed`);
    second.proc.kill('SIGINT');
    expect(await second.proc.exited).toBe(0);
  }, 120_000);

  it('`run` with DPO_EXECUTORS=local serves the SQL-shaped types from its data directory', async () => {
    const cp = await startTestControlPlane();
    const dataDir = mkdtempSync(join(tmpdir(), 'dpo-run-local-'));
    try {
      const proc = runCli(['run'], {
        DPO_CONTROL_PLANE_URL: cp.url,
        DPO_TOKEN: cp.operatorToken,
        DPO_DATA_PLANE_ID: cp.dataPlaneId,
        DPO_EXECUTORS: 'local',
        DPO_DATA_DIR: dataDir,
        DPO_METRICS_LISTEN: 'off',
      });
      child = proc;
      await proc.waitForOutput(/"msg":"daemon running"/);
      const submitted = await call<Job>(cp.url, 'POST', '/v1/jobs', {
        token: cp.adminToken,
        body: {
          type: 'datasets_create_table',
          company_id: 7,
          data_plane_id: cp.dataPlaneId,
          input: { dataset_id: 1, compiled_sql: 'CREATE TABLE company_7.dataset_1 (id INTEGER)' },
        },
      });
      const done = await call<Job>(cp.url, 'GET', `/v1/jobs/${submitted.body.id}/wait?timeout_ms=20000`, {
        token: cp.adminToken,
      });
      expect(done.body.failures).toEqual([]);
      expect(done.body.state).toBe('completed');

      // A second daemon on the same data directory cannot open the warehouse: it says so and exits 1.
      const second = runCli(['run'], {
        DPO_CONTROL_PLANE_URL: cp.url,
        DPO_TOKEN: cp.operatorToken,
        DPO_DATA_PLANE_ID: cp.dataPlaneId,
        DPO_EXECUTORS: 'local',
        DPO_DATA_DIR: dataDir,
        DPO_METRICS_LISTEN: 'off',
      });
      expect(await second.exited).toBe(1);
      expect(second.stderr()).toMatch(
        /could not start: the local data plane at .* is in use by another process/,
      );

      proc.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
      // The warehouse is where the data directory says.
      expect(readdirSync(join(dataDir, 'local'))).toContain('warehouse.duckdb');
    } finally {
      await cp.close();
    }
  });
});
