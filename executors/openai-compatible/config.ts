/**
 * The openai-compatible executor's configuration: a model server inside the data plane (vLLM, TGI,
 * llama.cpp server, Ollama) that serves the OpenAI chat-completions API.
 */
import { z } from 'zod';
import { loadModelMap, type ModelMap, type ModelMapJson } from '../../src/executor/inference/models.ts';
import { type Env, envInt, parseEnvConfig, readSecretFile } from '../../src/lib/config.ts';

/** The shipped map: the open-weight models a vLLM server names by their Hugging Face ids. */
export const OPENAI_COMPAT_DEFAULT_MODELS: ModelMapJson = {
  'openai.gpt-oss-120b': 'openai/gpt-oss-120b',
  'openai.gpt-oss-20b': 'openai/gpt-oss-20b',
};

export const OpenAiCompatibleEnv = z.object({
  /** The server's OpenAI API base, up to and including `/v1`: `http://vllm.models.svc:8000/v1`. */
  DPO_OPENAI_COMPAT_BASE_URL: z.url({ protocol: /^https?$/ }),
  /** A file holding the API key (sent as `Authorization: Bearer`); unset for servers without one. */
  DPO_OPENAI_COMPAT_API_KEY_FILE: z.string().min(1).optional(),
  /** The model map's override: a JSON object, name → server model name or {id, structured_output, concurrency}. */
  DPO_OPENAI_COMPAT_MODELS: z.string().min(1).optional(),
  /** …or the same JSON in a file. */
  DPO_OPENAI_COMPAT_MODELS_FILE: z.string().min(1).optional(),
  /** `native` (response_format json_schema) or `tool` (one forced function), unless the map says. */
  DPO_OPENAI_COMPAT_STRUCTURED_OUTPUT: z.enum(['native', 'tool']).default('native'),
  /** Calls in flight per model from this operator, unless the map says otherwise. */
  DPO_OPENAI_COMPAT_MODEL_CONCURRENCY: envInt(1, 10_000).default(2),
  /** One chat completion, retries included (also bounded by the job's deadline). */
  DPO_OPENAI_COMPAT_REQUEST_TIMEOUT_MS: envInt(100, 3_600_000).default(300_000),
  /** Attempts per call on 429, 502, 503, 504 and connection errors (backoff with full jitter). */
  DPO_OPENAI_COMPAT_MAX_ATTEMPTS: envInt(1, 10).default(3),
});

export interface OpenAiCompatibleConfig {
  /** Without a trailing slash. */
  baseUrl: string;
  apiKey: string | undefined;
  models: ModelMap;
  requestTimeoutMs: number;
  maxAttempts: number;
}

export function loadOpenAiCompatibleConfig(env: Env): OpenAiCompatibleConfig {
  const e = parseEnvConfig(OpenAiCompatibleEnv, env);
  return {
    baseUrl: e.DPO_OPENAI_COMPAT_BASE_URL.replace(/\/+$/, ''),
    apiKey: e.DPO_OPENAI_COMPAT_API_KEY_FILE
      ? readSecretFile(e.DPO_OPENAI_COMPAT_API_KEY_FILE, 'DPO_OPENAI_COMPAT_API_KEY_FILE')
      : undefined,
    models: loadModelMap({
      defaults: OPENAI_COMPAT_DEFAULT_MODELS,
      overrideJson: e.DPO_OPENAI_COMPAT_MODELS,
      overrideFile: e.DPO_OPENAI_COMPAT_MODELS_FILE,
      jsonVar: 'DPO_OPENAI_COMPAT_MODELS',
      fileVar: 'DPO_OPENAI_COMPAT_MODELS_FILE',
      defaultMode: e.DPO_OPENAI_COMPAT_STRUCTURED_OUTPUT,
      defaultConcurrency: e.DPO_OPENAI_COMPAT_MODEL_CONCURRENCY,
    }),
    requestTimeoutMs: e.DPO_OPENAI_COMPAT_REQUEST_TIMEOUT_MS,
    maxAttempts: e.DPO_OPENAI_COMPAT_MAX_ATTEMPTS,
  };
}
