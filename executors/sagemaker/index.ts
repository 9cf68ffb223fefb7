/** The `sagemaker` executor module: model training on SageMaker, model delivery to a Hugging Face Hub. */
import type { JobType } from '../../src/catalogue/index.ts';
import type { ExecutorModule } from '../../src/executor/index.ts';
import { loadSageMakerConfig, SAGEMAKER_SECRET_VARS, SageMakerEnv } from './config.ts';

/** The job types this executor serves, declared once: its handler map (executor.ts) is typed from it. */
export const SAGEMAKER_JOB_TYPES = [
  'model_training_run',
  'models_deliver_model',
] as const satisfies readonly JobType[];

export const sagemakerModule: ExecutorModule<(typeof SAGEMAKER_JOB_TYPES)[number]> = {
  name: 'sagemaker',
  description: 'model training as SageMaker training jobs; trained models delivered to a Hugging Face Hub',
  jobTypes: SAGEMAKER_JOB_TYPES,
  env: SageMakerEnv,
  secretVars: SAGEMAKER_SECRET_VARS,
  // The AWS SDK and the Hub library load only when the executor is enabled.
  createExecutor: async (env) => {
    const config = loadSageMakerConfig(env);
    const { SageMakerExecutor } = await import('./executor.ts');
    return new SageMakerExecutor(config);
  },
};

export const createExecutor = sagemakerModule.createExecutor;
