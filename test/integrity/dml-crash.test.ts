/**
 * The reproduction, as a user hit it: a daemon (a child process, the local data plane)
 * commits an INSERT but cannot report it (the control plane is down), and is SIGKILLed. The control
 * plane comes back on its file; the next daemon is given the job again when the lease expires. It
 * must answer from the record committed with the INSERT: one row, not two, and the same result.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { LocalExecutor } from '../../executors/local/executor.ts';
import type { Job } from '../../src/contract/index.ts';
import { createTestContext, testJob } from '../../src/executor/testing.ts';
import { call, startTestControlPlane, type TestControlPlane, waitFor } from '../helpers.ts';
import { localConfig } from '../local/support.ts';
import { type CliProcess, runCli } from '../support/processes.ts';

const tmp = mkdtempSync(join(tmpdir(), 'dpo-dml-crash-'));
const children: CliProcess[] = [];
let cp: TestControlPlane | undefined;
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await cp?.close();
  rmSync(tmp, { recursive: true, force: true });
});

it('a DML committed but not reported is not applied again by the next daemon', async () => {
  const dir = join(tmp, 'local');
  const setup = new LocalExecutor(localConfig(dir, { threads: 1 }));
  await setup.execute(
    testJob('datasets_create_table', {
      dataset_id: 900,
      compiled_sql: 'CREATE TABLE company_56.dataset_900 (id INTEGER)',
    }),
    createTestContext().ctx,
  );
  await setup.close();

  const dbPath = join(tmp, 'cp.db');
  // Long enough that the daemon does not fence itself (at 3/4 TTL without renewal) mid-scan.
  const TTL = 5_000;
  cp = await startTestControlPlane({ dbPath, leaseTtlMs: TTL });
  const { port, adminToken, operatorToken, dataPlaneId } = cp;
  const daemon = () => {
    const p = runCli(['run'], {
      DPO_CONTROL_PLANE_URL: `http://127.0.0.1:${port}`,
      DPO_TOKEN: operatorToken,
      DPO_DATA_PLANE_ID: dataPlaneId,
      DPO_EXECUTORS: 'local',
      DPO_LOCAL_DIR: dir,
      DPO_LOCAL_THREADS: '1',
      DPO_DATA_DIR: tmp,
      DPO_METRICS_LISTEN: 'off',
      DPO_POLL_WAIT_MS: '300',
      DPO_REQUEST_TIMEOUT_MS: '1000',
      DPO_LOG_LEVEL: 'info',
    });
    children.push(p);
    return p;
  };
  const user = <T = unknown>(method: 'GET' | 'POST', path: string, body?: unknown) =>
    call<T>(`http://127.0.0.1:${port}`, method, path, { token: adminToken, body });

  const first = daemon();
  // One row, after a scan long enough (~1.5 s) to take the control plane down while it runs.
  const submitted = await user<Job>('POST', '/v1/jobs', {
    type: 'datasets_execute_dml',
    company_id: 56,
    data_plane_id: dataPlaneId,
    input: {
      dataset_id: 900,
      nql: 'INSERT INTO my_dataset SELECT 1',
      compiled_sql: `INSERT INTO company_56.dataset_900 SELECT 1
        WHERE (SELECT count(*) FROM range(100000000) t(i) WHERE hash(i) % 1000 = 7) >= 0`,
      nio_last_modified_at: '2026-11-29T12:00:00Z',
    },
  });
  expect(submitted.status, JSON.stringify(submitted.body)).toBe(201);
  const id = submitted.body.id;
  await first.waitForOutput(/"msg":"running DML"/, 30_000);
  await cp.close(); // the report of the commit can no longer get through
  cp = undefined;
  await first.waitForOutput(/"msg":"DML committed"/, 30_000);
  first.kill('SIGKILL');
  expect(await first.exited).toBe('SIGKILL');

  cp = await startTestControlPlane({
    dbPath,
    port,
    leaseTtlMs: TTL,
    adminTokens: [adminToken],
    operatorTokens: [{ token: operatorToken, data_plane_id: dataPlaneId }],
  });
  // The control plane never heard of the commit: the job is still running under the dead lease.
  expect((await user<Job>('GET', `/v1/jobs/${id}`)).body.state).toBe('running');

  const second = daemon();
  const done = await waitFor(
    async () => {
      const j = (await user<Job>('GET', `/v1/jobs/${id}`)).body;
      return ['completed', 'failed', 'cancelled'].includes(j.state) ? j : undefined;
    },
    { timeoutMs: 30_000, what: 'the job to end' },
  );
  expect(done.state).toBe('completed');
  expect(done.result).toEqual({ type: 'datasets_execute_dml', affected_rows: 1 });
  expect(second.stdout()).toMatch(/answering from its record/);
  second.kill('SIGTERM');
  expect(await second.exited).toBe(0);

  const check = new LocalExecutor(localConfig(dir, { threads: 1 }));
  try {
    expect(Number((await check.query('SELECT count(*) AS n FROM company_56.dataset_900'))[0]?.n)).toBe(1);
    const effects = await check.query(`SELECT job_type FROM _dpo.job_effects WHERE job_id = '${id}'`);
    expect(effects).toEqual([{ job_type: 'datasets_execute_dml' }]);
  } finally {
    await check.close();
  }
}, 90_000);
