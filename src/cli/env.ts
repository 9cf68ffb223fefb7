/**
 * The variables of the bundled control plane and of `dev`, as zod schemas, in a module of their own:
 * the configuration schema (config-schema.ts) reads them, and `run` checks names against it at
 * startup, without loading the control plane's server or dev's display (about 5 MB and 200 ms).
 */
import { z } from 'zod';
import { DaemonEnv } from '../daemon/config.ts';
import { envInt, HostPort } from '../lib/config.ts';

/** Every variable the bundled control plane reads. */
export const ControlPlaneEnv = z.object({
  /** Where the server listens; loopback by default. */
  DPO_CP_LISTEN: HostPort.default({ host: '127.0.0.1', port: 8700 }),
  /** Data directory (database and generated dev tokens). */
  DPO_DATA_DIR: z.string().min(1).default('.data'),
  /** SQLite file; default `<data dir>/control-plane.db`; `:memory:` keeps nothing. */
  DPO_CP_DB: z.string().min(1).optional(),
  DPO_CP_ADMIN_TOKEN_FILE: z.string().min(1).optional(),
  /** JSON file: `{"admin_tokens": [...], "operator_tokens": [{"token", "data_plane_id", "name"?}]}`. */
  DPO_CP_TOKENS_FILE: z.string().min(1).optional(),
  /** Operator tokens as `data_plane_id=token_file_path` pairs, comma-separated. */
  DPO_CP_OPERATOR_TOKEN_FILES: z.string().min(1).optional(),
  DPO_CP_LEASE_TTL_MS: envInt(100, 3_600_000).default(30_000),
  DPO_CP_RETRY_BASE_MS: envInt(0, 3_600_000).default(2_000),
  DPO_CP_RETRY_MAX_MS: envInt(0, 86_400_000).default(300_000),
  DPO_CP_DEFAULT_MAX_ATTEMPTS: envInt(1, 100).default(3),
  /** Throttled failures (FailureReport.throttled) whose attempt is given back, per job. */
  DPO_CP_MAX_THROTTLED_RETRIES: envInt(0, 1000).default(20),
  DPO_CP_MAX_BODY_BYTES: envInt(1024, 1024 * 1024 * 1024).default(10 * 1024 * 1024),
  /** Days the job event log (the console's timelines and charts) is kept; 0 keeps it forever. */
  DPO_CP_EVENT_LOG_RETENTION_DAYS: envInt(0, 36_500).default(30),
  DPO_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

/**
 * Where a laptop differs from a deployment, the daemon's settings under `dev`: a few jobs at a time,
 * lively progress, an hour per job, and a Ctrl-C that does not keep anyone waiting a minute. They are
 * variables under the environment and the env files, which still win, and the daemon reads them
 * through the same configuration as `run`.
 */
export const DEV_DAEMON_DEFAULTS = {
  DPO_CONCURRENCY: '8',
  DPO_PROGRESS_INTERVAL_MS: '250',
  DPO_JOB_TIMEOUT_MS: '3600000',
  DPO_DRAIN_TIMEOUT_MS: '10000',
} as const;

/** The variables `dev` reads beyond the control plane's (DPO_DATA_DIR, DPO_CP_LISTEN, tokens…). */
export const DevEnv = z.object({
  /** Rows of the synthetic events dataset (424); changing it regenerates the dataset. */
  DPO_DEV_ROWS: envInt(1, 1_000_000_000).default(2_000_000),
  /** Where `dev` serves health and metrics; `off` disables it. */
  DPO_METRICS_LISTEN: DaemonEnv.shape.DPO_METRICS_LISTEN,
  /** The local data plane's directory; default `<DPO_DATA_DIR>/local`. */
  DPO_LOCAL_DIR: z.string().min(1).optional(),
  DPO_CONCURRENCY: envInt(1, 1_000).default(Number(DEV_DAEMON_DEFAULTS.DPO_CONCURRENCY)),
});
