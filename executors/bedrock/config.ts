/**
 * The Bedrock executor's configuration (the `aws.env` profile). Credentials are never read here: the
 * AWS SDK's default chain finds them (IRSA, an instance profile, the usual AWS_* variables).
 */
import { z } from 'zod';
import { loadModelMap, type ModelMap, type ModelMapJson } from '../../src/executor/inference/models.ts';
import { ConfigError, type Env, envInt, parseEnvConfig } from '../../src/lib/config.ts';

/**
 * The shipped map. `{geo}` is the inference-profile prefix of the region (`us`, `eu`, `apac`): a
 * geographic profile keeps requests in the region's geography, where the `global.` profiles would
 * not. Claude 4.5 models need a profile id (their bare model ids refuse on-demand calls).
 */
export const BEDROCK_DEFAULT_MODELS: ModelMapJson = {
  'anthropic.claude-sonnet-4.5': {
    id: '{geo}.anthropic.claude-sonnet-4-5-20250929-v1:0',
    structured_output: 'native',
  },
  'anthropic.claude-haiku-4.5': {
    id: '{geo}.anthropic.claude-haiku-4-5-20251001-v1:0',
    structured_output: 'native',
  },
  'anthropic.claude-opus-4.1': {
    id: '{geo}.anthropic.claude-opus-4-1-20250805-v1:0',
    structured_output: 'tool',
  },
  'openai.gpt-oss-120b': { id: 'openai.gpt-oss-120b-1:0', structured_output: 'tool' },
  'openai.gpt-oss-20b': { id: 'openai.gpt-oss-20b-1:0', structured_output: 'tool' },
};

export const BedrockEnv = z.object({
  /** Region of the Bedrock Runtime endpoint; else AWS_REGION. */
  DPO_BEDROCK_REGION: z.string().min(1).optional(),
  /** The model map's override: a JSON object, name → id or {id, structured_output, concurrency}. */
  DPO_BEDROCK_MODELS: z.string().min(1).optional(),
  /** …or the same JSON in a file (a mounted ConfigMap). */
  DPO_BEDROCK_MODELS_FILE: z.string().min(1).optional(),
  /** Calls in flight per model from this operator, unless the map says otherwise. */
  DPO_BEDROCK_MODEL_CONCURRENCY: envInt(1, 10_000).default(4),
  /** One Converse call, the SDK's retries included (also bounded by the job's deadline). */
  DPO_BEDROCK_REQUEST_TIMEOUT_MS: envInt(100, 3_600_000).default(300_000),
  /** Attempts per Converse call (the SDK's standard retry: backoff with jitter, throttling included). */
  DPO_BEDROCK_MAX_ATTEMPTS: envInt(1, 10).default(4),
  // Read by the AWS SDK itself; listed so `config check` knows them.
  AWS_REGION: z.string().min(1).optional(),
  AWS_ENDPOINT_URL_BEDROCK_RUNTIME: z.url().optional(),
  AWS_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  AWS_SESSION_TOKEN: z.string().min(1).optional(),
});

/** Read by the SDK: registered as secrets (redacted from logs and failures, `config print`). */
export const BEDROCK_SECRET_VARS = ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'] as const;

export interface BedrockConfig {
  region: string;
  models: ModelMap;
  requestTimeoutMs: number;
  maxAttempts: number;
  endpoint?: string | undefined;
}

/** The inference-profile prefix of a region's geography (us-gov regions: `us-gov`). */
export function geoOf(region: string): string {
  if (region.startsWith('us-gov-')) return 'us-gov';
  if (region.startsWith('us-') || region.startsWith('ca-')) return 'us';
  if (region.startsWith('eu-')) return 'eu';
  if (region.startsWith('ap-')) return 'apac';
  return 'us';
}

export function loadBedrockConfig(env: Env): BedrockConfig {
  const e = parseEnvConfig(BedrockEnv, env);
  const region = e.DPO_BEDROCK_REGION ?? e.AWS_REGION;
  if (!region) {
    throw new ConfigError(['DPO_BEDROCK_REGION: set it (or AWS_REGION) to the region of Bedrock Runtime']);
  }
  return {
    region,
    models: loadModelMap({
      defaults: BEDROCK_DEFAULT_MODELS,
      overrideJson: e.DPO_BEDROCK_MODELS,
      overrideFile: e.DPO_BEDROCK_MODELS_FILE,
      jsonVar: 'DPO_BEDROCK_MODELS',
      fileVar: 'DPO_BEDROCK_MODELS_FILE',
      defaultMode: 'tool',
      defaultConcurrency: e.DPO_BEDROCK_MODEL_CONCURRENCY,
      substitutions: { geo: geoOf(region) },
    }),
    requestTimeoutMs: e.DPO_BEDROCK_REQUEST_TIMEOUT_MS,
    maxAttempts: e.DPO_BEDROCK_MAX_ATTEMPTS,
    endpoint: e.AWS_ENDPOINT_URL_BEDROCK_RUNTIME,
  };
}
