/** The `local` executor module: an embedded DuckDB data plane (the embedded default). */
import { jobTypesFor } from '../../src/catalogue/index.ts';
import type { ExecutorModule } from '../../src/executor/index.ts';
import { LocalEnv, loadLocalConfig } from './config.ts';

export const localModule: ExecutorModule = {
  name: 'local',
  description: 'embedded DuckDB data plane under DPO_LOCAL_DIR (every SQL-shaped job type)',
  // The catalogue's routing table, read without loading DuckDB; the instances' handlers match it
  // (test/executors-routing.test.ts).
  jobTypes: jobTypesFor('local'),
  env: LocalEnv,
  // DuckDB (a native module) loads only when the executor is enabled, not in every daemon.
  createExecutor: async (env) => {
    const config = loadLocalConfig(env);
    const { LocalExecutor } = await import('./executor.ts');
    return new LocalExecutor(config);
  },
};

export const createExecutor = localModule.createExecutor;
