/** The `emr-serverless` executor module: Spark jobs on an EMR Serverless application. */
import type { JobType } from '../../src/catalogue/index.ts';
import type { ExecutorModule } from '../../src/executor/index.ts';
import { EMR_SECRET_VARS, EmrServerlessEnv, loadEmrConfig } from './config.ts';

/** The job types this executor serves, declared once: its handler map (executor.ts) is typed from it. */
export const EMR_JOB_TYPES = [
  'forecast',
  'forecast-internal',
  'costs',
  'nql-forecast',
  'materialize-view',
  'datasets_sample',
  'materialized_views_collect_access_rules_billing_data',
] as const satisfies readonly JobType[];

export const emrServerlessModule: ExecutorModule<(typeof EMR_JOB_TYPES)[number]> = {
  name: 'emr-serverless',
  description: 'Spark on an EMR Serverless application; specs, results and logs in S3',
  jobTypes: EMR_JOB_TYPES,
  env: EmrServerlessEnv,
  secretVars: EMR_SECRET_VARS,
  // The AWS SDK loads only when the executor is enabled.
  createExecutor: async (env) => {
    const config = loadEmrConfig(env);
    const { EmrServerlessExecutor } = await import('./executor.ts');
    return new EmrServerlessExecutor(config);
  },
};

export const createExecutor = emrServerlessModule.createExecutor;
