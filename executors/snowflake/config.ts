/**
 * The Snowflake executor's configuration (the `snowflake.env` profile): every variable it reads, as
 * one zod schema, and every check `config check` runs without connecting (account, user, role,
 * database, warehouses, the key file and its passphrase, the authenticator). Secrets are files: the
 * private key (and its passphrase), the OAuth token; a password only for development (a warning).
 */
import { createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import type { JobType } from '../../src/catalogue/index.ts';
import { ConfigError, type Env, envInt, envPairs, parseEnvConfig } from '../../src/lib/config.ts';
import { registerSecret } from '../../src/lib/secrets.ts';

/** A Snowflake identifier the operator puts in SQL (always quoted, so exactly as written). */
const Identifier = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_$]{0,254}$/, 'expected a Snowflake identifier (letters, digits, _ and $)');
/** `{company_id}` / `{dataset_id}` placeholders in an identifier. */
const Pattern = z
  .string()
  .regex(
    /^[A-Za-z_{][A-Za-z0-9_${}]*$/,
    'expected an identifier pattern such as COMPANY_{company_id} (letters, digits, _, $ and placeholders)',
  );

/**
 * The job types this executor serves, declared once (here rather than in index.ts because the
 * DPO_SNOWFLAKE_WAREHOUSES check below reads it, and index.ts imports this file): the module
 * exports it as its `jobTypes`, and its handler map (executor.ts) is typed from it.
 */
export const SNOWFLAKE_JOB_TYPES = [
  'datasets_create_table',
  'datasets_delete_table',
  'datasets_truncate_table',
  'datasets_sample',
  'datasets_calculate_column_stats',
  'datasets_execute_dml',
  'models_train_classifier',
] as const satisfies readonly JobType[];

export const SnowflakeEnv = z.object({
  /** Account identifier, `<org>-<account>` (or the legacy locator, e.g. `xy12345.eu-west-1`). */
  DPO_SNOWFLAKE_ACCOUNT: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$/, 'expected an account identifier such as myorg-myaccount'),
  /** The operator's user (a service user with a registered RSA public key). */
  DPO_SNOWFLAKE_USER: Identifier,
  /** The role every session uses (see the README for its grants). */
  DPO_SNOWFLAKE_ROLE: Identifier,
  /** The database holding the companies' dataset schemas and the operator's own schema. */
  DPO_SNOWFLAKE_DATABASE: Identifier,
  /** The default warehouse… */
  DPO_SNOWFLAKE_WAREHOUSE: Identifier,
  /** …and per job type: `datasets_calculate_column_stats=STATS_WH,models_train_classifier=ML_WH`. */
  DPO_SNOWFLAKE_WAREHOUSES: envPairs(Identifier).default({}),
  /** SNOWFLAKE_JWT (key pair, the default), OAUTH (token file) or SNOWFLAKE (password: development only). */
  DPO_SNOWFLAKE_AUTHENTICATOR: z.enum(['SNOWFLAKE_JWT', 'OAUTH', 'SNOWFLAKE']).default('SNOWFLAKE_JWT'),
  /** Key pair: the PKCS#8 private key (PEM), a mounted file; encrypted keys need the passphrase file. */
  DPO_SNOWFLAKE_PRIVATE_KEY_FILE: z.string().min(1).optional(),
  DPO_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE: z.string().min(1).optional(),
  /** OAUTH: a file holding the access token (re-read at each new connection, so it can be rotated). */
  DPO_SNOWFLAKE_OAUTH_TOKEN_FILE: z.string().min(1).optional(),
  /** SNOWFLAKE authenticator: the password. Development only (`config check` warns). */
  DPO_SNOWFLAKE_PASSWORD: z.string().min(1).optional(),
  /** The endpoint, when not https://<account>.snowflakecomputing.com (private link, a local fake). */
  DPO_SNOWFLAKE_URL: z.url().optional(),
  /** Where a company's dataset tables live: schema and table name patterns (in DPO_SNOWFLAKE_DATABASE). */
  DPO_SNOWFLAKE_DATASET_SCHEMA: Pattern.default('COMPANY_{company_id}'),
  DPO_SNOWFLAKE_DATASET_TABLE: Pattern.default('DATASET_{dataset_id}'),
  /** The operator's own schema: samples, column statistics, classifier models. */
  DPO_SNOWFLAKE_OPERATOR_SCHEMA: Identifier.default('NARRATIVE_OPERATOR'),
  /** datasets_delete_table drops tables that are not narrative-managed only when this is true. */
  DPO_SNOWFLAKE_ALLOW_DROP_UNMANAGED: z.enum(['true', 'false']).default('false'),
  /** datasets_sample: rows kept when the job does not say, and the most it may ask. */
  DPO_SNOWFLAKE_SAMPLE_ROWS: envInt(1, 100_000).default(1_000),
  DPO_SNOWFLAKE_MAX_SAMPLE_ROWS: envInt(1, 1_000_000).default(100_000),
  /** Histogram buckets for numeric columns (datasets_calculate_column_stats). */
  DPO_SNOWFLAKE_HISTOGRAM_BINS: envInt(1, 1_000).default(10),
  /** Caps on what the operator fetches back from one statement. */
  DPO_SNOWFLAKE_MAX_RESULT_ROWS: envInt(1, 1_000_000).default(10_000),
  DPO_SNOWFLAKE_MAX_RESULT_BYTES: envInt(1_024, 1_073_741_824).default(16_777_216),
  /** Connections in the pool; default: the executor's concurrency (DPO_EXECUTOR_CONCURRENCY, else DPO_CONCURRENCY). */
  DPO_SNOWFLAKE_POOL_SIZE: envInt(1, 1_000).optional(),
  /** Query status polling: first interval, growing (jittered) to the maximum (30 s: ~240 status calls per hour-long statement; bench poll-cost). */
  DPO_SNOWFLAKE_POLL_MIN_MS: envInt(10, 600_000).default(500),
  DPO_SNOWFLAKE_POLL_MAX_MS: envInt(10, 600_000).default(30_000),
  /** While a cancel is confirmed: run SYSTEM$CANCEL_QUERY again when the query has not ended after this long. */
  DPO_SNOWFLAKE_CANCEL_WAIT_MS: envInt(100, 3_600_000).default(30_000),
  /** One HTTP request of the driver (login, submit, status, result). */
  DPO_SNOWFLAKE_REQUEST_TIMEOUT_MS: envInt(100, 600_000).default(60_000),
});
export type SnowflakeEnv = z.infer<typeof SnowflakeEnv>;

