/** The `local` executor module: an embedded DuckDB data plane (the embedded default). */
import { jobTypesFor } from '../../src/catalogue/index.ts';
import type { ExecutorModule } from '../../src/executor/index.ts';
import { LocalEnv, loadLocalConfig } from './config.ts';
import { LazyLocalExecutor } from './lazy.ts';

export const localModule: ExecutorModule = {
  name: 'local',
  description: 'embedded DuckDB data plane under DPO_LOCAL_DIR (every SQL-shaped job type)',
  // The catalogue's routing table, read without loading DuckDB; the instances' handlers match it
  // (test/executors-routing.test.ts).
  jobTypes: jobTypesFor('local'),
  env: LocalEnv,
  // DuckDB (a native module) loads on the first job, not at startup (lazy.ts): an idle daemon
  // serving `local` does not pay for it.
  createExecutor: async (env) => new LazyLocalExecutor(loadLocalConfig(env)),
};

export const createExecutor = localModule.createExecutor;
