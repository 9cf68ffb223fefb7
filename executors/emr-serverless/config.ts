/**
 * The EMR Serverless executor's configuration (the `aws.env` profile): every variable it reads, as
 * one zod schema. Credentials are never read here: the AWS SDK's default chain finds them (IRSA web
 * identity in Kubernetes, an instance profile, or the usual AWS_* variables).
 */
import { z } from 'zod';
import { ConfigError, type Env, envInt, envPairs, parseEnvConfig } from '../../src/lib/config.ts';

const S3Uri = z
  .string()
  .regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/, 'expected s3://bucket[/prefix]');

/**
 * What the runner needs from Spark: Iceberg (bundled with EMR Serverless releases from emr-6.9.0; the
 * jar path is EMR's) and an Iceberg catalog named `glue_catalog` on the AWS Glue Data Catalog, with S3
 * file IO. The runner addresses tables as `glue_catalog.company_<id>.dataset_<id>` (its
 * `spark.dpo.catalog` setting names another catalog). New tables go to their Glue database's location.
 */
export const ICEBERG_GLUE_SPARK_PARAMS = [
  '--conf spark.jars=/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar',
  '--conf spark.sql.extensions=org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions',
  '--conf spark.sql.catalog.glue_catalog=org.apache.iceberg.spark.SparkCatalog',
  '--conf spark.sql.catalog.glue_catalog.catalog-impl=org.apache.iceberg.aws.glue.GlueCatalog',
  '--conf spark.sql.catalog.glue_catalog.io-impl=org.apache.iceberg.aws.s3.S3FileIO',
].join(' ');

/** Executor and driver sizes of the default parameters. */
export const DEFAULT_SIZING_SPARK_PARAMS =
  '--conf spark.executor.cores=4 --conf spark.executor.memory=16g --conf spark.driver.cores=2 --conf spark.driver.memory=8g';

export const EmrServerlessEnv = z.object({
  /** Region of the EMR Serverless application and the bucket; else AWS_REGION. */
  DPO_EMR_REGION: z.string().min(1).optional(),
  /** The EMR Serverless application (Spark) the jobs run on. */
  DPO_EMR_APPLICATION_ID: z.string().regex(/^[0-9a-z]{1,64}$/, 'expected an EMR Serverless application id'),
  /** The role the Spark job runs as (reads the data, writes the results). */
  DPO_EMR_EXECUTION_ROLE_ARN: z
    .string()
    .regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/, 'expected an IAM role ARN'),
  /** Where job specs, results and logs go: `s3://bucket/prefix`. */
  DPO_EMR_S3_URI: S3Uri,
  /** The job runner's entry point (the PySpark script in executors/emr-serverless/runner), in S3. */
  DPO_EMR_ENTRY_POINT: S3Uri,
  /** spark-submit parameters for every job type: sizing, and the Iceberg/Glue catalog the runner reads… */
  DPO_EMR_SPARK_PARAMS: z.string().default(`${DEFAULT_SIZING_SPARK_PARAMS} ${ICEBERG_GLUE_SPARK_PARAMS}`),
  /**
   * …and per type, replacing the default (so a value must carry the catalog settings too): a JSON
   * object `{"forecast": "--conf …"}`.
   */
  DPO_EMR_SPARK_PARAMS_BY_TYPE: z
    .string()
    .transform((s, ctx) => {
      try {
        return z.record(z.string(), z.string()).parse(JSON.parse(s));
      } catch {
        ctx.addIssue({
          code: 'custom',
          message: 'expected a JSON object of job type → spark-submit parameters',
        });
        return z.NEVER;
      }
    })
    .default({}),
  /**
   * Longest one job run may take, counted from its creation; past it the run is cancelled and the job
   * fails TIMEOUT. EMR's executionTimeoutMinutes is the time left until the job's deadline (the
   * daemon's DPO_JOB_TIMEOUT_MS, counted from the job's first start), within this cap.
   */
  DPO_EMR_TIMEOUT_MS: envInt(60_000, 7 * 86_400_000).default(4 * 3_600_000),
  /** Per-type overrides: `type=ms,…`. */
  DPO_EMR_TIMEOUTS_MS: envPairs(envInt(1, 7 * 86_400_000)).default({}),
  /** GetJobRun polling: first interval, growing (jittered) to the maximum. */
  DPO_EMR_POLL_MIN_MS: envInt(10, 600_000).default(2_000),
  DPO_EMR_POLL_MAX_MS: envInt(10, 600_000).default(30_000),
  /** CancelJobRun's shutdownGracePeriodInSeconds. */
  DPO_EMR_CANCEL_GRACE_SECONDS: envInt(0, 3_600).default(120),
  /**
   * While a cancel (or timeout) is confirmed: ask CancelJobRun again when the run has not ended after
   * this long. The confirmation itself never gives up while the lease is held (failed calls are
   * retried with backoff); the job is reported cancelled only once EMR says the run ended.
   */
  DPO_EMR_CANCEL_WAIT_MS: envInt(100, 3_600_000).default(600_000),
  /** One AWS API call, including the SDK's own retries. */
  DPO_EMR_REQUEST_TIMEOUT_MS: envInt(100, 300_000).default(30_000),
  /** Attempts per AWS API call (the SDK's standard retry: exponential backoff with jitter). */
  DPO_EMR_MAX_ATTEMPTS: envInt(1, 10).default(4),
  /** nql-forecast: most rows the runner returns. */
  DPO_EMR_MAX_RESULT_ROWS: envInt(1, 1_000_000).default(10_000),
  /** Path-style S3 addressing, for S3-compatible servers and local fakes. */
  DPO_EMR_S3_FORCE_PATH_STYLE: z.enum(['true', 'false']).default('false'),
  // Read by the AWS SDK itself; listed so `config check` knows them.
  AWS_REGION: z.string().min(1).optional(),
  AWS_PROFILE: z.string().min(1).optional(),
  AWS_ROLE_ARN: z.string().min(1).optional(),
  AWS_WEB_IDENTITY_TOKEN_FILE: z.string().min(1).optional(),
  AWS_ENDPOINT_URL_EMR_SERVERLESS: z.url().optional(),
  AWS_ENDPOINT_URL_S3: z.url().optional(),
  AWS_ACCESS_KEY_ID: z.string().min(1).optional(),
  AWS_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  AWS_SESSION_TOKEN: z.string().min(1).optional(),
});