export const SNOWFLAKE_SECRET_VARS = ['DPO_SNOWFLAKE_PASSWORD'] as const;

export type Auth =
  | { kind: 'SNOWFLAKE_JWT'; privateKeyFile: string; passphraseFile?: string | undefined }
  | { kind: 'OAUTH'; tokenFile: string }
  | { kind: 'SNOWFLAKE'; password: string };

export interface SnowflakeConfig {
  account: string;
  user: string;
  role: string;
  database: string;
  warehouse: string;
  warehouses: Record<string, string>;
  auth: Auth;
  accessUrl?: string | undefined;
  datasetSchema: string;
  datasetTable: string;
  operatorSchema: string;
  allowDropUnmanaged: boolean;
  sampleRows: number;
  maxSampleRows: number;
  histogramBins: number;
  maxResultRows: number;
  maxResultBytes: number;
  poolSize: number;
  pollMinMs: number;
  pollMaxMs: number;
  cancelWaitMs: number;
  requestTimeoutMs: number;
}

const PLACEHOLDER = /\{([a-z_]+)\}/g;

function checkPattern(name: string, pattern: string, allowed: string[], issues: string[]) {
  for (const m of pattern.matchAll(PLACEHOLDER)) {
    if (!allowed.includes(m[1] as string)) {
      issues.push(
        `${name}: unknown placeholder {${m[1]}} (allowed: ${allowed.map((a) => `{${a}}`).join(', ')})`,
      );
    }
  }
  if (pattern.replace(PLACEHOLDER, '').includes('{') || pattern.replace(PLACEHOLDER, '').includes('}')) {
    issues.push(`${name}: unbalanced braces in '${pattern}'`);
  }
}

