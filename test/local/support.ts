/** A bundled control plane, a daemon and the local data plane on a small synthetic dataset. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LocalConfig } from '../../executors/local/config.ts';
import { LocalExecutor } from '../../executors/local/executor.ts';
import type { Job } from '../../src/contract/index.ts';
import { call, clients, startTestControlPlane, type TestControlPlane } from '../helpers.ts';
import { startTestDaemon, type TestDaemon } from '../support/daemon.ts';

export const ROWS = 60_000;

export function localConfig(dir: string, overrides: Partial<LocalConfig> = {}): LocalConfig {
  return {
    dir,
    queryTimeoutMs: 30_000,
    maxResultRows: 100,
    sampleRows: 100,
    maxSampleRows: 1_000,
    histogramBins: 10,
    threads: 2,
    ...overrides,
  };
}

export interface LocalStack {
  cp: TestControlPlane;
  td: TestDaemon;
  executor: LocalExecutor;
  dir: string;
  submit(type: string, input: unknown, extra?: Record<string, unknown>): Promise<Job>;
  /** Waits until the job is terminal and returns it. */
  settle(id: string, timeoutMs?: number): Promise<Job>;
  get(id: string): Promise<Job>;
  /** Direct SQL on the warehouse: the test's independent view of the data. */
  q(sql: string): Promise<Record<string, unknown>[]>;
  /** Stops the daemon and closes the warehouse; `restart` opens both again on the same directory. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startLocalStack(overrides: Partial<LocalConfig> = {}): Promise<LocalStack> {
  const dir = mkdtempSync(join(tmpdir(), 'dpo-local-'));
  const cp = await startTestControlPlane();
  const config = localConfig(dir, overrides);
  let executor = new LocalExecutor(config);
  await executor.seedDemoData(ROWS);
  let td = await startTestDaemon(cp, { executors: [executor] });
  const c = clients(cp);
  const stack: LocalStack = {
    cp,
    get td() {
      return td;
    },
    get executor() {
      return executor;
    },
    dir,
    submit: (type, input, extra) => c.submit(type, input, extra),
    async get(id) {
      return (await c.user<Job>('GET', `/v1/jobs/${id}`)).body;
    },
    async settle(id, timeoutMs = 25_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`job ${id} did not end in ${timeoutMs} ms`);
        const r = await call<Job>(cp.url, 'GET', `/v1/jobs/${id}/wait?timeout_ms=${Math.min(left, 10_000)}`, {
          token: cp.adminToken,
        });
        if (['completed', 'failed', 'cancelled'].includes(r.body.state)) return r.body;
      }
    },
    q: (sql) => executor.query(sql),
    async restart() {
      await td.stop();
      await executor.close();
      executor = new LocalExecutor(config);
      td = await startTestDaemon(cp, { executors: [executor] });
    },
    async stop() {
      await td.stop();
      await executor.close();
      await cp.close();
    },
  };
  return stack;
}

/** A DuckDB count (bigint) as a number. */
export const n = (v: unknown) => Number(v);
