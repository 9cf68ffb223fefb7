/** The `local` executor module: an embedded DuckDB data plane (the embedded default). */
import type { JobType } from '../../src/catalogue/index.ts';
import type { ExecutorModule } from '../../src/executor/index.ts';
import { LocalEnv, loadLocalConfig } from './config.ts';

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
  // DuckDB (a native module) loads only when the executor is enabled, not in every daemon.
  createExecutor: async (env) => {
    const config = loadLocalConfig(env);
    const { LocalExecutor } = await import('./executor.ts');
    return new LocalExecutor(config);
  },
};

export const createExecutor = localModule.createExecutor;
