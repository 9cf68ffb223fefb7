/**
 * The composition root: the one place that turns configuration into a daemon and its parts. `run`
 * and `dev` both build through here, so a variable means the same in both and an option is wired
 * once: the executors named by DPO_EXECUTORS (built-in modules or module paths, each reading its
 * own variables from the same environment), the routing table, the control-plane client with its
 * retry logging and request metrics, the daemon, and its health and metrics server.
 *
 * Nothing starts here. The caller starts the daemon (which starts the executors) and the health
 * server when it is ready, and stops them; a caller that needs to prepare an executor first (`dev`
 * seeds the local data plane) finds it in `registry.executors`.
 */
import { OperatorClient } from '../client/operator-client.ts';
import { describeError } from '../client/transport.ts';
import { BUILTIN_EXECUTORS } from '../daemon/builtin-executors.ts';
import type { DaemonConfig } from '../daemon/config.ts';
import { Daemon } from '../daemon/daemon.ts';
import { createMetrics, type Metrics } from '../daemon/metrics.ts';
import { type OpsServer, startOpsServer } from '../daemon/ops-server.ts';
import { buildRegistry, loadExecutors, type Registry } from '../daemon/registry.ts';
import type { Env } from '../lib/config.ts';
import type { Logger } from '../lib/logger.ts';

export interface ComposedDaemon {
  readonly config: Readonly<DaemonConfig>;
  /** The enabled executors (not started yet) and which one takes each job type. */
  readonly registry: Registry;
  readonly client: OperatorClient;
  readonly metrics: Metrics;
  readonly daemon: Daemon;
}

/**
 * Builds the daemon described by `config` (from `loadDaemonConfig(env)`); executors read their own
 * variables from `env`. Throws a ConfigError naming the variable when an executor cannot be loaded
 * or configured, or when the routing table is ambiguous.
 */
export async function composeDaemon(
  config: Readonly<DaemonConfig>,
  env: Env,
  logger: Logger,
): Promise<ComposedDaemon> {
  const registry = buildRegistry(
    await loadExecutors(config.DPO_EXECUTORS, BUILTIN_EXECUTORS, env),
    config.DPO_ROUTES,
  );
  const metrics = createMetrics();
  const client = new OperatorClient({
    url: config.DPO_CONTROL_PLANE_URL,
    token: config.token,
    requestTimeoutMs: config.DPO_REQUEST_TIMEOUT_MS,
    onRetry: (path, err, attempt, delay) => {
      metrics.retries.inc({ path });
      logger.debug(
        { path, attempt, delay_ms: delay, err: describeError(err) },
        'retrying control-plane request',
      );
    },
    onRequest: (path, outcome, seconds) => metrics.requests.observe({ path, outcome }, seconds),
  });
  const daemon = new Daemon({
    controlPlane: client,
    registry,
    operatorId: config.executorId,
    dataPlaneId: config.DPO_DATA_PLANE_ID,
    concurrency: config.DPO_CONCURRENCY,
    executorConcurrency: config.DPO_EXECUTOR_CONCURRENCY,
    pollWaitMs: config.DPO_POLL_WAIT_MS,
    progressIntervalMs: config.DPO_PROGRESS_INTERVAL_MS,
    jobTimeoutMs: config.DPO_JOB_TIMEOUT_MS,
    jobTimeoutsMs: config.DPO_JOB_TIMEOUTS_MS,
    logger,
    metrics,
  });
  return { config, registry, client, metrics, daemon };
}

/**
 * Starts the health and metrics endpoint where DPO_METRICS_LISTEN says; undefined when it is `off`.
 * `/healthz` fails when the poll loop started no step for longer than one step can take (the
 * client's attempts × (request timeout + park) and the backoff after them), never sooner than a
 * minute; `/readyz` fails when the control plane has not answered for a park and a request timeout.
 */
export async function startDaemonOps(c: ComposedDaemon): Promise<OpsServer | undefined> {
  const listen = c.config.DPO_METRICS_LISTEN;
  if (listen === 'off') return undefined;
  return startOpsServer({
    ...listen,
    daemon: c.daemon,
    metrics: c.metrics,
    // One poll step is at most the client's attempts × (request timeout + park) plus its backoff.
    staleAfterMs: Math.max(60_000, 4 * (c.config.DPO_REQUEST_TIMEOUT_MS + c.config.DPO_POLL_WAIT_MS + 5_000)),
    // A connected loop is answered at least once per park.
    unreadyAfterMs: c.config.DPO_POLL_WAIT_MS + c.config.DPO_REQUEST_TIMEOUT_MS + 5_000,
  });
}

/** Closes the control-plane client once the daemon has stopped (at once if a request hangs). */
export async function closeClient(c: ComposedDaemon): Promise<void> {
  await c.client.close().catch(() => c.client.destroy());
}
