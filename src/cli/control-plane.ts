/**
 * `dataplane-operator control-plane`: the bundled control plane as a long-running server.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { type OperatorToken, startControlPlane } from '../control-plane/server.ts';
import { ConfigError, mergeEnv, parseEnvConfig, readSecretFile } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { ControlPlaneEnv } from './env.ts';
import { logDestination } from './pretty-log.ts';

export { ControlPlaneEnv };

const TokensFile = z.object({
  admin_tokens: z.array(z.string().min(16)).default([]),
  operator_tokens: z
    .array(
      z.object({ token: z.string().min(16), data_plane_id: z.string().min(1), name: z.string().optional() }),
    )
    .default([]),
});

export interface TokenSet {
  adminTokens: string[];
  operatorTokens: OperatorToken[];
  /** Set when tokens were generated for local use: where they were written. */
  generatedIn?: string;
}

/** The local data plane the generated dev operator token is bound to. */
export const DEV_DATA_PLANE_ID = 'dp-local';

/**
 * Loads tokens from the configured files. When none is configured, generates an admin token and an
 * operator token for `dp-local` once, in `<data dir>/admin.token` and `operator.token` (mode 0600),
 * and reuses them on later starts: a local control plane needs no setup, and no secret is printed.
 */
export function loadTokens(cfg: z.infer<typeof ControlPlaneEnv>): TokenSet {
  const adminTokens: string[] = [];
  const operatorTokens: OperatorToken[] = [];
  if (cfg.DPO_CP_TOKENS_FILE) {
    let parsed: z.infer<typeof TokensFile>;
    try {
      parsed = TokensFile.parse(JSON.parse(readFileSync(cfg.DPO_CP_TOKENS_FILE, 'utf8')));
    } catch (err) {
      throw new ConfigError([`DPO_CP_TOKENS_FILE: ${cfg.DPO_CP_TOKENS_FILE}: ${(err as Error).message}`]);
    }
    adminTokens.push(...parsed.admin_tokens);
    operatorTokens.push(...parsed.operator_tokens);
  }
  if (cfg.DPO_CP_ADMIN_TOKEN_FILE) {
    adminTokens.push(readSecretFile(cfg.DPO_CP_ADMIN_TOKEN_FILE, 'DPO_CP_ADMIN_TOKEN_FILE'));
  }
  if (cfg.DPO_CP_OPERATOR_TOKEN_FILES) {
    for (const pair of cfg.DPO_CP_OPERATOR_TOKEN_FILES.split(',')) {
      const [dp, file] = pair.split('=').map((s) => s.trim());
      if (!dp || !file) {
        throw new ConfigError([
          `DPO_CP_OPERATOR_TOKEN_FILES: expected data_plane_id=path pairs, got '${pair}'`,
        ]);
      }
      operatorTokens.push({ data_plane_id: dp, token: readSecretFile(file, 'DPO_CP_OPERATOR_TOKEN_FILES') });
    }
  }
  if (adminTokens.length > 0 || operatorTokens.length > 0) return { adminTokens, operatorTokens };

  const dir = resolve(cfg.DPO_DATA_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ensure = (name: string): string => {
    const file = join(dir, name);
    if (existsSync(file)) return readSecretFile(file, name);
    const token = randomBytes(24).toString('base64url');
    writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
    return token;
  };
  return {
    adminTokens: [ensure('admin.token')],
    operatorTokens: [
      { data_plane_id: DEV_DATA_PLANE_ID, token: ensure('operator.token'), name: 'dev-operator' },
    ],
    generatedIn: dir,
  };
}

export function registerControlPlaneCommand(program: Command): void {
  program
    .command('control-plane')
    .description('Run the bundled control plane (HTTP server persisted in SQLite).')
    .option('--env-file <file...>', 'read variables from env files (the environment wins)')
    .option('--listen <host:port>', 'listen address (DPO_CP_LISTEN, default 127.0.0.1:8700)')
    .option('--db <path>', 'SQLite file or :memory: (DPO_CP_DB, default <data dir>/control-plane.db)')
    .option('--data-dir <dir>', 'data directory (DPO_DATA_DIR, default .data)')
    .action(async (opts: { envFile?: string[]; listen?: string; db?: string; dataDir?: string }) => {
      let cfg: z.infer<typeof ControlPlaneEnv>;
      let tokens: TokenSet;
      try {
        const env = { ...mergeEnv(opts.envFile ?? []) };
        if (opts.listen) env.DPO_CP_LISTEN = opts.listen;
        if (opts.db) env.DPO_CP_DB = opts.db;
        if (opts.dataDir) env.DPO_DATA_DIR = opts.dataDir;
        cfg = parseEnvConfig(ControlPlaneEnv, env);
        tokens = loadTokens(cfg);
      } catch (err) {
        if (err instanceof ConfigError) {
          process.stderr.write(`${err.message}\n`);
          process.exit(2);
        }
        throw err;
      }
      const destination = logDestination();
      const log = createLogger({
        level: cfg.DPO_LOG_LEVEL,
        name: 'control-plane',
        ...(destination ? { destination } : {}),
      });
      const dbPath = cfg.DPO_CP_DB ?? join(cfg.DPO_DATA_DIR, 'control-plane.db');
      if (dbPath !== ':memory:') mkdirSync(resolve(dbPath, '..'), { recursive: true });
      const cp = await startControlPlane({
        dbPath,
        host: cfg.DPO_CP_LISTEN.host,
        port: cfg.DPO_CP_LISTEN.port,
        adminTokens: tokens.adminTokens,
        operatorTokens: tokens.operatorTokens,
        leaseTtlMs: cfg.DPO_CP_LEASE_TTL_MS,
        retryBaseMs: cfg.DPO_CP_RETRY_BASE_MS,
        retryMaxMs: cfg.DPO_CP_RETRY_MAX_MS,
        defaultMaxAttempts: cfg.DPO_CP_DEFAULT_MAX_ATTEMPTS,
        maxThrottledRetries: cfg.DPO_CP_MAX_THROTTLED_RETRIES,
        maxBodyBytes: cfg.DPO_CP_MAX_BODY_BYTES,
        eventLogRetentionMs: cfg.DPO_CP_EVENT_LOG_RETENTION_DAYS * 86_400_000,
        logger: log,
      });
      if (tokens.generatedIn) {
        log.info(
          {
            admin_token_file: join(tokens.generatedIn, 'admin.token'),
            operator_token_file: join(tokens.generatedIn, 'operator.token'),
            data_plane_id: DEV_DATA_PLANE_ID,
          },
          'no tokens configured: using local dev tokens (files readable by you only)',
        );
      }
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) process.exit(1);
        stopping = true;
        log.info({ signal }, 'stopping');
        cp.close().then(
          () => process.exit(0),
          (err: unknown) => {
            log.error({ err }, 'stop failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
}
