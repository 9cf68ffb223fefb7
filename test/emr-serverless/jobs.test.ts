/**
 * The Spark executor through the real AWS SDK clients against fake EMR Serverless and S3 servers,
 * with the daemon and the bundled control plane.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { clientToken } from '../../executors/emr-serverless/executor.ts';
import type { Job } from '../../src/contract/index.ts';
import { call, waitFor } from '../helpers.ts';
import { BUCKET, connections, type EmrStack, fixture, nonLoopback, startEmrStack } from './support.ts';

let s: EmrStack | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});
afterAll(() => {
  // The guard saw the SDK's connections, and every one went to loopback.
  expect(connections).toContain('127.0.0.1');
  expect(nonLoopback()).toEqual([]);
});

const followUp = async (stack: EmrStack, type: string, parentId: string) =>
  waitFor(
    async () =>
      (
        await call<{ jobs: Job[] }>(stack.cp.url, 'GET', `/v1/jobs?type=${type}`, {
          token: stack.cp.adminToken,
        })
      ).body.jobs.find((j) => j.request_source.type === 'job' && j.request_source.job_id === parentId),
    { what: `the ${type} follow-up` },
  );

describe('every Spark job type', () => {
  it('completes with the runner’s validated result, submitted with the spec, tags and parameters', async () => {
    s = await startEmrStack();
    const stack = s;
    const submitted = await Promise.all([
      stack.submit('forecast', { ...fixture('forecast.input'), schedule_unsampled_forecast: true }),
      stack.submit('costs', fixture('costs.input')),
      stack.submit('nql-forecast', fixture('nql-forecast.input')),
      stack.submit('materialize-view', fixture('materialize-view.input')),
      stack.submit('datasets_sample', fixture('datasets_sample.input')),
    ]);
    const done = await Promise.all(submitted.map((j) => stack.settle(j.id)));
    const internal = await stack.settle((await followUp(stack, 'forecast-internal', submitted[0]!.id)).id);
    const billing = await stack.settle(
      (await followUp(stack, 'materialized_views_collect_access_rules_billing_data', submitted[3]!.id)).id,
    );
    const all = [...done, internal, billing];
    expect(all.map((j) => j.type).sort()).toEqual(
      [
        'costs',
        'datasets_sample',
        'forecast',
        'forecast-internal',
        'materialize-view',
        'materialized_views_collect_access_rules_billing_data',
        'nql-forecast',
      ].sort(),
    );
    for (const j of all) {
      expect(j.state, `${j.type}: ${JSON.stringify(j.failures)}`).toBe('completed');
      expect(j.result).toEqual(fixture(`${j.type}.result`));
    }
    expect(stack.emr.runs.size).toBe(7);

    for (const run of stack.emr.runs.values()) {
      const job = all.find((j) => j.id === run.request.tags.dpo_job_id) as Job;
      // The spec the runner reads: the job, its input, where to write.
      expect(run.spec.job).toMatchObject({ id: job.id, type: job.type, company_id: 56, submission: 1 });
      expect(run.spec.input).toEqual(job.input);
      expect(run.spec.output.result).toMatch(
        new RegExp(`^s3://${BUCKET}/operator/jobs/${job.id}/[0-9a-f]{8}-1/result\\.json$`),
      );
      expect(run.clientToken).toBe(clientToken(job.id, (job.checkpoint as any).nonce, 1));
      expect(run.clientToken.length).toBeLessThanOrEqual(64);
      expect(run.request).toMatchObject({
        executionRoleArn: 'arn:aws:iam::123456789012:role/dpo-spark-jobs',
        executionTimeoutMinutes: 240,
        tags: { dpo_job_id: job.id, dpo_job_type: job.type, dpo_company_id: '56', dpo_submission: '1' },
        jobDriver: { sparkSubmit: { entryPoint: `s3://${BUCKET}/runner/job_runner.py` } },
        configurationOverrides: {
          monitoringConfiguration: { s3MonitoringConfiguration: { logUri: `s3://${BUCKET}/operator/logs/` } },
        },
      });
      const params = run.request.jobDriver.sparkSubmit.sparkSubmitParameters;
      if (job.type === 'forecast') expect(params).toBe('--conf spark.executor.instances=2');
      else expect(params).toContain('spark.executor.memory=16g');
      // The checkpoint names the run.
      expect(job.checkpoint).toMatchObject({ submission: 1, attempt: 1, job_run_id: run.id });
    }
    // Decisions made on the operator side: the forecast's sampling and rules, compiled.
    const forecastRun = [...stack.emr.runs.values()].find((r) => r.spec.job.type === 'forecast');
    expect(forecastRun?.spec.plan).toMatchObject({
      mode: 'sampled',
      company_predicate: 'company_id IN (56)',
      sample_fraction: 1 / 128,
      scale: 128,
      estimator: { type: 'sample', rate: 1 / 128 },
    });
    const internalRun = [...stack.emr.runs.values()].find((r) => r.spec.job.type === 'forecast-internal');
    expect(internalRun?.spec.plan).toMatchObject({
      mode: 'exact',
      sample_fraction: 1,
      estimator: { type: 'exact' },
    });
    expect(stack.emr.allSigned()).toBe(true);
  });
});

describe('failures', () => {
  it('a FAILED run with a query error fails the job without retry, with EMR’s details', async () => {
    s = await startEmrStack({ mode: 'manual' });
    const stack = s;
    const job = await stack.submit('nql-forecast', fixture('nql-forecast.input'));
    const run = await waitFor(() => stack.emr.runs.values().next().value, { what: 'the job run' });
    stack.emr.setState(run.id, 'RUNNING');
    stack.emr.setState(
      run.id,
      'FAILED',
      'Job failed: AnalysisException: Table or view not found: rosetta_table',
    );
    const done = await stack.settle(job.id);
    expect(done.state).toBe('failed');
    expect(done.failures).toHaveLength(1);
    expect(done.failures[0]).toMatchObject({ code: 'EMR_JOB_FAILED', retryable: false });
    expect(done.failures[0]?.message).toContain('Table or view not found: rosetta_table');
    expect(stack.emr.runs.size).toBe(1);
  });

  it('a capacity failure is retried as the next submission, a new run, and then completes', async () => {
    s = await startEmrStack({ mode: 'manual' });
    const stack = s;
    const job = await stack.submit('costs', fixture('costs.input'));
    const first = await waitFor(() => stack.emr.runs.values().next().value, { what: 'the first run' });
    stack.emr.setState(
      first.id,
      'FAILED',
      'ApplicationMaxCapacityExceeded: the application reached its maximum capacity',
    );
    const second = await waitFor(() => [...stack.emr.runs.values()].find((r) => r.id !== first.id), {
      what: 'the second run',
      timeoutMs: 15_000,
    });
    expect(second.spec.job).toMatchObject({ attempt: 2, submission: 2 });
    expect(second.clientToken).toBe(first.clientToken.replace(/-1$/, '-2'));
    stack.emr.setState(second.id, 'SUCCESS');
    const done = await stack.settle(job.id);
    expect(done.state).toBe('completed');
    expect(done.failures).toMatchObject([{ code: 'EMR_CAPACITY', retryable: true }]);
    expect(stack.emr.runs.size).toBe(2);
  });

  it('the runner’s own error file classifies the failure', async () => {
    s = await startEmrStack({ mode: 'manual' });
    const stack = s;
    const job = await stack.submit('materialize-view', fixture('materialize-view.input'));
    const run = await waitFor(() => stack.emr.runs.values().next().value, { what: 'the job run' });
    const errorUri: string = run.spec.output.error;
    stack.s3.put(
      BUCKET,
      errorUri.replace(`s3://${BUCKET}/`, ''),
      JSON.stringify({ kind: 'query', message: 'cannot resolve `timestamp`' }),
    );
    stack.emr.setState(run.id, 'FAILED', 'Job failed, please check complete logs. ExitCode: 1.');
    const done = await stack.settle(job.id);
    expect(done.failures).toMatchObject([
      { code: 'EMR_QUERY_FAILED', retryable: false, message: 'cannot resolve `timestamp`' },
    ]);
  });

  it('a result that does not match its schema is a failure, never a result', async () => {
    s = await startEmrStack({ resultFor: () => ({ type: 'Success', result: { columns: 'count' } }) });
    const job = await s.settle((await s.submit('nql-forecast', fixture('nql-forecast.input'))).id);
    expect(job.state).toBe('failed');
    expect(job.result).toBeNull();
    expect(job.failures[0]).toMatchObject({ code: 'INVALID_RESULT', retryable: false });
  });

  it('a run that succeeded without writing its result fails clearly', async () => {
    s = await startEmrStack({ resultFor: () => undefined });
    const job = await s.settle((await s.submit('datasets_sample', fixture('datasets_sample.input'))).id);
    expect(job.failures[0]).toMatchObject({ code: 'EMR_RESULT_MISSING', retryable: false });
    expect(job.failures[0]?.message).toMatch(/result\.json/);
  });
});

describe('cancel and timeout', () => {
  it('cancel while RUNNING calls CancelJobRun with the grace period and reports cancelled only after CANCELLED', async () => {
    s = await startEmrStack({ mode: 'manual' });
    const stack = s;
    const job = await stack.submit('materialize-view', fixture('materialize-view.input'));
    const run = await waitFor(() => stack.emr.runs.values().next().value, { what: 'the job run' });
    stack.emr.setState(run.id, 'RUNNING');
    // Progress shows EMR's state, the run and its dashboard link.
    const progress = await waitFor(
      async () => {
        const p = (await stack.get(job.id)).progress as any;
        return p?.emr_state === 'RUNNING' && p.dashboard_url ? p : undefined;
      },
      { what: 'RUNNING in the progress' },
    );
    expect(progress).toMatchObject({ job_run_id: run.id, message: 'EMR RUNNING' });
    expect(progress.dashboard_url).toMatch(/^https:\/\/p-/);
    const r = await call(stack.cp.url, 'POST', `/v1/jobs/${job.id}/cancel`, {
      token: stack.cp.adminToken,
      body: {},
    });
    expect(r.status).toBe(200);
    await waitFor(() => run.cancels.length > 0, { what: 'CancelJobRun' });
    expect(run.cancels).toEqual([30]);
    expect(run.state).toBe('CANCELLING');
    // While EMR says CANCELLING the job is not reported cancelled: the executor keeps polling.
    const pollsAtCancel = stack.emr.calls.GetJobRun;
    await waitFor(() => stack.emr.calls.GetJobRun >= pollsAtCancel + 3, { what: 'polls while cancelling' });
    expect((await stack.get(job.id)).state).toBe('pending_cancellation');
    stack.emr.setState(run.id, 'CANCELLED');
    const done = await stack.settle(job.id);
    expect(done.state).toBe('cancelled');
    expect(stack.emr.runs.size).toBe(1);
  });

  it('the per-type execution timeout cancels the run and fails the job as TIMEOUT', async () => {
    s = await startEmrStack(
      { mode: 'manual', autoCancel: true },
      { DPO_EMR_TIMEOUTS_MS: 'nql-forecast=300' },
    );
    const stack = s;
    const job = await stack.submit('nql-forecast', fixture('nql-forecast.input'));
    const run = await waitFor(() => stack.emr.runs.values().next().value, { what: 'the job run' });
    expect(run.request.executionTimeoutMinutes).toBe(1);
    stack.emr.setState(run.id, 'RUNNING');
    const done = await stack.settle(job.id);
    expect(done.state).toBe('failed');
    expect(done.failures[0]).toMatchObject({ code: 'TIMEOUT', retryable: false });
    expect(run.cancels).toHaveLength(1);
    expect(run.state).toBe('CANCELLED');
  });
});

describe('the AWS API misbehaving', () => {
  it('throttling and 5xx are retried by the SDK, bounded, and the job completes', async () => {
    s = await startEmrStack();
    s.emr.failNext('StartJobRun', { status: 500, type: 'InternalServerException' });
    s.emr.failNext('GetJobRun', { status: 429, type: 'ThrottlingException', message: 'Rate exceeded' }, 2);
    const job = await s.settle((await s.submit('costs', fixture('costs.input'))).id);
    expect(job.state).toBe('completed');
    expect(s.emr.calls.StartJobRun).toBe(2);
    expect(s.emr.runs.size).toBe(1);
  });

  it('a service that keeps failing gets exactly DPO_EMR_MAX_ATTEMPTS tries, then a retryable failure', async () => {
    s = await startEmrStack();
    s.emr.failNext('StartJobRun', { status: 503, type: 'ServiceUnavailableException' }, 10);
    const job = await s.settle((await s.submit('costs', fixture('costs.input'), { max_attempts: 1 })).id);
    expect(job.state).toBe('failed');
    expect(job.failures[0]).toMatchObject({ code: 'AWS_UNAVAILABLE', retryable: true });
    expect(s.emr.calls.StartJobRun).toBe(3);
    expect(s.emr.runs.size).toBe(0);
  });

  it('expired credentials are a clear, non-retryable failure', async () => {
    s = await startEmrStack();
    s.emr.failNext(
      'StartJobRun',
      {
        status: 403,
        type: 'ExpiredTokenException',
        message: 'The security token included in the request is expired',
      },
      5,
    );
    const job = await s.settle((await s.submit('costs', fixture('costs.input'))).id);
    expect(job.state).toBe('failed');
    expect(job.failures).toHaveLength(1);
    expect(job.failures[0]).toMatchObject({ code: 'AWS_CREDENTIALS', retryable: false });
    expect(job.failures[0]?.message).toMatch(/ExpiredTokenException.*expired.*credential/s);
    expect(job.failures[0]?.message).not.toContain('fake-secret-for-tests-only');
    expect(s.emr.calls.StartJobRun).toBe(1);
  });
});

describe('lost and drain leave the run alone', () => {
  it('on drain the job is released with its checkpoint and the run keeps running; the next holder reattaches', async () => {
    s = await startEmrStack({ mode: 'manual' });
    const stack = s;
    const job = await stack.submit('costs', fixture('costs.input'));
    const run = await waitFor(() => stack.emr.runs.values().next().value, { what: 'the job run' });
    stack.emr.setState(run.id, 'RUNNING');
    await waitFor(async () => (await stack.get(job.id)).checkpoint?.job_run_id === run.id, {
      what: 'the checkpoint',
    });
    await stack.td.daemon.drain(0);
    await stack.td.daemon.stopped;
    const released = await stack.get(job.id);
    expect(released.state).toBe('pending');
    expect(released.checkpoint).toMatchObject({ job_run_id: run.id });
    expect(run.cancels).toEqual([]);
    expect(run.state).toBe('RUNNING');
  });

  it('a reschedule stops the run the old execution started before the fresh start submits a new one', async () => {
    s = await startEmrStack({ mode: 'manual' });
    const stack = s;
    const job = await stack.submit('costs', fixture('costs.input'));
    const run = await waitFor(() => stack.emr.runs.values().next().value, { what: 'the job run' });
    stack.emr.setState(run.id, 'RUNNING');
    await waitFor(async () => (await stack.get(job.id)).checkpoint?.job_run_id === run.id, {
      what: 'the checkpoint',
    });
    const r = await call(stack.cp.url, 'POST', `/v1/jobs/${job.id}/reschedule`, {
      token: stack.cp.adminToken,
      body: {},
    });
    expect(r.status).toBe(200);
    // The holder hears `lost` (rescheduled): nobody would reattach to the old run, so it cancels it
    // and waits for EMR to say it ended before it settles; only then does the fresh start submit.
    await waitFor(() => run.cancels.length === 1, { what: 'CancelJobRun of the old run' });
    expect(stack.emr.runs.size).toBe(1);
    stack.emr.setState(run.id, 'CANCELLED');
    const second = await waitFor(() => [...stack.emr.runs.values()].find((x) => x.id !== run.id), {
      what: 'the fresh submission',
    });
    expect(second.clientToken).not.toBe(run.clientToken);
    expect(run.cancels).toHaveLength(1);
    expect(second.cancels).toEqual([]);
  });
});
