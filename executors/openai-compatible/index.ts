/** The `openai-compatible` executor module: model_inference_run on a model server in the data plane. */
import type { JobType } from '../../src/catalogue/index.ts';
import type { ExecutorModule } from '../../src/executor/index.ts';
import { loadOpenAiCompatibleConfig, OpenAiCompatibleEnv } from './config.ts';

/** The job types this executor serves, declared once: its handler map (executor.ts) is typed from it. */
export const OPENAI_COMPATIBLE_JOB_TYPES = ['model_inference_run'] as const satisfies readonly JobType[];

export const openAiCompatibleModule: ExecutorModule<(typeof OPENAI_COMPATIBLE_JOB_TYPES)[number]> = {
  name: 'openai-compatible',
  description:
    'LLM inference with structured output on an OpenAI-compatible model server in the data plane (vLLM, TGI, llama.cpp, Ollama)',
  jobTypes: OPENAI_COMPATIBLE_JOB_TYPES,
  env: OpenAiCompatibleEnv,
  createExecutor: async (env) => {
    const config = loadOpenAiCompatibleConfig(env);
    const { OpenAiCompatibleExecutor } = await import('./executor.ts');
    return new OpenAiCompatibleExecutor(config);
  },
};

export const createExecutor = openAiCompatibleModule.createExecutor;
