/**
 * `dataplane-operator run`: the operator daemon. SIGTERM/SIGINT drain (stop claiming, let jobs
 * finish up to the drain timeout, release the rest, exit 0); a second signal releases at once and
 * exits. An uncaught error releases what it can and exits 1; a rejected token exits 3; bad config 2.
 */
import type { Command } from 'commander';
import { OperatorClient } from '../client/operator-client.ts';
import { ApiError } from '../client/transport.ts';
import { BUILTIN_EXECUTORS } from '../daemon/builtin-executors.ts';
import { loadDaemonConfig } from '../daemon/config.ts';
import { Daemon, errorInfo } from '../daemon/daemon.ts';
import { createMetrics } from '../daemon/metrics.ts';
import { startOpsServer } from '../daemon/ops-server.ts';
import { buildRegistry, loadExecutors } from '../daemon/registry.ts';
import { ConfigError, mergeEnv } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';

export const EXIT_CONFIG = 2;
export const EXIT_AUTH = 3;

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('Run the operator daemon: poll the control plane, run jobs, report outcomes.')
    .option('--env-file <file...>', 'read variables from env files (the environment wins)')
    .action(async (opts: { envFile?: string[] }) => {
      let env: ReturnType<typeof mergeEnv>;
      let cfg: ReturnType<typeof loadDaemonConfig>;
      try {
        env = mergeEnv(opts.envFile ?? []);
        cfg = loadDaemonConfig(env);
      } catch (err) {
        if (err instanceof ConfigError) {
          process.stderr.write(`${err.message}\n`);
          process.exit(EXIT_CONFIG);
        }
        throw err;
      }
      const log = createLogger({ level: cfg.DPO_LOG_LEVEL, name: 'dataplane-operator' });
      const metrics = createMetrics();
      let registry: ReturnType<typeof buildRegistry>;
      try {
        registry = buildRegistry(
          await loadExecutors(cfg.DPO_EXECUTORS, BUILTIN_EXECUTORS, env),
          cfg.DPO_ROUTES,
        );
      } catch (err) {
        if (err instanceof ConfigError) {
          process.stderr.write(`${err.message}\n`);
          process.exit(EXIT_CONFIG);
        }
        throw err;
      }
      const client = new OperatorClient({
        url: cfg.DPO_CONTROL_PLANE_URL,
        token: cfg.token,
        requestTimeoutMs: cfg.DPO_REQUEST_TIMEOUT_MS,
        onRetry: (path, err, attempt, delay) => {
          metrics.retries.inc({ path });
          log.debug(
            { path, attempt, delay_ms: delay, err: errorInfo(err) },
            'retrying control-plane request',
          );
        },
        onRequest: (path, outcome, seconds) => metrics.requests.observe({ path, outcome }, seconds),
      });
      const daemon = new Daemon({
        controlPlane: client,
        registry,
        executorId: cfg.executorId,
        dataPlaneId: cfg.DPO_DATA_PLANE_ID,
        concurrency: cfg.DPO_CONCURRENCY,
        executorConcurrency: cfg.DPO_EXECUTOR_CONCURRENCY,
        pollWaitMs: cfg.DPO_POLL_WAIT_MS,
        progressIntervalMs: cfg.DPO_PROGRESS_INTERVAL_MS,
        jobTimeoutMs: cfg.DPO_JOB_TIMEOUT_MS,
        jobTimeoutsMs: cfg.DPO_JOB_TIMEOUTS_MS,
        logger: log,
        metrics,
      });
      const ops =
        cfg.DPO_METRICS_LISTEN === 'off'
          ? undefined
          : await startOpsServer({
              ...cfg.DPO_METRICS_LISTEN,
              daemon,
              metrics,
              staleAfterMs: Math.max(60_000, cfg.DPO_POLL_WAIT_MS * 3),
            });
      if (ops) log.info({ url: ops.url }, 'health and metrics listening');

      let signals = 0;
      const onSignal = (signal: NodeJS.Signals) => {
        signals++;
        if (signals === 1) {
          log.info({ signal }, 'draining (send the signal again to release everything and exit now)');
          void daemon.drain(cfg.DPO_DRAIN_TIMEOUT_MS);
        } else {
          log.warn({ signal }, 'second signal: releasing and exiting now');
          void daemon.force();
        }
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      // Nothing a job carries may end the process silently: log, release what we can, exit 1.
      const crash = (err: unknown) => {
        log.fatal({ err: errorInfo(err) }, 'uncaught error: releasing jobs and exiting');
        void daemon.force().finally(() => process.exit(1));
      };
      process.on('uncaughtException', crash);
      process.on('unhandledRejection', crash);

      await daemon.start();
      const reason = await daemon.stopped;
      await client.close().catch(() => client.destroy());
      await ops?.close();
      if (reason.kind === 'fatal') {
        const e = reason.error;
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
          process.stderr.write(
            `dataplane-operator: the control plane at ${cfg.DPO_CONTROL_PLANE_URL} refused the operator token ` +
              `(${e.status} ${e.code}: ${e.message}); check DPO_TOKEN_FILE and DPO_DATA_PLANE_ID\n`,
          );
          process.exit(EXIT_AUTH);
        }
        process.stderr.write(`dataplane-operator: ${e.message}\n`);
        process.exit(1);
      }
      process.exit(0);
    });
}
