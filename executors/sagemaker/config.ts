/**
 * The SageMaker executor's configuration (the `aws.env` profile): every variable it reads, as one zod
 * schema. AWS credentials are never read here: the AWS SDK's default chain finds them. Hub tokens are
 * read from files named by DPO_HF_CONNECTIONS, at the moment a delivery needs one (a rotated secret is
 * picked up without a restart), and never logged.
 */
import { z } from 'zod';
import { ConfigError, type Env, envInt, parseEnvConfig } from '../../src/lib/config.ts';

const S3Uri = z
  .string()
  .regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/, 'expected s3://bucket[/prefix]');

const json = <T extends z.ZodType>(schema: T, what: string) =>
  z.string().transform((s, ctx): z.infer<T> => {
    try {
      return schema.parse(JSON.parse(s));
    } catch {
      ctx.addIssue({ code: 'custom', message: `expected ${what}` });
      return z.NEVER;
    }
  });

/** One Hub connection: whose namespace the repositories go to, and the mounted token file. */
export const HubConnection = z.object({
  namespace: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$/),
  token_file: z.string().min(1),
});
export type HubConnection = z.infer<typeof HubConnection>;

/** The Hugging Face PyTorch training container (the AWS Deep Learning Container), per region. */
export const DEFAULT_IMAGE_URI =
  '763104351884.dkr.ecr.{region}.amazonaws.com/huggingface-pytorch-training:2.1.0-transformers4.36.0-gpu-py310-cu121-ubuntu20.04';

