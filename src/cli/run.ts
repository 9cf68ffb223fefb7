/**
 * `dataplane-operator run`: the operator daemon. SIGTERM/SIGINT drain (stop claiming, let jobs
 * finish up to the drain timeout, release the rest, exit 0); a second signal releases at once and
 * exits. An uncaught error releases what it can and exits 1; a rejected token exits 3; bad config 2.
 * The daemon itself is built from the configuration by the composition root (compose.ts), as `dev`'s.
 */
import type { Command } from 'commander';
import { explainFailure } from '../client/explain.ts';
import { loadDaemonConfig } from '../daemon/config.ts';
import { ConfigError, mergeEnv } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { type ComposedDaemon, closeClient, composeDaemon, startDaemonOps } from './compose.ts';
import { logDestination } from './pretty-log.ts';

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
      const destination = logDestination();
      const log = createLogger({
        level: cfg.DPO_LOG_LEVEL,
        name: 'dataplane-operator',
        ...(destination ? { destination } : {}),
      });
      let composed: ComposedDaemon;
      try {
        composed = await composeDaemon(cfg, env, log);
      } catch (err) {
        if (err instanceof ConfigError) {
          process.stderr.write(`${err.message}\n`);
          process.exit(EXIT_CONFIG);
        }
        throw err;
      }
      const { daemon } = composed;
      const ops = await startDaemonOps(composed);
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
        log.fatal({ err }, 'uncaught error: releasing jobs and exiting');
        void daemon.force().finally(() => process.exit(1));
      };
      process.on('uncaughtException', crash);
      process.on('unhandledRejection', crash);

      try {
        await daemon.start();
      } catch (err) {
        // An executor that cannot open its backend (a DuckDB file another process holds, …): say why
        // on stderr, hold nothing, exit 1.
        log.fatal({ err }, 'could not start');
        log.flush();
        process.stderr.write(`dataplane-operator: could not start: ${(err as Error).message}\n`);
        await daemon.force().catch(() => undefined);
        await closeClient(composed);
        await ops?.close();
        process.exit(1);
      }
      const reason = await daemon.stopped;
      await closeClient(composed);
      await ops?.close();
      if (reason.kind === 'fatal') {
        const e = reason.error;
        const refused = explainFailure(e);
        if (refused?.kind === 'unauthorized' || refused?.kind === 'forbidden') {
          process.stderr.write(
            `dataplane-operator: the control plane at ${cfg.DPO_CONTROL_PLANE_URL} refused the operator token ` +
              `(${refused.short}); check DPO_TOKEN_FILE and DPO_DATA_PLANE_ID\n`,
          );
          process.exit(EXIT_AUTH);
        }
        process.stderr.write(`dataplane-operator: ${e.message}\n`);
        process.exit(1);
      }
      process.exit(0);
    });
}
