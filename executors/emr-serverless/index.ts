/** The `emr-serverless` executor module: Spark jobs on an EMR Serverless application. */
import type { ExecutorModule } from '../../src/executor/index.ts';
import { EMR_SECRET_VARS, EmrServerlessEnv, loadEmrConfig } from './config.ts';
import { EMR_JOB_TYPES } from './job-types.ts';

export const emrServerlessModule: ExecutorModule = {
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
