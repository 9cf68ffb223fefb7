/**
 * The operator side of the runner contract: the spec, the forecast's compiled rules, the failure
 * classification; and the runner itself compiles (CI has no Spark to run it).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { awsError, classifyStateDetails, clientToken } from '../../executors/emr-serverless/executor.ts';
import { buildSpec, forecastPlan, sparkInterval } from '../../executors/emr-serverless/spec.ts';
import * as aws from '../../src/executor/aws.ts';
import { fixture } from './support.ts';

describe('the job spec', () => {
  it('names the job, carries the input and the plan, and says where to write', () => {
    const job = {
      id: '3f0c6a1e-4d2b-4e8a-9c7d-1b2a3c4d5e6f',
      type: 'nql-forecast',
      attempt: 2,
      maxAttempts: 3,
      companyId: 56,
      dataPlaneId: 'dp',
      input: fixture('nql-forecast.input'),
    };
    const spec = buildSpec(job, {
      bucket: 'b',
      prefix: 'ops/x',
      submission: 3,
      nonce: 'a1b2c3d4',
      maxResultRows: 500,
    });
    expect(spec).toEqual({
      version: 1,
      job: { id: job.id, type: 'nql-forecast', company_id: 56, attempt: 2, submission: 3 },
      input: job.input,
      plan: { max_rows: 500 },
      output: {
        result: `s3://b/ops/x/jobs/${job.id}/a1b2c3d4-3/result.json`,
        error: `s3://b/ops/x/jobs/${job.id}/a1b2c3d4-3/error.json`,
      },
    });
    const token = clientToken(job.id, 'a1b2c3d4', 999);
    expect(token).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
  });

  it('compiles the forecast rules into Spark SQL', () => {
    const input = fixture('forecast.input');
    const plan = forecastPlan(input, 'sampled');
    expect(plan).toEqual({
      mode: 'sampled',
      company_predicate: 'company_id IN (56)',
      attributes: [{ attribute_id: 1, optional: false, not_null: ['`unique_id`.`value`'] }],
      ingestion_predicate:
        "_nio_ingested_at >= TIMESTAMP '2024-01-01T00:00:00Z' - INTERVAL 30 DAYS AND _nio_ingested_at >= TIMESTAMP '2024-01-01T00:00:00Z' AND _nio_ingested_at <= TIMESTAMP '2024-01-01T00:00:00Z'",
      ingestion_column: '_nio_ingested_at',
      sample_fraction: 1 / 128,
      scale: 128,
      estimator: { type: 'sample', rate: 1 / 128 },
      price_micro_cents_per_1000_rows: 1_000_000_000,
      unsupported_filters: [],
    });
    expect(forecastPlan(input, 'exact')).toMatchObject({
      sample_fraction: 1,
      scale: 1,
      estimator: { type: 'exact' },
    });
    const costs = forecastPlan(
      {
        ...fixture('costs.input'),
        details: {
          ...fixture('costs.input').details,
          company_constraint: { type: 'exclusion', company_ids: [1, 2] },
        },
      },
      'costs',
    );
    expect(costs).toMatchObject({
      mode: 'costs',
      company_predicate: 'company_id NOT IN (1, 2)',
      ingestion_predicate: null,
    });
  });

  it('passes filters it cannot interpret to the runner as unsupported, and quotes what it embeds', () => {
    const input = fixture('forecast.input');
    input.details.data_rules.attributes[0].fields[1].filter = 'fuzzy';
    input.details.data_rules.ingestion_timestamp_filter.from.value = "2024-01-01T00:00:00Z' OR '1'='1";
    const plan = forecastPlan(input, 'sampled');
    expect(plan.unsupported_filters).toEqual(['fuzzy']);
    expect(plan.ingestion_predicate).toContain("TIMESTAMP '2024-01-01T00:00:00Z\\' OR \\'1\\'=\\'1'");
  });

  it('reads ISO 8601 durations', () => {
    expect(sparkInterval('P30D')).toBe('INTERVAL 30 DAYS');
    expect(sparkInterval('P1Y2M3W4DT5H6M7S')).toBe(
      'INTERVAL 1 YEARS 2 MONTHS 25 DAYS 5 HOURS 6 MINUTES 7 SECONDS',
    );
    expect(() => sparkInterval('30 days')).toThrow(/duration/);
  });
});

describe('failure classification', () => {
  it.each([
    ['ApplicationMaxCapacityExceeded: maximum capacity reached', 'EMR_CAPACITY', true],
    ['Internal error: please try again', 'EMR_CAPACITY', true],
    ['AnalysisException: Table or view not found', 'EMR_JOB_FAILED', false],
    ['Job failed, please check complete logs. ExitCode: 1.', 'EMR_JOB_FAILED', false],
  ])('stateDetails %j → %s', (details, code, retryable) => {
    expect(classifyStateDetails(details)).toEqual({ code, retryable });
  });

  it.each([
    [{ name: 'ExpiredTokenException', $metadata: { httpStatusCode: 403 } }, 'AWS_CREDENTIALS', false],
    [{ name: 'CredentialsProviderError' }, 'AWS_CREDENTIALS', false],
    [{ name: 'AccessDeniedException', $metadata: { httpStatusCode: 403 } }, 'AWS_ACCESS_DENIED', false],
    [{ name: 'ThrottlingException', $metadata: { httpStatusCode: 429 } }, 'AWS_UNAVAILABLE', true],
    [{ name: 'InternalServerException', $metadata: { httpStatusCode: 500 } }, 'AWS_UNAVAILABLE', true],
    [{ name: 'ValidationException', $metadata: { httpStatusCode: 400 } }, 'AWS_REQUEST_REJECTED', false],
  ])('SDK error %j → %s', (err, code, retryable) => {
    expect(awsError(Object.assign(new Error('m'), err), 'op')).toMatchObject({ code, retryable });
  });

  it('throttling asks to be retried a jittered few seconds later; an outage, on the outage budget; refusals not at all', () => {
    const throttled = [
      { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } },
      { name: 'TooManyRequestsException', $metadata: { httpStatusCode: 429 } },
      { name: 'SlowDown', $metadata: { httpStatusCode: 503 } },
      { name: 'Whatever', $metadata: { httpStatusCode: 429 } },
    ];
    for (const err of throttled) {
      const e = awsError(Object.assign(new Error('m'), err), 'op');
      expect(e).toMatchObject({ code: 'AWS_UNAVAILABLE', retryable: true });
      expect(e.retryAfterMs).toBeGreaterThanOrEqual(3_000);
      expect(e.retryAfterMs).toBeLessThan(6_000);
    }
    const low = aws.awsError(Object.assign(new Error('m'), throttled[0]), 'op', () => 0);
    const high = aws.awsError(Object.assign(new Error('m'), throttled[0]), 'op', () => 0.999);
    expect([low.retryAfterMs, high.retryAfterMs]).toEqual([3_000, 5_997]);
    // An outage (5xx, no answer): a minute or more on attempt 1 (test/executor/aws-budget.test.ts).
    for (const err of [
      { name: 'InternalServerException', $metadata: { httpStatusCode: 500 } },
      { name: 'TimeoutError' },
    ]) {
      expect(awsError(Object.assign(new Error('m'), err), 'op').retryAfterMs).toBeGreaterThanOrEqual(60_000);
    }
    for (const err of [
      { name: 'ValidationException', $metadata: { httpStatusCode: 400 } },
      { name: 'ExpiredTokenException', $metadata: { httpStatusCode: 403 } },
    ]) {
      expect(awsError(Object.assign(new Error('m'), err), 'op').retryAfterMs).toBeUndefined();
    }
    // The EMR module re-exports the shared classifier.
    expect(awsError).toBe(aws.awsError);
  });

  it('every AWS client gets the same options: region, bounded standard retries, timeouts, endpoint', () => {
    expect(aws.awsClientOptions({ region: 'eu-west-1', maxAttempts: 4, requestTimeoutMs: 30_000 })).toEqual({
      region: 'eu-west-1',
      maxAttempts: 4,
      retryMode: 'standard',
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
    });
    expect(
      aws.awsClientOptions({
        region: 'us-east-1',
        maxAttempts: 1,
        requestTimeoutMs: 100,
        connectionTimeoutMs: 50,
        endpoint: 'http://127.0.0.1:4566',
      }),
    ).toMatchObject({ requestHandler: { connectionTimeout: 50 }, endpoint: 'http://127.0.0.1:4566' });
  });
});

describe('the reference runner', () => {
  it('is valid Python (CI compiles it; it cannot run Spark)', () => {
    const out = mkdtempSync(join(tmpdir(), 'dpo-pyc-'));
    const runner = join(
      import.meta.dirname,
      '..',
      '..',
      'executors',
      'emr-serverless',
      'runner',
      'job_runner.py',
    );
    expect(() =>
      execFileSync('python3', [
        '-c',
        `import py_compile; py_compile.compile(${JSON.stringify(runner)}, cfile=${JSON.stringify(join(out, 'r.pyc'))}, doraise=True)`,
      ]),
    ).not.toThrow();
  });
});