export const EMR_SECRET_VARS = ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'] as const;

export interface EmrConfig {
  region: string;
  applicationId: string;
  executionRoleArn: string;
  bucket: string;
  prefix: string;
  entryPoint: string;
  sparkParams: string;
  sparkParamsByType: Record<string, string>;
  timeoutMs: number;
  timeoutsMs: Record<string, number>;
  pollMinMs: number;
  pollMaxMs: number;
  cancelGraceSeconds: number;
  cancelWaitMs: number;
  requestTimeoutMs: number;
  maxAttempts: number;
  forcePathStyle: boolean;
  maxResultRows: number;
  /** Endpoint overrides, when set (tests and local fakes). */
  emrEndpoint?: string | undefined;
  s3Endpoint?: string | undefined;
}

export function loadEmrConfig(env: Env): EmrConfig {
  const e = parseEnvConfig(EmrServerlessEnv, env);
  const region = e.DPO_EMR_REGION ?? e.AWS_REGION;
  if (!region) {
    throw new ConfigError([
      'DPO_EMR_REGION: set it (or AWS_REGION) to the region of the application and bucket',
    ]);
  }
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(e.DPO_EMR_S3_URI) as RegExpExecArray;
  return {
    region,
    applicationId: e.DPO_EMR_APPLICATION_ID,
    executionRoleArn: e.DPO_EMR_EXECUTION_ROLE_ARN,
    bucket: m[1] as string,
    prefix: (m[2] ?? '').replace(/\/+$/, ''),
    entryPoint: e.DPO_EMR_ENTRY_POINT,
    sparkParams: e.DPO_EMR_SPARK_PARAMS,
    sparkParamsByType: e.DPO_EMR_SPARK_PARAMS_BY_TYPE,
    timeoutMs: e.DPO_EMR_TIMEOUT_MS,
    timeoutsMs: e.DPO_EMR_TIMEOUTS_MS,
    pollMinMs: e.DPO_EMR_POLL_MIN_MS,
    pollMaxMs: Math.max(e.DPO_EMR_POLL_MIN_MS, e.DPO_EMR_POLL_MAX_MS),
    cancelGraceSeconds: e.DPO_EMR_CANCEL_GRACE_SECONDS,
    cancelWaitMs: e.DPO_EMR_CANCEL_WAIT_MS,
    requestTimeoutMs: e.DPO_EMR_REQUEST_TIMEOUT_MS,
    maxAttempts: e.DPO_EMR_MAX_ATTEMPTS,
    forcePathStyle: e.DPO_EMR_S3_FORCE_PATH_STYLE === 'true',
    maxResultRows: e.DPO_EMR_MAX_RESULT_ROWS,
    emrEndpoint: e.AWS_ENDPOINT_URL_EMR_SERVERLESS,
    s3Endpoint: e.AWS_ENDPOINT_URL_S3,
  };
}
