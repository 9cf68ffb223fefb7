/** The `emr-serverless` executor module: Spark jobs on an EMR Serverless application. */
import { jobTypesFor } from '../../src/catalogue/index.ts';
import type { ExecutorModule } from '../../src/executor/index.ts';
import { EMR_SECRET_VARS, EmrServerlessEnv, loadEmrConfig } from './config.ts';

export const emrServerlessModule: ExecutorModule = {
  name: 'emr-serverless',
  description: 'Spark on an EMR Serverless application; specs, results and logs in S3',
  // The catalogue's routing table, read without loading the SDKs; the instances' handlers match it
  // (test/executors-routing.test.ts).
  jobTypes: jobTypesFor('emr-serverless'),
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
