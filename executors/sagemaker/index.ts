/** The `sagemaker` executor module: model training on SageMaker, model delivery to a Hugging Face Hub. */
import { jobTypesFor } from '../../src/catalogue/index.ts';
import type { ExecutorModule } from '../../src/executor/index.ts';
import { loadSageMakerConfig, SAGEMAKER_SECRET_VARS, SageMakerEnv } from './config.ts';

export const sagemakerModule: ExecutorModule = {
  name: 'sagemaker',
  description: 'model training as SageMaker training jobs; trained models delivered to a Hugging Face Hub',
  jobTypes: jobTypesFor('sagemaker'),
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