/** Parses and checks everything without touching the network; throws ConfigError with every issue. */
export function loadSnowflakeConfig(env: Env): SnowflakeConfig {
  const e = parseEnvConfig(SnowflakeEnv, env);
  const issues: string[] = [];
  for (const type of Object.keys(e.DPO_SNOWFLAKE_WAREHOUSES)) {
    if (!SNOWFLAKE_JOB_TYPES.includes(type as never)) {
      issues.push(
        `DPO_SNOWFLAKE_WAREHOUSES: '${type}' is not a Snowflake job type (${SNOWFLAKE_JOB_TYPES.join(', ')})`,
      );
    }
  }
  checkPattern('DPO_SNOWFLAKE_DATASET_SCHEMA', e.DPO_SNOWFLAKE_DATASET_SCHEMA, ['company_id'], issues);
  checkPattern(
    'DPO_SNOWFLAKE_DATASET_TABLE',
    e.DPO_SNOWFLAKE_DATASET_TABLE,
    ['company_id', 'dataset_id'],
    issues,
  );
  if (!e.DPO_SNOWFLAKE_DATASET_TABLE.includes('{dataset_id}')) {
    issues.push('DPO_SNOWFLAKE_DATASET_TABLE: must contain {dataset_id} (one table per dataset)');
  }
  if (e.DPO_SNOWFLAKE_SAMPLE_ROWS > e.DPO_SNOWFLAKE_MAX_SAMPLE_ROWS) {
    issues.push('DPO_SNOWFLAKE_SAMPLE_ROWS: above DPO_SNOWFLAKE_MAX_SAMPLE_ROWS');
  }
  let auth: Auth | undefined;
  const kind = e.DPO_SNOWFLAKE_AUTHENTICATOR;
  if (kind === 'SNOWFLAKE_JWT') {
    if (!e.DPO_SNOWFLAKE_PRIVATE_KEY_FILE) {
      issues.push('DPO_SNOWFLAKE_PRIVATE_KEY_FILE: required with the SNOWFLAKE_JWT authenticator (key pair)');
    } else {
      auth = {
        kind,
        privateKeyFile: e.DPO_SNOWFLAKE_PRIVATE_KEY_FILE,
        passphraseFile: e.DPO_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE,
      };
      // When the files are here (at run time, or a local check), the key must open with the passphrase.
      const why = keyProblem(auth);
      if (why) issues.push(why);
    }
  } else if (kind === 'OAUTH') {
    if (!e.DPO_SNOWFLAKE_OAUTH_TOKEN_FILE) {
      issues.push('DPO_SNOWFLAKE_OAUTH_TOKEN_FILE: required with the OAUTH authenticator');
    } else auth = { kind, tokenFile: e.DPO_SNOWFLAKE_OAUTH_TOKEN_FILE };
  } else if (!e.DPO_SNOWFLAKE_PASSWORD) {
    issues.push('DPO_SNOWFLAKE_PASSWORD: required with the SNOWFLAKE (password) authenticator');
  } else auth = { kind, password: e.DPO_SNOWFLAKE_PASSWORD };
  if (kind !== 'SNOWFLAKE' && e.DPO_SNOWFLAKE_PASSWORD) {
    issues.push(`DPO_SNOWFLAKE_PASSWORD: set, but the authenticator is ${kind}; remove it`);
  }
  if (issues.length > 0 || auth === undefined) throw new ConfigError(issues);
  return {
    account: e.DPO_SNOWFLAKE_ACCOUNT,
    user: e.DPO_SNOWFLAKE_USER,
    role: e.DPO_SNOWFLAKE_ROLE,
    database: e.DPO_SNOWFLAKE_DATABASE,
    warehouse: e.DPO_SNOWFLAKE_WAREHOUSE,
    warehouses: e.DPO_SNOWFLAKE_WAREHOUSES,
    auth,
    accessUrl: e.DPO_SNOWFLAKE_URL,
    datasetSchema: e.DPO_SNOWFLAKE_DATASET_SCHEMA,
    datasetTable: e.DPO_SNOWFLAKE_DATASET_TABLE,
    operatorSchema: e.DPO_SNOWFLAKE_OPERATOR_SCHEMA,
    allowDropUnmanaged: e.DPO_SNOWFLAKE_ALLOW_DROP_UNMANAGED === 'true',
    sampleRows: e.DPO_SNOWFLAKE_SAMPLE_ROWS,
    maxSampleRows: e.DPO_SNOWFLAKE_MAX_SAMPLE_ROWS,
    histogramBins: e.DPO_SNOWFLAKE_HISTOGRAM_BINS,
    maxResultRows: e.DPO_SNOWFLAKE_MAX_RESULT_ROWS,
    maxResultBytes: e.DPO_SNOWFLAKE_MAX_RESULT_BYTES,
    poolSize: e.DPO_SNOWFLAKE_POOL_SIZE ?? concurrencyOf(env),
    pollMinMs: e.DPO_SNOWFLAKE_POLL_MIN_MS,
    pollMaxMs: Math.max(e.DPO_SNOWFLAKE_POLL_MIN_MS, e.DPO_SNOWFLAKE_POLL_MAX_MS),
    cancelWaitMs: e.DPO_SNOWFLAKE_CANCEL_WAIT_MS,
    requestTimeoutMs: e.DPO_SNOWFLAKE_REQUEST_TIMEOUT_MS,
  };
}

