/**
 * The daemon's configuration: one zod schema over the environment (and env files), parsed once,
 * frozen; every issue is reported at once, with the variable's name. Durations end in `_MS`.
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { DataPlaneId, ExecutorId } from '../contract/index.ts';
import {
  ConfigError,
  type Env,
  envInt,
  HostPort,
  envPairs as pairs,
  parseEnvConfig,
  readSecretFile,
} from '../lib/config.ts';
import { registerSecret } from '../lib/secrets.ts';

const list = z.string().transform((s) =>
  s
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean),
);

export const DaemonEnv = z.object({
  /** Base URL of the control plane. */
  DPO_CONTROL_PLANE_URL: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:8700'),
  /** The operator token (prefer DPO_TOKEN_FILE: a mounted secret). */
  DPO_TOKEN: z.string().min(1).optional(),
  DPO_TOKEN_FILE: z.string().min(1).optional(),
  /** The data plane this operator serves; the token must be bound to it. */
  DPO_DATA_PLANE_ID: DataPlaneId,
  /** This process's executor id; default `<hostname>-<pid>`. */
  DPO_EXECUTOR_ID: ExecutorId.optional(),
  /** Enabled executors: built-in names or paths to modules exporting `createExecutor`. */
  DPO_EXECUTORS: list.pipe(z.array(z.string().min(1)).min(1, 'enable at least one executor')),
  /** Which executor takes a type that two enabled executors serve: `type=executor,…`. */
  DPO_ROUTES: pairs(z.string().min(1)).default({}),
  /** Jobs in flight at once, all executors together. */
  DPO_CONCURRENCY: envInt(1, 100_000).default(50),
  /** Per-executor limits: `executor=n,…`. */
  DPO_EXECUTOR_CONCURRENCY: pairs(envInt(1, 100_000)).default({}),
  /** Longest a poll waits at the control plane for work. */
  DPO_POLL_WAIT_MS: envInt(0, 60_000).default(20_000),
  /** How often progress of held jobs reaches the control plane, at most. */
  DPO_PROGRESS_INTERVAL_MS: envInt(100, 60_000).default(2_000),
  /** On SIGTERM, how long running jobs may finish before they are released. */
  DPO_DRAIN_TIMEOUT_MS: envInt(0, 86_400_000).default(60_000),
  /** Default job timeout, and overrides per type: `type=ms,…`. */
  DPO_JOB_TIMEOUT_MS: envInt(1, 7 * 86_400_000).default(6 * 3_600_000),
  DPO_JOB_TIMEOUTS_MS: pairs(envInt(1, 7 * 86_400_000)).default({}),
  /** Timeout of one control-plane request (beyond a long-poll wait). */
  DPO_REQUEST_TIMEOUT_MS: envInt(100, 300_000).default(10_000),
  DPO_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** Health and metrics endpoint; `off` disables it. */
  DPO_METRICS_LISTEN: z.union([z.literal('off'), HostPort]).default({ host: '127.0.0.1', port: 9464 }),
});

export type DaemonEnv = z.infer<typeof DaemonEnv>;

export interface DaemonConfig extends DaemonEnv {
  token: string;
  executorId: string;
}

/** Parses the daemon's configuration; throws a ConfigError listing every issue. */
export function loadDaemonConfig(env: Env): Readonly<DaemonConfig> {
  const issues: string[] = [];
  let parsed: DaemonEnv | undefined;
  try {
    parsed = parseEnvConfig(DaemonEnv, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    issues.push(...err.issues);
  }
  let token: string | undefined;
  const tokenValue = env.DPO_TOKEN || undefined;
  const tokenFile = env.DPO_TOKEN_FILE || undefined;
  if (tokenValue && tokenFile) issues.push('DPO_TOKEN, DPO_TOKEN_FILE: set one, not both');
  else if (tokenFile) {
    try {
      token = readSecretFile(tokenFile, 'DPO_TOKEN_FILE');
    } catch (err) {
      issues.push(...(err as ConfigError).issues);
    }
  } else if (tokenValue) {
    token = tokenValue;
    registerSecret(tokenValue);
  } else issues.push('DPO_TOKEN_FILE: required (or DPO_TOKEN): the operator token for the control plane');
  if (issues.length > 0 || parsed === undefined || token === undefined) throw new ConfigError(issues);
  return Object.freeze({
    ...parsed,
    token,
    executorId: parsed.DPO_EXECUTOR_ID ?? `${hostname().replace(/[^A-Za-z0-9._-]/g, '-')}-${process.pid}`,
  });
}
