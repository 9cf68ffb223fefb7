/** The `bedrock` executor module: model_inference_run on Amazon Bedrock (Converse). */
import { jobTypesFor } from '../../src/catalogue/index.ts';
import type { ExecutorModule } from '../../src/executor/index.ts';
import { BedrockEnv, loadBedrockConfig } from './config.ts';

export const bedrockModule: ExecutorModule = {
  name: 'bedrock',
  description: 'LLM inference with structured output on Amazon Bedrock (Converse API)',
  jobTypes: jobTypesFor('bedrock'),
  env: BedrockEnv,
  // The AWS SDK loads only when the executor is enabled.
  createExecutor: async (env) => {
    const config = loadBedrockConfig(env);
    const { BedrockExecutor } = await import('./executor.ts');
    return new BedrockExecutor(config);
  },
};

export const createExecutor = bedrockModule.createExecutor;
