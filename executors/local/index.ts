/** The `local` executor module: an embedded DuckDB data plane (the embedded default). */
import type { JobType } from '../../src/catalogue/index.ts';
import type { ExecutorModule } from '../../src/executor/index.ts';
import { LocalEnv, loadLocalConfig } from './config.ts';
import { LazyLocalExecutor } from './lazy.ts';

/** The job types this executor serves, declared once: its handler map (executor.ts) is typed from it. */
export const LOCAL_JOB_TYPES = [
  'forecast',
  'forecast-internal',
  'costs',
  'nql-forecast',
  'materialize-view',
  'datasets_create_table',
  'datasets_delete_table',
  'datasets_truncate_table',
  'datasets_sample',
  'datasets_calculate_column_stats',
  'datasets_execute_dml',
  'materialized_views_collect_access_rules_billing_data',
] as const satisfies readonly JobType[];

export const localModule: ExecutorModule<(typeof LOCAL_JOB_TYPES)[number]> = {
  name: 'local',
  description: 'embedded DuckDB data plane under DPO_LOCAL_DIR (every SQL-shaped job type)',
  jobTypes: LOCAL_JOB_TYPES,
  env: LocalEnv,
  // DuckDB (a native module) loads on the first job, not at startup (lazy.ts): an idle daemon
  // serving `local` does not pay for it.
  createExecutor: async (env) => new LazyLocalExecutor(loadLocalConfig(env), LOCAL_JOB_TYPES),
};

export const createExecutor = localModule.createExecutor;
