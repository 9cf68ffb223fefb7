/** The `bedrock` executor module: model_inference_run on Amazon Bedrock (Converse). */
import { jobTypesFor } from '../../src/catalogue/index.ts';
import type { ExecutorModule } from '../../src/executor/index.ts';
import { BEDROCK_SECRET_VARS, BedrockEnv, loadBedrockConfig } from './config.ts';

export const bedrockModule: ExecutorModule = {
  name: 'bedrock',
  description: 'LLM inference with structured output on Amazon Bedrock (Converse API)',
  jobTypes: jobTypesFor('bedrock'),
  env: BedrockEnv,
  secretVars: BEDROCK_SECRET_VARS,
  // The AWS SDK loads only when the executor is enabled.
  createExecutor: async (env) => {
    const config = loadBedrockConfig(env);
    const { BedrockExecutor } = await import('./executor.ts');
    return new BedrockExecutor(config);
  },
};

export const createExecutor = bedrockModule.createExecutor;
