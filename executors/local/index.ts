/** The `local` executor module: an embedded DuckDB data plane (the embedded default). */
import type { ExecutorModule } from '../../src/executor/index.ts';
import { LocalEnv, loadLocalConfig } from './config.ts';
import { LOCAL_JOB_TYPES } from './job-types.ts';

export const localModule: ExecutorModule = {
  name: 'local',
  description: 'embedded DuckDB data plane under DPO_LOCAL_DIR (every SQL-shaped job type)',
  jobTypes: LOCAL_JOB_TYPES,
  env: LocalEnv,
  // DuckDB (a native module) loads only when the executor is enabled, not in every daemon.
  createExecutor: async (env) => {
    const config = loadLocalConfig(env);
    const { LocalExecutor } = await import('./executor.ts');
    return new LocalExecutor(config);
  },
};

export const createExecutor = localModule.createExecutor;
