/**
 * One source for what an executor serves: for every built-in executor, the job types of its
 * handlers (what it can run) are its instances' `jobTypes`, the module's static `jobTypes` (what
 * `config check` and the registry read without loading the SDKs), and the catalogue's routing table.
 * Instances are built from a minimal configuration; nothing connects or opens anything.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadBedrockConfig } from '../executors/bedrock/config.ts';
import { BedrockExecutor } from '../executors/bedrock/executor.ts';
import { loadEmrConfig } from '../executors/emr-serverless/config.ts';
import { EmrServerlessExecutor } from '../executors/emr-serverless/executor.ts';
import { loadLocalConfig } from '../executors/local/config.ts';
import { LocalExecutor } from '../executors/local/executor.ts';
import { loadOpenAiCompatibleConfig } from '../executors/openai-compatible/config.ts';
import { OpenAiCompatibleExecutor } from '../executors/openai-compatible/executor.ts';
import { loadSageMakerConfig } from '../executors/sagemaker/config.ts';
import { SageMakerExecutor } from '../executors/sagemaker/executor.ts';
import { SnowflakeClient } from '../executors/snowflake/client.ts';
import { loadSnowflakeConfig } from '../executors/snowflake/config.ts';
import { SnowflakeExecutor } from '../executors/snowflake/executor.ts';
import { type ExecutorName, JOB_TYPES, jobTypesFor } from '../src/catalogue/index.ts';
import { BUILTIN_EXECUTORS } from '../src/daemon/builtin-executors.ts';
import type { Executor, JobHandlers } from '../src/executor/index.ts';
import { createTestContext, testJob } from '../src/executor/testing.ts';

type WithHandlers = Executor & { readonly handlers: JobHandlers };

/** Each built-in executor's class, from a minimal configuration (its constructor does no I/O). */
const instances: Record<string, () => WithHandlers> = {
  local: () =>
    new LocalExecutor(loadLocalConfig({ DPO_LOCAL_DIR: mkdtempSync(join(tmpdir(), 'dpo-routing-')) })),
  'emr-serverless': () =>
    new EmrServerlessExecutor(
      loadEmrConfig({
        DPO_EMR_REGION: 'us-east-1',
        DPO_EMR_APPLICATION_ID: '00fabcd1234567',
        DPO_EMR_EXECUTION_ROLE_ARN: 'arn:aws:iam::123456789012:role/dpo-spark-jobs',
        DPO_EMR_S3_URI: 's3://dpo-test-bucket/operator',
        DPO_EMR_ENTRY_POINT: 's3://dpo-test-bucket/runner/job_runner.py',
      }),
    ),
  bedrock: () => new BedrockExecutor(loadBedrockConfig({ DPO_BEDROCK_REGION: 'us-east-1' })),
  'openai-compatible': () =>
    new OpenAiCompatibleExecutor(
      loadOpenAiCompatibleConfig({ DPO_OPENAI_COMPAT_BASE_URL: 'http://127.0.0.1:1/v1' }),
    ),
  sagemaker: () =>
    new SageMakerExecutor(
      loadSageMakerConfig({
        DPO_SAGEMAKER_REGION: 'us-east-1',
        DPO_SAGEMAKER_ROLE_ARN: 'arn:aws:iam::123456789012:role/dpo-training',
        DPO_SAGEMAKER_S3_URI: 's3://dpo-models/operator',
        DPO_SAGEMAKER_SOURCE_URI: 's3://dpo-models/code/sourcedir.tar.gz',
      }),
    ),
  snowflake: () => {
    const config = loadSnowflakeConfig({
      DPO_SNOWFLAKE_ACCOUNT: 'myorg-test',
      DPO_SNOWFLAKE_USER: 'DPO_OPERATOR',
      DPO_SNOWFLAKE_ROLE: 'DPO_ROLE',
      DPO_SNOWFLAKE_DATABASE: 'NARRATIVE',
      DPO_SNOWFLAKE_WAREHOUSE: 'DPO_WH',
      DPO_SNOWFLAKE_PRIVATE_KEY_FILE: '/nonexistent/rsa_key.p8',
    });
    // The client takes the SDK as a value: none is loaded here, and nothing connects.
    return new SnowflakeExecutor(config, new SnowflakeClient({} as never, config));
  },
};

const sorted = (types: readonly string[]) => [...types].sort();

describe('the job types of every built-in executor', () => {
  it('has an instance here for every built-in module (a new backend joins this test)', () => {
    expect(sorted(Object.keys(instances))).toEqual(sorted(Object.keys(BUILTIN_EXECUTORS)));
  });

  for (const [name, module] of Object.entries(BUILTIN_EXECUTORS)) {
    it(`${name}: handlers = instance jobTypes = module jobTypes = the routing table`, () => {
      const build = instances[name];
      expect(build, `no instance for the built-in executor '${name}'`).toBeDefined();
      const executor = (build as () => WithHandlers)();
      expect(executor.name).toBe(module.name);
      const routed = sorted(jobTypesFor(name as ExecutorName));
      expect(routed.length).toBeGreaterThan(0);
      expect(sorted(Object.keys(executor.handlers))).toEqual(routed);
      expect(sorted(executor.jobTypes)).toEqual(routed);
      expect(sorted(module.jobTypes)).toEqual(routed);
      for (const type of executor.jobTypes) expect(JOB_TYPES).toContain(type);
    });

    it(`${name}: a type without a handler fails, not retryably, before any work`, async () => {
      const executor = (instances[name] as () => WithHandlers)();
      const other = JOB_TYPES.find((t) => !executor.jobTypes.includes(t)) as string;
      const t = createTestContext();
      await expect(executor.execute(testJob(other, {}), t.ctx)).rejects.toMatchObject({
        code: 'UNKNOWN_JOB_TYPE',
        retryable: false,
      });
      expect(t.checkpoints).toEqual([]);
      await executor.close?.();
    });
  }
});
