/** Starts an in-process daemon against a test control plane, with the test executor. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { OperatorClient } from '../../src/client/operator-client.ts';
import { type ControlPlane, Daemon, type DaemonOptions } from '../../src/daemon/daemon.ts';
import { createMetrics } from '../../src/daemon/metrics.ts';
import { buildRegistry } from '../../src/daemon/registry.ts';
import type { Executor } from '../../src/executor/index.ts';
import type { TestControlPlane } from '../helpers.ts';
import { createTestExecutor } from './test-executor.ts';

export interface TestDaemon {
  daemon: Daemon;
  client: OperatorClient;
  metrics: ReturnType<typeof createMetrics>;
  /** The test executor's directory. */
  dir: string;
  stop(): Promise<void>;
}

export async function startTestDaemon(
  cp: TestControlPlane,
  overrides: Partial<DaemonOptions> & {
    executors?: Executor[];
    controlPlane?: ControlPlane;
    /** Wraps the control-plane link (a partition, a fault injector). */
    wrapControlPlane?: (inner: ControlPlane) => ControlPlane;
    dir?: string;
  } = {},
): Promise<TestDaemon> {
  const dir = overrides.dir ?? mkdtempSync(join(tmpdir(), 'dpo-exec-'));
  const metrics = createMetrics({ defaultMetrics: false });
  const client = new OperatorClient({
    url: cp.url,
    token: cp.operatorToken,
    retryBaseMs: 20,
    retryCapMs: 200,
    onRequest: (path, outcome, seconds) => metrics.requests.observe({ path, outcome }, seconds),
  });
  const executors = overrides.executors ?? [createTestExecutor(dir)];
  const { wrapControlPlane, executors: _executors, dir: _dir, ...options } = overrides;
  const link = overrides.controlPlane ?? client;
  const controlPlane = wrapControlPlane ? wrapControlPlane(link) : link;
  const daemon = new Daemon({
    registry: buildRegistry(executors, {}),
    operatorId: `test-daemon-${Math.random().toString(36).slice(2, 8)}`,
    dataPlaneId: cp.dataPlaneId,
    concurrency: 20,
    pollWaitMs: 5_000,
    progressIntervalMs: 200,
    jobTimeoutMs: 60_000,
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    metrics,
    ...options,
    controlPlane,
  });
  await daemon.start();
  return {
    daemon,
    client,
    metrics,
    dir,
    async stop() {
      await daemon.force(2_000);
      await client.close();
    },
  };
}
