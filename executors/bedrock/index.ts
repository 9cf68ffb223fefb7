/** The `bedrock` executor module: model_inference_run on Amazon Bedrock (Converse). */
import type { JobType } from '../../src/catalogue/index.ts';
import type { ExecutorModule } from '../../src/executor/index.ts';
import { BEDROCK_SECRET_VARS, BedrockEnv, loadBedrockConfig } from './config.ts';

/** The job types this executor serves, declared once: its handler map (executor.ts) is typed from it. */
export const BEDROCK_JOB_TYPES = ['model_inference_run'] as const satisfies readonly JobType[];

export const bedrockModule: ExecutorModule<(typeof BEDROCK_JOB_TYPES)[number]> = {
  name: 'bedrock',
  description: 'LLM inference with structured output on Amazon Bedrock (Converse API)',
  jobTypes: BEDROCK_JOB_TYPES,
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
