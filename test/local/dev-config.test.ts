/**
 * `dev` builds its daemon and local data plane from the same variables as `run` (through the one
 * composition root), with its own defaults beneath them: DPO_CONCURRENCY defaults to 8 and can be
 * changed, DPO_LOCAL_THREADS reaches DuckDB, and a bad executor variable is a configuration error.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Job } from '../../src/contract/index.ts';
import { call } from '../helpers.ts';
import { type CliProcess, runCli } from '../support/processes.ts';

let child: CliProcess | undefined;
afterEach(() => {
  child?.kill('SIGKILL');
  child = undefined;
});

const devArgs = (dataDir: string) => [
  'dev',
  '--data-dir',
  dataDir,
  '--listen',
  '127.0.0.1:0',
  '--rows',
  '1000',
  '--no-examples',
];

interface Dev {
  proc: CliProcess;
  dataDir: string;
  url: string;
  metrics: string;
}

/** Starts `dev` without examples; returns its control plane and metrics URLs once it serves. */
async function startDev(env: NodeJS.ProcessEnv): Promise<Dev> {
  const dataDir = mkdtempSync(join(tmpdir(), 'dpo-dev-config-'));
  const proc = runCli(devArgs(dataDir), {
    DPO_METRICS_LISTEN: '127.0.0.1:0',
    ...env,
  });
  child = proc;
  await proc.waitForOutput(/Ctrl-C stops everything/, 60_000);
  const url = /control plane\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(proc.stdout())?.[1];
  const metrics = /metrics\s+(http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(proc.stdout())?.[1];
  if (!url || !metrics) throw new Error(`no control plane or metrics URL in:\n${proc.stdout()}`);
  return { proc, dataDir, url, metrics };
}

async function capacity(metricsUrl: string): Promise<number> {
  const text = await (await fetch(`${metricsUrl}/metrics`)).text();
  const m = /^dpo_capacity (\d+)/m.exec(text);
  if (!m) throw new Error(`no dpo_capacity in:\n${text}`);
  return Number(m[1]);
}

describe('dataplane-operator dev configuration', () => {
  it('runs 8 jobs at a time by default', async () => {
    const dev = await startDev({});
    expect(await capacity(dev.metrics)).toBe(8);
    dev.proc.kill('SIGINT');
    expect(await dev.proc.exited).toBe(0);
  }, 90_000);

  it('reads DPO_CONCURRENCY and the local executor variables, as `run` does', async () => {
    const dev = await startDev({ DPO_CONCURRENCY: '3', DPO_LOCAL_THREADS: '1' });
    expect(await capacity(dev.metrics)).toBe(3);
    // DuckDB's own setting, read by a job on the local data plane.
    const token = readFileSync(join(dev.dataDir, 'admin.token'), 'utf8').trim();
    const submitted = await call<Job>(dev.url, 'POST', '/v1/jobs', {
      token,
      body: {
        type: 'nql-forecast',
        company_id: 56,
        data_plane_id: 'dp-local',
        input: { nql: 'n/a', compiled_sql: "SELECT current_setting('threads') AS threads" },
      },
    });
    expect(submitted.status).toBe(201);
    const done = await call<Job>(dev.url, 'GET', `/v1/jobs/${submitted.body.id}/wait?timeout_ms=20000`, {
      token,
    });
    expect(done.body.state).toBe('completed');
    expect((done.body.result as { result: { rows: unknown[][] } }).result.rows).toEqual([[1]]);
    dev.proc.kill('SIGINT');
    expect(await dev.proc.exited).toBe(0);
  }, 90_000);

  it('exits 2 naming a bad variable of the local executor', async () => {
    const proc = runCli([...devArgs(mkdtempSync(join(tmpdir(), 'dpo-dev-config-'))), '--exit-when-done'], {
      DPO_METRICS_LISTEN: 'off',
      DPO_LOCAL_MEMORY_LIMIT: 'lots',
    });
    child = proc;
    expect(await proc.exited).toBe(2);
    expect(proc.stderr()).toContain('DPO_LOCAL_MEMORY_LIMIT');
  }, 60_000);
});
