/**
 * A daemon killed with SIGKILL around StartJobRun, then a second daemon: exactly one job run exists,
 * and the job completes. The daemons are real `dataplane-operator run` processes; EMR Serverless
 * and S3 are the fakes in this process.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Job } from '../../src/contract/index.ts';
import { type FakeEmr, startFakeEmr } from '../fakes/emr-serverless.ts';
import { type FakeS3, startFakeS3 } from '../fakes/s3.ts';
import { call, startTestControlPlane, type TestControlPlane, waitFor } from '../helpers.ts';
import { type CliProcess, runCli } from '../support/processes.ts';
import { emrEnv, fixture, seedResult } from './support.ts';

const GUARD = join(import.meta.dirname, '..', 'support', 'loopback-guard.ts');
let cleanup: Array<() => Promise<unknown> | unknown> = [];
let spawned: CliProcess[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
  // No daemon tried to leave loopback.
  for (const p of spawned) expect(p.stderr()).not.toContain('LOOPBACK GUARD');
  spawned = [];
});

function daemon(cp: TestControlPlane, emr: FakeEmr, s3: FakeS3): CliProcess {
  const p = runCli(['run'], {
    DPO_CONTROL_PLANE_URL: cp.url,
    DPO_TOKEN: cp.operatorToken,
    DPO_DATA_PLANE_ID: cp.dataPlaneId,
    DPO_EXECUTORS: 'emr-serverless',
    DPO_METRICS_LISTEN: 'off',
    DPO_POLL_WAIT_MS: '2000',
    DPO_PROGRESS_INTERVAL_MS: '200',
    ...emrEnv(emr, s3),
    AWS_ACCESS_KEY_ID: 'AKIAFAKEFAKEFAKEFAKE',
    AWS_SECRET_ACCESS_KEY: 'fake-secret-for-tests-only',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/nonexistent/aws-config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
  });
  spawned.push(p);
  cleanup.push(() => p.kill('SIGKILL'));
  return p;
}

async function setup(mode: 'auto' | 'manual', onStart?: (body: any) => Promise<void> | void) {
  const s3 = await startFakeS3();
  const emr = await startFakeEmr({ s3, mode, resultFor: seedResult, ...(onStart ? { onStart } : {}) });
  // A short lease: a killed daemon's job is claimable again a second later.
  const cp = await startTestControlPlane({ leaseTtlMs: 1_000 });
  cleanup.push(
    () => cp.close(),
    () => emr.close(),
    () => s3.close(),
  );
  const settle = async (id: string) => {
    const r = await call<Job>(cp.url, 'GET', `/v1/jobs/${id}/wait?timeout_ms=20000`, {
      token: cp.adminToken,
    });
    return r.body;
  };
  const submit = async () =>
    (
      await call<Job>(cp.url, 'POST', '/v1/jobs', {
        token: cp.adminToken,
        body: { type: 'costs', company_id: 56, data_plane_id: cp.dataPlaneId, input: fixture('costs.input') },
      })
    ).body;
  return { s3, emr, cp, settle, submit };
}

describe('SIGKILL of the daemon', () => {
  it('after StartJobRun and before the checkpoint: the second daemon gets the same run, exactly one exists', async () => {
    const tokens: string[] = [];
    let first: CliProcess | undefined;
    const { emr, s3, cp, settle, submit } = await setup('auto', async (body) => {
      tokens.push(body.clientToken);
      if (tokens.length === 1 && first) {
        // EMR has the request; the daemon dies before it can checkpoint the run id.
        first.kill('SIGKILL');
        await first.exited;
      }
    });
    first = daemon(cp, emr, s3);
    const job = await submit();
    await waitFor(() => tokens.length === 1 && first?.child.signalCode === 'SIGKILL', {
      what: 'the first daemon killed at StartJobRun',
      timeoutMs: 15_000,
    });
    expect(emr.runs.size).toBe(1);
    daemon(cp, emr, s3);
    const done = await settle(job.id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    expect(done.result).toEqual(fixture('costs.result'));
    expect(tokens).toHaveLength(2);
    expect(tokens[1]).toBe(tokens[0]);
    expect(emr.runs.size).toBe(1);
    expect(done.checkpoint).toMatchObject({ job_run_id: emr.onlyRun().id, submission: 1 });
    expect(done.failures.map((f) => f.code)).toEqual(['LEASE_EXPIRED']);
  }, 60_000);

  it('after the checkpoint: the second daemon reattaches to the running job run and completes it', async () => {
    const { emr, s3, cp, settle, submit } = await setup('manual');
    const first = daemon(cp, emr, s3);
    const job = await submit();
    const runId = await waitFor(
      async () =>
        (
          (await call<Job>(cp.url, 'GET', `/v1/jobs/${job.id}`, { token: cp.adminToken })).body
            .checkpoint as {
            job_run_id?: string;
          } | null
        )?.job_run_id,
      { what: 'the checkpointed run id', timeoutMs: 15_000 },
    );
    emr.setState(runId, 'RUNNING');
    first.kill('SIGKILL');
    await first.exited;
    const pollsBefore = emr.calls.GetJobRun;
    daemon(cp, emr, s3);
    await waitFor(() => emr.calls.GetJobRun > pollsBefore, {
      what: 'the second daemon polling the run',
      timeoutMs: 15_000,
    });
    emr.setState(runId, 'SUCCESS');
    const done = await settle(job.id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    expect(done.result).toEqual(fixture('costs.result'));
    expect(emr.calls.StartJobRun).toBe(1);
    expect(emr.runs.size).toBe(1);
  }, 60_000);

  it('the children run under a loopback guard that refuses anything else (so the tests above can fail)', async () => {
    const { execFile } = await import('node:child_process');
    const out = await new Promise<string>((resolve) =>
      execFile(
        process.execPath,
        ['-e', "require('node:http').get('http://10.1.2.3:80/').on('error', () => {})"],
        { env: { PATH: process.env.PATH, NODE_OPTIONS: `--import ${GUARD}` } },
        (_err, _stdout, stderr) => resolve(stderr),
      ),
    );
    expect(out).toContain('LOOPBACK GUARD: refused a connection to 10.1.2.3:80');
  });
});
