/** The `local` executor module: an embedded DuckDB data plane (the embedded default). */
import type { ExecutorModule } from '../../src/executor/index.ts';
import { LocalEnv, loadLocalConfig } from './config.ts';
import { LOCAL_JOB_TYPES, LocalExecutor } from './executor.ts';

export { LocalExecutor } from './executor.ts';

export const localModule: ExecutorModule = {
  name: 'local',
  description: 'embedded DuckDB data plane under DPO_LOCAL_DIR (every SQL-shaped job type)',
  jobTypes: LOCAL_JOB_TYPES,
  env: LocalEnv,
  createExecutor: (env) => new LocalExecutor(loadLocalConfig(env)),
};

export const createExecutor = localModule.createExecutor;