export const SageMakerEnv = z.object({
  /** Region of the training jobs and the bucket; else AWS_REGION. */
  DPO_SAGEMAKER_REGION: z.string().min(1).optional(),
  /** The role the training job runs as (reads the dataset and the script, writes output). */
  DPO_SAGEMAKER_ROLE_ARN: z
    .string()
    .regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/, 'expected an IAM role ARN'),
  /** Where output, checkpoints and model manifests go: `s3://bucket/prefix`. */
  DPO_SAGEMAKER_S3_URI: S3Uri,
  /**
   * The training channel of a dataset: a template with {company_id} and {dataset_id}; the data plane
   * exports each dataset there. Default `<DPO_SAGEMAKER_S3_URI>/datasets/{company_id}/{dataset_id}/`.
   */
  DPO_SAGEMAKER_DATASET_URI: z
    .string()
    .regex(/^s3:\/\//, 'expected an s3:// template')
    .optional(),
  /** The reference training script (executors/sagemaker/training), packed as sourcedir.tar.gz, in S3. */
  DPO_SAGEMAKER_SOURCE_URI: S3Uri,
  /** The script inside it. */
  DPO_SAGEMAKER_ENTRY_POINT: z.string().min(1).default('train.py'),
  /** The training image, `{region}` replaced; default the Hugging Face PyTorch training container. */
  DPO_SAGEMAKER_IMAGE_URI: z.string().min(1).default(DEFAULT_IMAGE_URI),
  /** Per-region overrides: a JSON object `{"eu-west-1": "…"}`. */
  DPO_SAGEMAKER_IMAGE_URIS: json(
    z.record(z.string(), z.string().min(1)),
    'a JSON object region → image URI',
  ).default({}),
  /** Instance types a job may ask for, comma-separated; any other is INVALID_INPUT. */
  DPO_SAGEMAKER_INSTANCE_TYPES: z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean),
    )
    .default(['ml.g5.xlarge', 'ml.g5.2xlarge', 'ml.g5.12xlarge', 'ml.p4d.24xlarge']),
  DPO_SAGEMAKER_INSTANCE_COUNT: envInt(1, 64).default(1),
  DPO_SAGEMAKER_VOLUME_GB: envInt(1, 16_384).default(100),
  /** Managed spot training; when on, the job waits for capacity at most DPO_SAGEMAKER_SPOT_MAX_WAIT_MS. */
  DPO_SAGEMAKER_SPOT: z.enum(['true', 'false']).default('false'),
  DPO_SAGEMAKER_SPOT_MAX_WAIT_MS: envInt(60_000, 28 * 86_400_000).default(2 * 86_400_000),
  /** Longest a training job may run (MaxRuntimeInSeconds is the time left until the job's deadline, within this). */
  DPO_SAGEMAKER_MAX_RUNTIME_MS: envInt(60_000, 28 * 86_400_000).default(5 * 86_400_000),
  /**
   * The trained model's id: a template with {company_id}, {name} (the model name as a slug) and
   * {version} (trained_model_version, dots as dashes). Default `company-{company_id}-{name}-v{version}`.
   */
  DPO_SAGEMAKER_MODEL_ID_TEMPLATE: z.string().min(1).default('company-{company_id}-{name}-v{version}'),
  /** Hyperparameters passed to every training job (JSON object of strings), e.g. `{"epochs": "3"}`. */
  DPO_SAGEMAKER_HYPERPARAMETERS: json(z.record(z.string(), z.string()), 'a JSON object of strings').default(
    {},
  ),
  DPO_SAGEMAKER_POLL_MIN_MS: envInt(10, 600_000).default(10_000),
  DPO_SAGEMAKER_POLL_MAX_MS: envInt(10, 600_000).default(60_000),
  /** While confirming a stop: ask StopTrainingJob again if the job has not stopped after this long. */
  DPO_SAGEMAKER_CANCEL_WAIT_MS: envInt(100, 3_600_000).default(300_000),
  /** One AWS API call, including the SDK's own retries. */
  DPO_SAGEMAKER_REQUEST_TIMEOUT_MS: envInt(100, 300_000).default(30_000),
  DPO_SAGEMAKER_MAX_ATTEMPTS: envInt(1, 10).default(4),
  DPO_SAGEMAKER_S3_FORCE_PATH_STYLE: z.enum(['true', 'false']).default('false'),
  /** The Hub's base URL (a private Hub, or a fake in tests). */
  DPO_HF_ENDPOINT: z.url().default('https://huggingface.co'),
  /**
   * The data plane's Hub connections, by the job's connection_id: a JSON object
   * `{"conn-123": {"namespace": "acme", "token_file": "/var/run/secrets/hf/conn-123"}}`.
   */
  DPO_HF_CONNECTIONS: json(
    z.record(z.string(), HubConnection),
    'a JSON object connection_id → {namespace, token_file}',
  ).default({}),
  /** One Hub API call (not an upload). */
  DPO_HF_REQUEST_TIMEOUT_MS: envInt(100, 600_000).default(60_000),
  /** One file's upload to the Hub's storage. */
  DPO_HF_UPLOAD_TIMEOUT_MS: envInt(1_000, 86_400_000).default(3 * 3_600_000),
  /** Attempts per Hub request (429, 5xx and network errors are retried with jittered backoff). */
  DPO_HF_MAX_ATTEMPTS: envInt(1, 20).default(5),
  DPO_HF_RETRY_BASE_MS: envInt(1, 60_000).default(1_000),
  // Read by the AWS SDK itself; listed so `config check` knows them.
  AWS_REGION: z.string().min(1).optional(),
  AWS_PROFILE: z.string().min(1).optional(),
  AWS_ROLE_ARN: z.string().min(1).optional(),
  AWS_WEB_IDENTITY_TOKEN_FILE: z.string().min(1).optional(),
  AWS_ENDPOINT_URL_SAGEMAKER: z.url().optional(),
  AWS_ENDPOINT_URL_S3: z.url().optional(),
  AWS_ACCESS_KEY_ID: z.string().min(1).optional(),
  AWS_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  AWS_SESSION_TOKEN: z.string().min(1).optional(),
});

export const SAGEMAKER_SECRET_VARS = ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'] as const;

export interface SageMakerConfig {
  region: string;
  roleArn: string;
  bucket: string;
  prefix: string;
  datasetUriTemplate: string;
  sourceUri: string;
  entryPoint: string;
  imageUri: string;
  instanceTypes: readonly string[];
  instanceCount: number;
  volumeGb: number;
  spot: boolean;
  spotMaxWaitMs: number;
  maxRuntimeMs: number;
  modelIdTemplate: string;
  hyperparameters: Record<string, string>;
  pollMinMs: number;
  pollMaxMs: number;
  cancelWaitMs: number;
  requestTimeoutMs: number;
  maxAttempts: number;
  forcePathStyle: boolean;
  hubUrl: string;
  connections: Record<string, HubConnection>;
  hubRequestTimeoutMs: number;
  hubUploadTimeoutMs: number;
  hubMaxAttempts: number;
  hubRetryBaseMs: number;
  sagemakerEndpoint?: string | undefined;
  s3Endpoint?: string | undefined;
}

