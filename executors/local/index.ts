/** The `local` executor module: an embedded DuckDB data plane (the embedded default). */
import type { ExecutorModule } from '../../src/executor/index.ts';
import { LocalEnv, loadLocalConfig } from './config.ts';
import { LOCAL_JOB_TYPES } from './job-types.ts';
import { LazyLocalExecutor } from './lazy.ts';

export { LOCAL_JOB_TYPES };

export const localModule: ExecutorModule<(typeof LOCAL_JOB_TYPES)[number]> = {
  name: 'local',
  description: 'embedded DuckDB data plane under DPO_LOCAL_DIR (every SQL-shaped job type)',
  jobTypes: LOCAL_JOB_TYPES,
  env: LocalEnv,
  // DuckDB (a native module) loads on the first job, not at startup (lazy.ts): an idle daemon
  // serving `local` does not pay for it.
  createExecutor: async (env) => new LazyLocalExecutor(loadLocalConfig(env)),
};

export const createExecutor = localModule.createExecutor;
