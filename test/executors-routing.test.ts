/**
 * One source for what an executor serves: each built-in executor declares its job types once (its
 * module's `jobTypes`, `executors/<name>/index.ts`); the compiler holds its handler map to that list
 * (the type tests below show what it refuses), and here, at run time, its handlers and its instances'
 * `jobTypes` equal it. The routing (which built-in executors serve a type) derives from those lists
 * in the composition root. Instances are built from a minimal configuration; nothing connects.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { z } from 'zod';
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
import type { DatasetsSampleInput } from '../src/catalogue/datasets.ts';
import { type InputOf, JOB_TYPES, type JobType } from '../src/catalogue/index.ts';
import {
  BUILTIN_EXECUTOR_NAMES,
  BUILTIN_EXECUTORS,
  builtinExecutorsServing,
} from '../src/daemon/builtin-executors.ts';
import type { Executor, JobHandle, JobHandlers } from '../src/executor/index.ts';
import { createTestContext, testJob } from '../src/executor/testing.ts';

type WithHandlers = Executor & { readonly handlers: object };

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
    it(`${name}: handlers = instance jobTypes = the module's declared jobTypes`, () => {
      const build = instances[name];
      expect(build, `no instance for the built-in executor '${name}'`).toBeDefined();
      const executor = (build as () => WithHandlers)();
      expect(executor.name).toBe(module.name);
      expect(module.name).toBe(name);
      const declared = sorted(module.jobTypes);
      expect(declared.length).toBeGreaterThan(0);
      expect(new Set(declared).size, 'a type declared twice').toBe(declared.length);
      expect(sorted(Object.keys(executor.handlers))).toEqual(declared);
      expect(sorted(executor.jobTypes)).toEqual(declared);
      for (const type of declared) expect(JOB_TYPES).toContain(type);
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

describe('the routing, derived from the built-in executors’ declarations', () => {
  // Replaces the catalogue's routing column (and test/catalogue.test.ts's "routes every type to at
  // least one executor, and SQL-shaped types to the local data plane"): the same table, now read
  // from the executors' own lists. A change to any executor's list shows here.
  const ROUTING: Record<JobType, string[]> = {
    forecast: ['local', 'emr-serverless'],
    'forecast-internal': ['local', 'emr-serverless'],
    costs: ['local', 'emr-serverless'],
    'nql-forecast': ['local', 'emr-serverless'],
    'materialize-view': ['local', 'emr-serverless'],
    datasets_create_table: ['local', 'snowflake'],
    datasets_delete_table: ['local', 'snowflake'],
    datasets_truncate_table: ['local', 'snowflake'],
    datasets_sample: ['local', 'emr-serverless', 'snowflake'],
    datasets_calculate_column_stats: ['local', 'snowflake'],
    datasets_execute_dml: ['local', 'snowflake'],
    model_inference_run: ['bedrock', 'openai-compatible'],
    model_training_run: ['sagemaker'],
    models_train_classifier: ['snowflake'],
    models_deliver_model: ['sagemaker'],
    materialized_views_collect_access_rules_billing_data: ['local', 'emr-serverless'],
  };

  it('routes every type to at least one built-in executor, as the catalogue’s column did', () => {
    for (const type of JOB_TYPES) {
      expect(builtinExecutorsServing(type).length, type).toBeGreaterThan(0);
      expect(builtinExecutorsServing(type), type).toEqual(ROUTING[type]);
    }
  });

  it('sends SQL-shaped types to the local data plane and no model type', () => {
    const local = BUILTIN_EXECUTORS.local!.jobTypes;
    for (const t of ['forecast', 'forecast-internal', 'costs', 'nql-forecast', 'materialize-view'])
      expect(local).toContain(t);
    for (const t of JOB_TYPES.filter((x) => x.startsWith('datasets_'))) expect(local).toContain(t);
    for (const t of JOB_TYPES.filter((x) => x.startsWith('model'))) expect(local).not.toContain(t);
    expect(BUILTIN_EXECUTORS.bedrock!.jobTypes).toEqual(['model_inference_run']);
    expect(BUILTIN_EXECUTORS.sagemaker!.jobTypes).toEqual(['model_training_run', 'models_deliver_model']);
  });

  it('names the built-in executors from the composition root only', () => {
    expect(BUILTIN_EXECUTOR_NAMES).toEqual(Object.keys(BUILTIN_EXECUTORS));
    expect(BUILTIN_EXECUTOR_NAMES).toEqual([
      'local',
      'emr-serverless',
      'bedrock',
      'openai-compatible',
      'sagemaker',
      'snowflake',
    ]);
  });
});

describe('the compiler holds a handler map to its declared list and the catalogue’s inputs', () => {
  // These are checked by `npm run typecheck` (test/ is type-checked): each @ts-expect-error fails the
  // typecheck if the line it marks ever compiles. The run-time part checks the map that compiles.
  const DECLARED = ['datasets_sample', 'costs'] as const satisfies readonly JobType[];
  type Declared = (typeof DECLARED)[number];

  it('infers each handler’s input from the catalogue’s schema', () => {
    expectTypeOf<InputOf<'datasets_sample'>>().toEqualTypeOf<z.output<typeof DatasetsSampleInput>>();
    const seen: number[] = [];
    const handlers = {
      datasets_sample: async (job) => {
        expectTypeOf(job.input.dataset_id).toEqualTypeOf<number>();
        seen.push(job.input.dataset_id);
        return {};
      },
      costs: async () => ({}),
    } satisfies JobHandlers<Declared>;
    expect(sorted(Object.keys(handlers))).toEqual(sorted(DECLARED));
    return handlers
      .datasets_sample(testJob('datasets_sample', { dataset_id: 7 }))
      .then(() => expect(seen).toEqual([7]));
  });

  it('refuses a missing handler, an undeclared one, and a wrong input type', () => {
    const missing = {
      datasets_sample: async () => ({}),
      // @ts-expect-error `costs` is declared but has no handler
    } satisfies JobHandlers<Declared>;
    const undeclared = {
      datasets_sample: async () => ({}),
      costs: async () => ({}),
      // @ts-expect-error `forecast` is not in the declared list
      forecast: async () => ({}),
    } satisfies JobHandlers<Declared>;
    const wrongInput = {
      // @ts-expect-error the catalogue's dataset_id is a number
      datasets_sample: async (job: JobHandle<{ dataset_id: string }>) => job.input.dataset_id,
      costs: async () => ({}),
    } satisfies JobHandlers<Declared>;
    expect(Object.keys(missing)).toEqual(['datasets_sample']);
    expect(Object.keys(undeclared)).toHaveLength(3);
    expect(Object.keys(wrongInput)).toHaveLength(2);
  });
});

describe('the composition root', () => {
  it('is the only file under src/ that imports executors/', () => {
    const root = join(import.meta.dirname, '..');
    const files = readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' })
      .filter((f) => /\.[cm]?[jt]s$/.test(f))
      .map((f) => join(root, 'src', f));
    expect(files.length).toBeGreaterThan(20);
    const importing = files
      .filter((f) => /(?:from|import)\s*\(?\s*['"](?:\.\.\/)+executors\//.test(readFileSync(f, 'utf8')))
      .map((f) => relative(root, f));
    expect(importing).toEqual(['src/daemon/builtin-executors.ts']);
  });
});