export function loadSageMakerConfig(env: Env): SageMakerConfig {
  const e = parseEnvConfig(SageMakerEnv, env);
  const region = e.DPO_SAGEMAKER_REGION ?? e.AWS_REGION;
  if (!region) {
    throw new ConfigError([
      'DPO_SAGEMAKER_REGION: set it (or AWS_REGION) to the region of the training jobs and bucket',
    ]);
  }
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(e.DPO_SAGEMAKER_S3_URI) as RegExpExecArray;
  const bucket = m[1] as string;
  const prefix = (m[2] ?? '').replace(/\/+$/, '');
  return {
    region,
    roleArn: e.DPO_SAGEMAKER_ROLE_ARN,
    bucket,
    prefix,
    datasetUriTemplate:
      e.DPO_SAGEMAKER_DATASET_URI ??
      `s3://${bucket}/${prefix ? `${prefix}/` : ''}datasets/{company_id}/{dataset_id}/`,
    sourceUri: e.DPO_SAGEMAKER_SOURCE_URI,
    entryPoint: e.DPO_SAGEMAKER_ENTRY_POINT,
    imageUri: (e.DPO_SAGEMAKER_IMAGE_URIS[region] ?? e.DPO_SAGEMAKER_IMAGE_URI).replaceAll(
      '{region}',
      region,
    ),
    instanceTypes: e.DPO_SAGEMAKER_INSTANCE_TYPES,
    instanceCount: e.DPO_SAGEMAKER_INSTANCE_COUNT,
    volumeGb: e.DPO_SAGEMAKER_VOLUME_GB,
    spot: e.DPO_SAGEMAKER_SPOT === 'true',
    spotMaxWaitMs: e.DPO_SAGEMAKER_SPOT_MAX_WAIT_MS,
    maxRuntimeMs: e.DPO_SAGEMAKER_MAX_RUNTIME_MS,
    modelIdTemplate: e.DPO_SAGEMAKER_MODEL_ID_TEMPLATE,
    hyperparameters: e.DPO_SAGEMAKER_HYPERPARAMETERS,
    pollMinMs: e.DPO_SAGEMAKER_POLL_MIN_MS,
    pollMaxMs: Math.max(e.DPO_SAGEMAKER_POLL_MIN_MS, e.DPO_SAGEMAKER_POLL_MAX_MS),
    cancelWaitMs: e.DPO_SAGEMAKER_CANCEL_WAIT_MS,
    requestTimeoutMs: e.DPO_SAGEMAKER_REQUEST_TIMEOUT_MS,
    maxAttempts: e.DPO_SAGEMAKER_MAX_ATTEMPTS,
    forcePathStyle: e.DPO_SAGEMAKER_S3_FORCE_PATH_STYLE === 'true',
    hubUrl: e.DPO_HF_ENDPOINT.replace(/\/+$/, ''),
    connections: e.DPO_HF_CONNECTIONS,
    hubRequestTimeoutMs: e.DPO_HF_REQUEST_TIMEOUT_MS,
    hubUploadTimeoutMs: e.DPO_HF_UPLOAD_TIMEOUT_MS,
    hubMaxAttempts: e.DPO_HF_MAX_ATTEMPTS,
    hubRetryBaseMs: e.DPO_HF_RETRY_BASE_MS,
    sagemakerEndpoint: e.AWS_ENDPOINT_URL_SAGEMAKER,
    s3Endpoint: e.AWS_ENDPOINT_URL_S3,
  };
}

/** A name as a lowercase slug of [a-z0-9-] (model ids, repository names). */
export function slug(s: string): string {
  return (
    s
      .toLowerCase()
      .normalize('NFKD')
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 80) || 'model'
  );
}

/** The trained model's id, per DPO_SAGEMAKER_MODEL_ID_TEMPLATE. */
export function modelId(template: string, companyId: number, name: string, version: string): string {
  return template
    .replaceAll('{company_id}', String(companyId))
    .replaceAll('{name}', slug(name))
    .replaceAll('{version}', version.replace(/[^0-9A-Za-z]+/g, '-'));
}
