/**
 * The EMR Serverless executor against protocol-level fakes (EMR Serverless and S3 on 127.0.0.1),
 * through the real AWS SDK clients, with the daemon and the bundled control plane. A guard records
 * every outgoing TCP connection of the test process: only loopback is allowed.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { loadEmrConfig } from '../../executors/emr-serverless/config.ts';
import { EmrServerlessExecutor } from '../../executors/emr-serverless/executor.ts';
import type { Job } from '../../src/contract/index.ts';
import type { ControlPlaneOptions } from '../../src/control-plane/server.ts';
import { type FakeEmr, type FakeEmrOptions, startFakeEmr } from '../fakes/emr-serverless.ts';
import { type FakeS3, startFakeS3 } from '../fakes/s3.ts';
import { call, clients, startTestControlPlane, type TestControlPlane } from '../helpers.ts';
import { startTestDaemon, type TestDaemon } from '../support/daemon.ts';

export const BUCKET = 'dpo-test-bucket';
const SEED = join(import.meta.dirname, '..', 'fixtures', 'seed');
export const fixture = (name: string) => JSON.parse(readFileSync(join(SEED, `${name}.json`), 'utf8'));

// --- the loopback guard -------------------------------------------------------------------------
export const connections: string[] = [];
const originalConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (this: net.Socket, ...args: any[]) {
  // net.connect() and http pass their arguments normalized, as one array: [options, callback].
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  const host = typeof first === 'object' && first !== null ? (first.host ?? 'localhost') : args[1];
  if (typeof first === 'object' && typeof first?.path !== 'string')
    connections.push(String(host ?? 'localhost'));
  return (originalConnect as any).apply(this, args);
} as typeof net.Socket.prototype.connect;
export const nonLoopback = () => connections.filter((h) => !['127.0.0.1', 'localhost', '::1'].includes(h));

// The SDK's default credential chain finds these; nothing may look for real ones.
Object.assign(process.env, {
  AWS_ACCESS_KEY_ID: 'AKIAFAKEFAKEFAKEFAKE',
  AWS_SECRET_ACCESS_KEY: 'fake-secret-for-tests-only',
  AWS_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_CONFIG_FILE: '/nonexistent/aws-config',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
});

export function emrEnv(emr: FakeEmr, s3: FakeS3, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DPO_EMR_REGION: 'us-east-1',
    DPO_EMR_APPLICATION_ID: emr.applicationId,
    DPO_EMR_EXECUTION_ROLE_ARN: 'arn:aws:iam::123456789012:role/dpo-spark-jobs',
    DPO_EMR_S3_URI: `s3://${BUCKET}/operator`,
    DPO_EMR_ENTRY_POINT: `s3://${BUCKET}/runner/job_runner.py`,
    DPO_EMR_SPARK_PARAMS_BY_TYPE: JSON.stringify({ forecast: '--conf spark.executor.instances=2' }),
    DPO_EMR_POLL_MIN_MS: '20',
    DPO_EMR_POLL_MAX_MS: '60',
    DPO_EMR_CANCEL_GRACE_SECONDS: '30',
    DPO_EMR_CANCEL_WAIT_MS: '15000',
    DPO_EMR_REQUEST_TIMEOUT_MS: '5000',
    DPO_EMR_MAX_ATTEMPTS: '3',
    DPO_EMR_S3_FORCE_PATH_STYLE: 'true',
    AWS_ENDPOINT_URL_EMR_SERVERLESS: emr.url,
    AWS_ENDPOINT_URL_S3: s3.url,
    ...extra,
  };
}

/** The fake runner: the seed's example result of the spec's type. */
export const seedResult = (spec: any) => {
  const type = spec.job.type === 'forecast-internal' ? 'forecast-internal' : spec.job.type;
  return fixture(`${type}.result`);
};

/**
 * The fakes and an executor on them, without a daemon or a control plane: for tests that drive the
 * executor directly with the executor test kit (`createTestContext`, `testJob`).
 */
export interface EmrFakes {
  emr: FakeEmr;
  s3: FakeS3;
  executor: EmrServerlessExecutor;
  stop(): Promise<void>;
}

export async function startEmrFakes(
  fake: Omit<FakeEmrOptions, 's3'> = {},
  env: Record<string, string> = {},
): Promise<EmrFakes> {
  const s3 = await startFakeS3();
  const emr = await startFakeEmr({ s3, resultFor: seedResult, ...fake });
  const executor = new EmrServerlessExecutor(loadEmrConfig(emrEnv(emr, s3, env)));
  return {
    emr,
    s3,
    executor,
    async stop() {
      await executor.close();
      await emr.close();
      await s3.close();
    },
  };
}

export interface EmrStack {
  cp: TestControlPlane;
  emr: FakeEmr;
  s3: FakeS3;
  td: TestDaemon;
  executor: EmrServerlessExecutor;
  submit(type: string, input: unknown, extra?: Record<string, unknown>): Promise<Job>;
  get(id: string): Promise<Job>;
  settle(id: string, timeoutMs?: number): Promise<Job>;
  stop(): Promise<void>;
}

export async function startEmrStack(
  fake: Omit<FakeEmrOptions, 's3'> = {},
  env: Record<string, string> = {},
  cpOptions: Partial<ControlPlaneOptions> = {},
): Promise<EmrStack> {
  const s3 = await startFakeS3();
  const emr = await startFakeEmr({ s3, resultFor: seedResult, ...fake });
  const cp = await startTestControlPlane(cpOptions);
  const executor = new EmrServerlessExecutor(loadEmrConfig(emrEnv(emr, s3, env)));
  // The daemon's default job timeout (DPO_JOB_TIMEOUT_MS): the executor passes the time left until
  // it to EMR, within DPO_EMR_TIMEOUT_MS (4 h), so a submission asks for 240 minutes.
  const td = await startTestDaemon(cp, { executors: [executor], jobTimeoutMs: 6 * 3_600_000 });
  const c = clients(cp);
  return {
    cp,
    emr,
    s3,
    td,
    executor,
    submit: (type, input, extra) => c.submit(type, input, extra),
    async get(id) {
      return (await c.user<Job>('GET', `/v1/jobs/${id}`)).body;
    },
    async settle(id, timeoutMs = 20_000) {
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
    async stop() {
      await td.stop();
      await executor.close();
      await cp.close();
      await emr.close();
      await s3.close();
    },
  };
}
