/**
 * The daemon as users run it: `dataplane-operator run` in a child process, against the bundled
 * control plane on 127.0.0.1, killed, drained and starved of its control plane.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Job } from '../../src/contract/index.ts';
import { clients, startTestControlPlane, type TestControlPlane, TRUNCATE, waitFor } from '../helpers.ts';
import { type CliProcess, runCli } from '../support/processes.ts';
import { Behaviour } from '../support/test-executor.ts';

const EXECUTOR = join(import.meta.dirname, '..', 'support', 'test-executor.ts');
let cp: TestControlPlane | undefined;
const procs: CliProcess[] = [];
afterEach(async () => {
  for (const p of procs.splice(0)) {
    p.kill('SIGKILL');
    await p.exited;
  }
  await cp?.close();
  cp = undefined;
});

function daemonEnv(target: TestControlPlane, dir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    DPO_CONTROL_PLANE_URL: target.url,
    DPO_TOKEN: target.operatorToken,
    DPO_DATA_PLANE_ID: target.dataPlaneId,
    DPO_EXECUTORS: EXECUTOR,
    DPO_METRICS_LISTEN: 'off',
    DPO_POLL_WAIT_MS: '5000',
    DPO_PROGRESS_INTERVAL_MS: '200',
    DPO_LOG_LEVEL: 'info',
    TEST_EXECUTOR_DIR: dir,
    ...extra,
  };
}

function startDaemon(target: TestControlPlane, dir: string, extra: NodeJS.ProcessEnv = {}): CliProcess {
  const p = runCli(['run'], daemonEnv(target, dir, extra));
  procs.push(p);
  return p;
}

const started = (dir: string, id: string) => existsSync(join(dir, `${id}.started`));
const startInfo = (dir: string, id: string) =>
  JSON.parse(readFileSync(join(dir, `${id}.started`), 'utf8')) as {
    attempt: number;
    checkpoint: unknown;
    pid: number;
  };

describe('dataplane-operator run', () => {
  it('reattaches from the checkpoint after a SIGKILL, once the lease expires', async () => {
    cp = await startTestControlPlane({ leaseTtlMs: 600 });
    const c = clients(cp);
    const dirA = mkdtempSync(join(tmpdir(), 'dpo-a-'));
    const a = startDaemon(cp, dirA);
    const job = await c.submit(TRUNCATE, { dataset_id: Behaviour.hold });
    await waitFor(() => started(dirA, job.id), { what: 'daemon A to start the job' });
    a.kill('SIGKILL');
    expect(await a.exited).toBe('SIGKILL');
    const expired = await waitFor(async () => {
      const j = (await c.user<Job>('GET', `/v1/jobs/${job.id}`)).body;
      return j.state === 'pending' ? j : undefined;
    });
    expect(expired.failures.map((f) => f.code)).toEqual(['LEASE_EXPIRED']);
    const dirB = mkdtempSync(join(tmpdir(), 'dpo-b-'));
    startDaemon(cp, dirB);
    await waitFor(() => started(dirB, job.id), { what: 'daemon B to reattach' });
    expect(startInfo(dirB, job.id)).toMatchObject({ attempt: 2, checkpoint: { run: `run-${job.id}-1` } });
    writeFileSync(join(dirB, `${job.id}.release`), '');
    const done = (await c.user<Job>('GET', `/v1/jobs/${job.id}/wait?timeout_ms=10000`)).body;
    expect(done.state).toBe('completed');
  });

  it('drains on SIGTERM: finished jobs reported, the rest released with checkpoints, exit 0', async () => {
    cp = await startTestControlPlane();
    const c = clients(cp);
    const dir = mkdtempSync(join(tmpdir(), 'dpo-drain-'));
    const p = startDaemon(cp, dir, { DPO_DRAIN_TIMEOUT_MS: '1500' });
    const finishing = await c.submit(TRUNCATE, { dataset_id: Behaviour.hold });
    const stuck = await c.submit(TRUNCATE, { dataset_id: Behaviour.hold });
    await waitFor(() => started(dir, finishing.id) && started(dir, stuck.id), { what: 'both jobs to start' });
    p.kill('SIGTERM');
    await p.waitForOutput(/daemon draining/);
    // Submitted during the drain: must not be claimed.
    const late = await c.submit(TRUNCATE, { dataset_id: Behaviour.complete });
    writeFileSync(join(dir, `${finishing.id}.release`), '');
    expect(await p.exited).toBe(0);
    const [f, s, l] = await Promise.all(
      [finishing, stuck, late].map(async (j) => (await c.user<Job>('GET', `/v1/jobs/${j.id}`)).body),
    );
    expect(f!.state).toBe('completed');
    expect(s).toMatchObject({ state: 'pending', attempt: 0, checkpoint: { run: `run-${stuck.id}-1` } });
    expect(l).toMatchObject({ state: 'pending', attempt: 0 });
    expect(JSON.parse(readFileSync(join(dir, `${stuck.id}.aborted`), 'utf8'))).toEqual({
      reason: 'shutdown',
    });
  });

  it('exits at once, releasing its jobs, on a second signal', async () => {
    cp = await startTestControlPlane();
    const c = clients(cp);
    const dir = mkdtempSync(join(tmpdir(), 'dpo-force-'));
    const p = startDaemon(cp, dir, { DPO_DRAIN_TIMEOUT_MS: '600000' });
    const job = await c.submit(TRUNCATE, { dataset_id: Behaviour.hold });
    await waitFor(() => started(dir, job.id));
    p.kill('SIGTERM');
    await p.waitForOutput(/daemon draining/);
    p.kill('SIGINT');
    expect(await p.exited).toBe(0);
    const j = (await c.user<Job>('GET', `/v1/jobs/${job.id}`)).body;
    expect(j).toMatchObject({ state: 'pending', attempt: 0 });
  });

  it('survives the control plane being down for 10 s and loses nothing', async () => {
    const dbDir = mkdtempSync(join(tmpdir(), 'dpo-outage-'));
    const dbPath = join(dbDir, 'cp.db');
    cp = await startTestControlPlane({ dbPath, leaseTtlMs: 30_000 });
    const c = clients(cp);
    const dir = mkdtempSync(join(tmpdir(), 'dpo-outage-exec-'));
    const p = startDaemon(cp, dir);
    const held = await c.submit(TRUNCATE, { dataset_id: Behaviour.hold });
    await waitFor(() => started(dir, held.id));
    const port = cp.port;
    const tokens = {
      adminToken: cp.adminToken,
      operatorToken: cp.operatorToken,
      dataPlaneId: cp.dataPlaneId,
    };
    await cp.close();
    const downSince = Date.now();
    // The job finishes while the control plane is away: its outcome must wait, not vanish.
    writeFileSync(join(dir, `${held.id}.release`), '');
    await p.waitForOutput(/poll failed; retrying/);
    await new Promise((r) => setTimeout(r, Math.max(0, 10_000 - (Date.now() - downSince)))); // the outage itself
    cp = await startTestControlPlane({
      dbPath,
      port,
      adminTokens: [tokens.adminToken],
      operatorTokens: [{ token: tokens.operatorToken, data_plane_id: tokens.dataPlaneId }],
    });
    Object.assign(cp, tokens);
    const c2 = clients(cp);
    const done = (await c2.user<Job>('GET', `/v1/jobs/${held.id}/wait?timeout_ms=20000`)).body;
    expect(done.state).toBe('completed');
    const after = await c2.submit(TRUNCATE, { dataset_id: Behaviour.complete });
    expect((await c2.user<Job>('GET', `/v1/jobs/${after.id}/wait?timeout_ms=20000`)).body.state).toBe(
      'completed',
    );
    expect(p.child.exitCode).toBeNull();
    void c;
  }, 60_000);

  it('exits 2 with every configuration issue named', async () => {
    const p = runCli(['run'], {
      DPO_CONTROL_PLANE_URL: 'not a url',
      DPO_CONCURRENCY: '-3',
      DPO_EXECUTOR_CONCURRENCY: 'local',
      DPO_TOKEN: 'secret-token-value',
    });
    procs.push(p);
    expect(await p.exited).toBe(2);
    const err = p.stderr();
    for (const name of [
      'DPO_CONTROL_PLANE_URL',
      'DPO_CONCURRENCY',
      'DPO_EXECUTOR_CONCURRENCY',
      'DPO_DATA_PLANE_ID',
      'DPO_EXECUTORS',
    ]) {
      expect(err).toContain(name);
    }
    expect(err).not.toContain('secret-token-value');
  });

  it('exits 3 with a clear message when the control plane refuses the token', async () => {
    cp = await startTestControlPlane();
    const dir = mkdtempSync(join(tmpdir(), 'dpo-token-'));
    const p = startDaemon(cp, dir, { DPO_TOKEN: 'wrong-token-value' });
    expect(await p.exited).toBe(3);
    expect(p.stderr()).toMatch(/refused the operator token \(401/);
    expect(p.stderr() + p.stdout()).not.toContain('wrong-token-value');
  });
});
