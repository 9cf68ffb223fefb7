/**
 * EMR Serverless setup: `dataplane-operator emr upload-runner` puts the shipped runner at
 * DPO_EMR_ENTRY_POINT (through the real S3 client, against the fake S3 on 127.0.0.1), and the default
 * Spark parameters carry the Iceberg/Glue catalog the runner reads.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmrServerlessEnv, ICEBERG_GLUE_SPARK_PARAMS } from '../../executors/emr-serverless/config.ts';
import { RUNNER_PATH } from '../../src/cli/emr.ts';
import { type FakeS3, startFakeS3 } from '../fakes/s3.ts';
import { runCli } from '../support/processes.ts';

let s3: FakeS3;
beforeAll(async () => {
  s3 = await startFakeS3();
});
afterAll(async () => {
  await s3.close();
});

const ENV = () => ({
  AWS_REGION: 'eu-west-1',
  AWS_ACCESS_KEY_ID: 'AKIAFAKEFAKEFAKEFAKE',
  AWS_SECRET_ACCESS_KEY: 'fake-secret-for-tests-only',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_CONFIG_FILE: '/nonexistent/aws-config',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
  AWS_ENDPOINT_URL_S3: s3.url,
});

const PROFILE = [
  'DPO_EMR_APPLICATION_ID=00fq1w2e3r4t5y6',
  'DPO_EMR_EXECUTION_ROLE_ARN=arn:aws:iam::210987654321:role/spark',
  'DPO_EMR_S3_URI=s3://acme-dataplane/operator',
  'DPO_EMR_ENTRY_POINT=s3://acme-dataplane/operator/runner/job_runner.py',
  'DPO_EMR_S3_FORCE_PATH_STYLE=true',
  'DPO_EMR_MAX_ATTEMPTS=1',
].join('\n');

describe('dataplane-operator emr upload-runner', () => {
  it('uploads the shipped runner to DPO_EMR_ENTRY_POINT and prints its digest', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'dpo-emr-')), 'aws.env');
    writeFileSync(file, `${PROFILE}\n`);
    const p = runCli(['emr', 'upload-runner', '--env-file', file], ENV());
    expect(await p.exited, p.stderr()).toBe(0);
    const runner = readFileSync(RUNNER_PATH);
    const sha = createHash('sha256').update(runner).digest('hex');
    expect(p.stdout()).toContain(
      `uploaded ${runner.length} bytes to s3://acme-dataplane/operator/runner/job_runner.py (sha256 ${sha})`,
    );
    expect(s3.objects.get('acme-dataplane/operator/runner/job_runner.py')?.equals(runner)).toBe(true);
  });

  it('refuses an incomplete profile with exit 2, and an unreachable S3 with exit 1, naming the call', async () => {
    const incomplete = join(mkdtempSync(join(tmpdir(), 'dpo-emr-')), 'aws.env');
    writeFileSync(incomplete, 'DPO_EMR_S3_URI=s3://acme-dataplane/operator\n');
    const bad = runCli(['emr', 'upload-runner', '--env-file', incomplete], ENV());
    const file = join(mkdtempSync(join(tmpdir(), 'dpo-emr-')), 'aws.env');
    writeFileSync(file, `${PROFILE}\n`);
    const down = runCli(['emr', 'upload-runner', '--env-file', file], {
      ...ENV(),
      AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9',
    });
    expect(await bad.exited).toBe(2);
    expect(bad.stderr()).toMatch(/DPO_EMR_ENTRY_POINT: required/);
    expect(await down.exited).toBe(1);
    expect(down.stderr()).toMatch(/PutObject s3:\/\/acme-dataplane\/operator\/runner\/job_runner\.py/);
  });
});

describe('the default Spark parameters', () => {
  it('configure the Iceberg catalog on Glue that the runner addresses as glue_catalog', () => {
    const defaults = EmrServerlessEnv.shape.DPO_EMR_SPARK_PARAMS.parse(undefined);
    expect(defaults).toContain(ICEBERG_GLUE_SPARK_PARAMS);
    expect(defaults).toContain(
      'spark.sql.catalog.glue_catalog.catalog-impl=org.apache.iceberg.aws.glue.GlueCatalog',
    );
    expect(defaults).toContain(
      'spark.sql.extensions=org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions',
    );
    // The runner's default catalog name is the one configured here.
    expect(readFileSync(RUNNER_PATH, 'utf8')).toContain('conf(spark, "catalog", "glue_catalog")');
  });
});
