/** The `snowflake` executor module: the datasets_* types and models_train_classifier on Snowflake. */
import type { ExecutorModule } from '../../src/executor/index.ts';
import {
  loadSnowflakeConfig,
  SNOWFLAKE_JOB_TYPES,
  SNOWFLAKE_SECRET_VARS,
  SnowflakeEnv,
  snowflakeConfigWarnings,
} from './config.ts';

export const snowflakeModule: ExecutorModule<(typeof SNOWFLAKE_JOB_TYPES)[number]> = {
  name: 'snowflake',
  description:
    'Snowflake SQL (asynchronous statements) and SNOWFLAKE.ML.CLASSIFICATION, key-pair authentication',
  // Declared in config.ts, read without loading snowflake-sdk.
  jobTypes: SNOWFLAKE_JOB_TYPES,
  env: SnowflakeEnv,
  secretVars: SNOWFLAKE_SECRET_VARS,
  checkWarnings: snowflakeConfigWarnings,
  // snowflake-sdk loads only when the executor is enabled; building it touches no network.
  createExecutor: async (env) => {
    const config = loadSnowflakeConfig(env);
    // Before the first import: no probes of cloud metadata addresses, no log files.
    process.env.SNOWFLAKE_DISABLE_PLATFORM_DETECTION ??= 'true';
    const sdk = (await import('snowflake-sdk')).default;
    sdk.configure({ logLevel: 'OFF' } as Parameters<typeof sdk.configure>[0]);
    const { SnowflakeClient } = await import('./client.ts');
    const { SnowflakeExecutor } = await import('./executor.ts');
    return new SnowflakeExecutor(config, new SnowflakeClient(sdk, config));
  },
};

export const createExecutor = snowflakeModule.createExecutor;