/** The executor's concurrency as the daemon reads it (its per-executor limit, else the global one). */
function concurrencyOf(env: Env): number {
  const per = /(?:^|,)\s*snowflake\s*=\s*(\d+)/.exec(env.DPO_EXECUTOR_CONCURRENCY ?? '');
  const n = Number(per?.[1] ?? env.DPO_CONCURRENCY ?? 50);
  return Number.isSafeInteger(n) && n > 0 ? Math.min(n, 1_000) : 50;
}

/** Why the key cannot be used, when its files are present; undefined when fine or not mounted here. */
function keyProblem(auth: Extract<Auth, { kind: 'SNOWFLAKE_JWT' }>): string | undefined {
  if (!existsSync(auth.privateKeyFile)) return undefined;
  if (auth.passphraseFile && !existsSync(auth.passphraseFile)) return undefined;
  try {
    createPrivateKey({
      key: readFileSync(auth.privateKeyFile),
      format: 'pem',
      passphrase: readPassphrase(auth),
    });
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    // Never the key's or the passphrase's content: only what is wrong.
    if (/BAD_DECRYPT|PASSPHRASE|bad decrypt/i.test(`${code} ${(err as Error).message}`)) {
      return `DPO_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE: the passphrase does not open ${auth.privateKeyFile}`;
    }
    return `DPO_SNOWFLAKE_PRIVATE_KEY_FILE: ${auth.privateKeyFile} is not a PEM private key (${code || 'unreadable'})`;
  }
}

export function readPassphrase(auth: Extract<Auth, { kind: 'SNOWFLAKE_JWT' }>): string | undefined {
  if (!auth.passphraseFile) return undefined;
  const passphrase = readFileSync(auth.passphraseFile, 'utf8').replace(/\r?\n$/, '');
  registerSecret(passphrase);
  return passphrase;
}

/** What `config check` says about a valid configuration that deserves attention. */
export function snowflakeConfigWarnings(env: Env): string[] {
  const warnings: string[] = [];
  const auth = (env.DPO_SNOWFLAKE_AUTHENTICATOR ?? 'SNOWFLAKE_JWT') as Auth['kind'];
  if (auth === 'SNOWFLAKE') {
    warnings.push(
      'DPO_SNOWFLAKE_AUTHENTICATOR: password authentication is for development only; use SNOWFLAKE_JWT (key pair) in production',
    );
  }
  for (const name of [
    'DPO_SNOWFLAKE_PRIVATE_KEY_FILE',
    'DPO_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE',
    'DPO_SNOWFLAKE_OAUTH_TOKEN_FILE',
  ]) {
    const path = env[name];
    if (path && !existsSync(path))
      warnings.push(`${name}: ${path} does not exist here (fine if it is mounted at run time)`);
  }
  if (env.DPO_SNOWFLAKE_ALLOW_DROP_UNMANAGED === 'true') {
    warnings.push(
      'DPO_SNOWFLAKE_ALLOW_DROP_UNMANAGED: datasets_delete_table may drop tables the operator did not create',
    );
  }
  return warnings;
}
