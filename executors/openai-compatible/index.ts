/** The `openai-compatible` executor module: model_inference_run on a model server in the data plane. */
import { jobTypesFor } from '../../src/catalogue/index.ts';
import type { ExecutorModule } from '../../src/executor/index.ts';
import { loadOpenAiCompatibleConfig, OpenAiCompatibleEnv } from './config.ts';

export const openAiCompatibleModule: ExecutorModule = {
  name: 'openai-compatible',
  description:
    'LLM inference with structured output on an OpenAI-compatible model server in the data plane (vLLM, TGI, llama.cpp, Ollama)',
  jobTypes: jobTypesFor('openai-compatible'),
  env: OpenAiCompatibleEnv,
  createExecutor: async (env) => {
    const config = loadOpenAiCompatibleConfig(env);
    const { OpenAiCompatibleExecutor } = await import('./executor.ts');
    return new OpenAiCompatibleExecutor(config);
  },
};

export const createExecutor = openAiCompatibleModule.createExecutor;
