/**
 * The transient error budget (src/executor/aws.ts): an AWS outage that outlives the SDK's own retries
 * asks the control plane for a retry delay that grows with the job's attempt, so a job's attempts are
 * not all spent inside a short outage. End to end: the EMR executor against an S3 endpoint on
 * 127.0.0.1 that refuses connections, through the real SDK clients.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emrServerlessModule } from '../../executors/emr-serverless/index.ts';
import { sagemakerModule } from '../../executors/sagemaker/index.ts';
import {
  awsError,
  OUTAGE_RETRY_AFTER_MS,
  outageRetryAfterMs,
  withOutageBudget,
} from '../../src/executor/aws.ts';
import { JobError } from '../../src/executor/index.ts';
import { createTestContext, testJob } from '../../src/executor/testing.ts';

const MIN = 60_000;

describe('the outage budget', () => {
  it('grows with the attempt, jittered between d and 2d, capped', () => {
    const low = (a: number) => outageRetryAfterMs(a, () => 0);
    const high = (a: number) => outageRetryAfterMs(a, () => 0.999_999);
    expect([1, 2, 3, 4, 9].map(low)).toEqual([1 * MIN, 4 * MIN, 15 * MIN, 15 * MIN, 15 * MIN]);
    expect([1, 2, 3].map(high)).toEqual([2 * MIN - 1, 8 * MIN - 1, 30 * MIN - 1]);
    // Three attempts (the control plane's default) outlast an outage of at least five minutes.
    expect(low(1) + low(2)).toBeGreaterThanOrEqual(5 * MIN);
    expect(OUTAGE_RETRY_AFTER_MS.maxMs).toBe(15 * MIN);
  });

  it('applies to 5xx and unanswered calls; throttling keeps its few seconds; refusals are final', () => {
    const err = (name: string, status?: number) =>
      awsError(Object.assign(new Error('m'), { name, $metadata: { httpStatusCode: status } }), 'op', {
        attempt: 2,
        random: () => 0,
      });
    expect(err('InternalServerException', 500).retryAfterMs).toBe(4 * MIN);
    expect(err('TimeoutError').retryAfterMs).toBe(4 * MIN);
    expect(err('ThrottlingException', 400).retryAfterMs).toBe(3_000);
    expect(err('ValidationException', 400)).toMatchObject({ retryable: false, retryAfterMs: undefined });
  });

  it('withOutageBudget re-prices an outage failure for the attempt and leaves everything else alone', () => {
    const outage = awsError(Object.assign(new Error('m'), { name: 'TimeoutError' }), 'op', () => 0);
    expect(outage.retryAfterMs).toBe(MIN);
    const third = withOutageBudget(outage, 3, () => 0) as JobError;
    expect(third).toMatchObject({ code: 'AWS_UNAVAILABLE', retryable: true, retryAfterMs: 15 * MIN });
    const throttled = awsError(
      Object.assign(new Error('m'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } }),
      'op',
    );
    expect(withOutageBudget(throttled, 3)).toBe(throttled);
    const other = new JobError('EMR_JOB_FAILED', 'x', { retryable: true });
    expect(withOutageBudget(other, 3)).toBe(other);
  });
});

/** A port on 127.0.0.1 where nothing listens (bound, then closed): every connection is refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('the EMR executor with S3 unreachable', () => {
  // The SDK's default credential chain reads the process's environment; nothing may look for real ones.
  const fake = {
    AWS_ACCESS_KEY_ID: 'AKIAFAKEFAKEFAKEFAKE',
    AWS_SECRET_ACCESS_KEY: 'fake-secret-for-tests-only',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/nonexistent/aws-config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
  };
  const saved = Object.fromEntries(Object.keys(fake).map((k) => [k, process.env[k]]));
  beforeAll(() => {
    Object.assign(process.env, fake);
  });
  afterAll(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('fails the attempt retryable, asking for a delay that grows with the attempt', async () => {
    const port = await closedPort();
    const executor = await emrServerlessModule.createExecutor({
      AWS_REGION: 'us-east-1',
      DPO_EMR_APPLICATION_ID: '00fq1w2e3r4t5y6',
      DPO_EMR_EXECUTION_ROLE_ARN: 'arn:aws:iam::210987654321:role/spark',
      DPO_EMR_S3_URI: 's3://dpo-test-bucket/operator',
      DPO_EMR_ENTRY_POINT: 's3://dpo-test-bucket/runner/job_runner.py',
      DPO_EMR_S3_FORCE_PATH_STYLE: 'true',
      DPO_EMR_MAX_ATTEMPTS: '1',
      DPO_EMR_REQUEST_TIMEOUT_MS: '2000',
      AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`,
      AWS_ENDPOINT_URL_EMR_SERVERLESS: `http://127.0.0.1:${port}`,
    });
    const input = JSON.parse(
      readFileSync(join(import.meta.dirname, '..', 'fixtures', 'seed', 'forecast.input.json'), 'utf8'),
    );
    try {
      const delays: number[] = [];
      for (const attempt of [1, 2]) {
        const { ctx } = createTestContext();
        const failure = await executor.execute(testJob('forecast', input, { attempt }), ctx).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(failure).toBeInstanceOf(JobError);
        expect(failure).toMatchObject({ code: 'AWS_UNAVAILABLE', retryable: true });
        delays.push((failure as JobError).retryAfterMs as number);
      }
      expect(delays[0]).toBeGreaterThanOrEqual(MIN);
      expect(delays[0]).toBeLessThan(2 * MIN);
      expect(delays[1]).toBeGreaterThanOrEqual(4 * MIN);
      expect(delays[1]).toBeLessThan(8 * MIN);
    } finally {
      await executor.close?.();
    }
  });

  it('the SageMaker executor prices its outage failures for the attempt too', async () => {
    const port = await closedPort();
    const executor = await sagemakerModule.createExecutor({
      DPO_SAGEMAKER_REGION: 'us-east-1',
      DPO_SAGEMAKER_ROLE_ARN: 'arn:aws:iam::210987654321:role/dpo-training',
      DPO_SAGEMAKER_S3_URI: 's3://dpo-test-bucket/operator',
      DPO_SAGEMAKER_SOURCE_URI: 's3://dpo-test-bucket/code/sourcedir.tar.gz',
      DPO_SAGEMAKER_MAX_ATTEMPTS: '1',
      DPO_SAGEMAKER_REQUEST_TIMEOUT_MS: '2000',
      AWS_ENDPOINT_URL_SAGEMAKER: `http://127.0.0.1:${port}`,
      AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`,
    });
    const input = JSON.parse(
      readFileSync(
        join(import.meta.dirname, '..', 'fixtures', 'seed', 'model_training_run.input.json'),
        'utf8',
      ),
    );
    try {
      const delays: number[] = [];
      for (const attempt of [1, 3]) {
        const { ctx } = createTestContext();
        const failure = await executor.execute(testJob('model_training_run', input, { attempt }), ctx).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(failure).toMatchObject({ code: 'AWS_UNAVAILABLE', retryable: true });
        delays.push((failure as JobError).retryAfterMs as number);
      }
      expect(delays[0]).toBeLessThan(2 * MIN);
      expect(delays[1]).toBeGreaterThanOrEqual(15 * MIN);
    } finally {
      await executor.close?.();
    }
  });
});
