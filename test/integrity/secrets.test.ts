/**
 * Secrets never leak: a daemon (child process) runs the EMR Serverless executor with recognisable
 * secret values configured (the operator token, the AWS secret key and session token) through its
 * failure paths: credentials refused at submit, throttling and 5xx on polls, a run that fails, a
 * result that is missing. None of the values may appear in the daemon's logs (stdout, stderr), in any
 * job's failures or job log, or in the metrics.
 */
import { afterAll, expect, it } from 'vitest';
import type { Job } from '../../src/contract/index.ts';
import { emrEnv, fixture } from '../emr-serverless/support.ts';
import { startFakeEmr } from '../fakes/emr-serverless.ts';
import { startFakeS3 } from '../fakes/s3.ts';
import { call, startTestControlPlane, type TestControlPlane, waitFor } from '../helpers.ts';
import { type CliProcess, runCli } from '../support/processes.ts';

const SECRETS = {
  token: 'SECRETOPERATORTOKEN-7c1d-do-not-log',
  awsSecret: 'SECRETAWSKEY/9f3e+do+not+log+0000000000',
  awsSession: 'SECRETSESSIONTOKEN-4b2a-do-not-log',
};
const cleanup: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

it('no configured secret appears in logs, failures, job logs or metrics', async () => {
  const s3 = await startFakeS3();
  // Runs fail (stateDetails) or succeed without a result, by job.
  let n = 0;
  const emr = await startFakeEmr({ s3, resultFor: () => (n++ % 2 === 0 ? undefined : { type: 'wrong' }) });
  const cp: TestControlPlane = await startTestControlPlane({ leaseTtlMs: 5_000 });
  const cpWithSecret = await startTestControlPlane({
    leaseTtlMs: 5_000,
    adminTokens: [cp.adminToken],
    operatorTokens: [{ token: SECRETS.token, data_plane_id: cp.dataPlaneId }],
  });
  await cp.close();
  cleanup.push(
    () => cpWithSecret.close(),
    () => emr.close(),
    () => s3.close(),
  );
  emr.failNext('StartJobRun', {
    status: 403,
    type: 'ExpiredTokenException',
    message: 'The security token included in the request is expired',
  });
  emr.failNext('StartJobRun', { status: 400, type: 'AccessDeniedException', message: 'not authorized' });
  emr.failNext('GetJobRun', { status: 429, type: 'ThrottlingException', message: 'Rate exceeded' }, 3);
  emr.failNext('GetJobRun', { status: 500, type: 'InternalServerException', message: 'boom' }, 2);

  const daemon: CliProcess = runCli(['run'], {
    DPO_CONTROL_PLANE_URL: cpWithSecret.url,
    DPO_TOKEN: SECRETS.token,
    DPO_DATA_PLANE_ID: cp.dataPlaneId,
    DPO_EXECUTORS: 'emr-serverless',
    DPO_METRICS_LISTEN: '127.0.0.1:0',
    DPO_POLL_WAIT_MS: '1000',
    DPO_LOG_LEVEL: 'debug',
    ...emrEnv(emr, s3),
    AWS_ACCESS_KEY_ID: 'AKIAFAKEFAKEFAKEFAKE',
    AWS_SECRET_ACCESS_KEY: SECRETS.awsSecret,
    AWS_SESSION_TOKEN: SECRETS.awsSession,
  });
  cleanup.push(() => daemon.kill('SIGKILL'));
  await daemon.waitForOutput(/health and metrics listening/, 20_000);
  const metricsUrl = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(daemon.stdout())?.[1];
  expect(metricsUrl).toBeDefined();

  const user = <T = unknown>(m: 'GET' | 'POST', p: string, b?: unknown) =>
    call<T>(cpWithSecret.url, m, p, { token: cp.adminToken, body: b });
  const ids: string[] = [];
  for (const type of ['costs', 'nql-forecast', 'datasets_sample', 'costs']) {
    const r = await user<Job>('POST', '/v1/jobs', {
      type,
      company_id: 56,
      data_plane_id: cp.dataPlaneId,
      input: fixture(`${type}.input`),
      // One attempt: a retryable failure (AWS_UNAVAILABLE asks for a later retry) ends the job.
      max_attempts: 1,
    });
    expect(r.status).toBe(201);
    ids.push(r.body.id);
  }
  const jobs = await waitFor(
    async () => {
      const all = await Promise.all(ids.map(async (id) => (await user<Job>('GET', `/v1/jobs/${id}`)).body));
      return all.every((j) => ['completed', 'failed', 'cancelled'].includes(j.state)) ? all : undefined;
    },
    { timeoutMs: 100_000, what: 'every job to end' },
  );
  console.log(
    `secrets: ${jobs.map((j) => `${j.type} ${j.state} [${j.failures.map((f) => f.code).join(', ')}]`).join('; ')}`,
  );
  // The failure paths ran: some job failed, with the executor's codes.
  expect(jobs.flatMap((j) => j.failures).length).toBeGreaterThan(0);
  const logs = await Promise.all(
    ids.map(async (id) => (await user(`GET`, `/v1/jobs/${id}/logs?limit=1000`)).body),
  );
  const metrics = await fetch(`${metricsUrl}/metrics`).then((r) => r.text());
  expect(metrics).toContain('dpo_');
  daemon.kill('SIGTERM');
  await daemon.exited;

  const places: Record<string, string> = {
    'daemon stdout': daemon.stdout(),
    'daemon stderr': daemon.stderr(),
    'job failures and results': JSON.stringify(jobs),
    'job logs': JSON.stringify(logs),
    metrics,
  };
  expect(JSON.stringify(logs)).toMatch(/EMR|job run|attempt/i); // the job logs say something
  for (const [where, text] of Object.entries(places)) {
    for (const [name, value] of Object.entries(SECRETS)) {
      expect(text.includes(value), `${name} appears in ${where}`).toBe(false);
      // Nor a recognisable piece of it (a prefix long enough to be the secret).
      expect(text.includes(value.slice(0, 16)), `a prefix of ${name} appears in ${where}`).toBe(false);
    }
  }
}, 120_000);
