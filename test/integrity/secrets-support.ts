/**
 * What the secrets-leak tests share: a bundled control plane whose operator token is a recognisable
 * secret, a `dataplane-operator run` child process (stdout and stderr captured) with its metrics
 * listener, and the check that no secret (nor a 16-character prefix of one) appears in the daemon's
 * output, any job's failures or result, any job's log, or the metrics.
 */
import { expect } from 'vitest';
import type { Job } from '../../src/contract/index.ts';
import { call, startTestControlPlane, type TestControlPlane, waitFor } from '../helpers.ts';
import { type CliProcess, runCli } from '../support/processes.ts';

export const OPERATOR_TOKEN = 'SECRETOPERATORTOKEN-5e8a-do-not-log';

/** Environment that keeps the AWS SDK off real credentials and metadata. */
export const AWS_SANDBOX = {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'AKIAFAKEFAKEFAKEFAKE',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_CONFIG_FILE: '/nonexistent/aws-config',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
};

const ENDED = ['completed', 'failed', 'cancelled'];

export interface LeakStack {
  cp: TestControlPlane;
  daemon: CliProcess;
  metricsUrl: string;
  submit(type: string, input: unknown, extra?: Record<string, unknown>): Promise<string>;
  get(id: string): Promise<Job>;
  cancel(id: string): Promise<void>;
  /**
   * Waits until every job has ended, cancelling one that failed an attempt and waits for a later
   * retry (a retryable failure gives the job back, pending): its failure is what the test wanted.
   */
  settle(ids: string[], timeoutMs?: number): Promise<Job[]>;
  /**
   * Stops the daemon (SIGTERM) and checks every place for every secret; answers the places where a
   * value was redacted (an echo reached them and was caught).
   */
  checkNoLeak(ids: string[], jobs: Job[], secrets: Record<string, string>): Promise<string[]>;
  close(): Promise<void>;
}

export async function startLeakStack(env: Record<string, string>): Promise<LeakStack> {
  // A control plane that knows the secret operator token (the admin token and id of a first one).
  const first = await startTestControlPlane({ leaseTtlMs: 5_000 });
  const cp = await startTestControlPlane({
    leaseTtlMs: 5_000,
    adminTokens: [first.adminToken],
    operatorTokens: [{ token: OPERATOR_TOKEN, data_plane_id: first.dataPlaneId }],
  });
  await first.close();
  const daemon = runCli(['run'], {
    DPO_CONTROL_PLANE_URL: cp.url,
    DPO_TOKEN: OPERATOR_TOKEN,
    DPO_DATA_PLANE_ID: first.dataPlaneId,
    DPO_METRICS_LISTEN: '127.0.0.1:0',
    DPO_POLL_WAIT_MS: '1000',
    DPO_PROGRESS_INTERVAL_MS: '200',
    DPO_LOG_LEVEL: 'debug',
    ...env,
  });
  const close = async () => {
    daemon.kill('SIGKILL');
    await cp.close();
  };
  try {
    await daemon.waitForOutput(/health and metrics listening/, 20_000);
  } catch (err) {
    await close();
    throw new Error(`the daemon did not start: ${daemon.stderr()}\n${daemon.stdout().slice(-2000)}`, {
      cause: err,
    });
  }
  const metricsUrl = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(daemon.stdout())?.[1] as string;
  expect(metricsUrl).toBeDefined();
  const user = <T = unknown>(m: 'GET' | 'POST', p: string, b?: unknown) =>
    call<T>(cp.url, m, p, { token: first.adminToken, body: b });
  const get = async (id: string) => (await user<Job>('GET', `/v1/jobs/${id}`)).body;
  const cancel = async (id: string) => {
    await user('POST', `/v1/jobs/${id}/cancel`, { reason: 'secrets test' });
  };
  return {
    cp,
    daemon,
    metricsUrl,
    async submit(type, input, extra = {}) {
      const r = await user<Job>('POST', '/v1/jobs', {
        type,
        company_id: 56,
        data_plane_id: first.dataPlaneId,
        input,
        max_attempts: 1,
        ...extra,
      });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body.id;
    },
    get,
    cancel,
    async settle(ids, timeoutMs = 30_000) {
      return waitFor(
        async () => {
          const all = await Promise.all(ids.map(get));
          for (const j of all) {
            if (!ENDED.includes(j.state) && j.state === 'pending' && j.failures.length > 0)
              await cancel(j.id);
          }
          return all.every((j) => ENDED.includes(j.state)) ? all : undefined;
        },
        { timeoutMs, what: 'every job to end' },
      );
    },
    async checkNoLeak(ids, jobs, secrets) {
      const logs = await Promise.all(
        ids.map(async (id) => (await user(`GET`, `/v1/jobs/${id}/logs?limit=1000`)).body),
      );
      const metrics = await fetch(`${metricsUrl}/metrics`).then((r) => r.text());
      expect(metrics).toContain('dpo_');
      daemon.kill('SIGTERM');
      await daemon.exited;
      expect(daemon.stderr()).not.toContain('LOOPBACK GUARD');
      const places: Record<string, string> = {
        'daemon stdout': daemon.stdout(),
        'daemon stderr': daemon.stderr(),
        // Failures and results only: a job's input may quote a value on purpose (the local case).
        'job failures and results': JSON.stringify(
          jobs.map((j) => ({ failures: j.failures, result: j.result })),
        ),
        'job logs': JSON.stringify(logs),
        metrics,
      };
      // Every place holds something: an empty capture would pass for the wrong reason.
      expect(places['daemon stdout']).toMatch(/job/);
      expect(places['job logs']).toMatch(/"msg"/);
      const leaks: string[] = [];
      for (const [where, text] of Object.entries(places)) {
        for (const [name, value] of Object.entries({ operatorToken: OPERATOR_TOKEN, ...secrets })) {
          if (text.includes(value)) leaks.push(`${name} appears in ${where}: …${around(text, value)}…`);
          else if (text.includes(value.slice(0, 16))) {
            leaks.push(`a prefix of ${name} appears in ${where}: …${around(text, value.slice(0, 16))}…`);
          }
        }
      }
      expect(leaks).toEqual([]);
      // Where an echoed value was caught: the places holding `[redacted]` (an echo test expects one).
      return Object.entries(places)
        .filter(([, text]) => text.includes('[redacted]'))
        .map(([where]) => where);
    },
    close,
  };
}

/** The text around the first occurrence of `value` (for a readable failure). */
function around(text: string, value: string): string {
  const at = text.indexOf(value);
  return text.slice(Math.max(0, at - 160), at + value.length + 40);
}

/** A one-line account of the jobs (codes they went through), printed by each test. */
export function summary(jobs: Job[]): string {
  return jobs.map((j) => `${j.type} ${j.state} [${j.failures.map((f) => f.code).join(', ')}]`).join('; ');
}

/**
 * No secret leaks anywhere, and the echoed one was caught somewhere (`[redacted]` seen): otherwise the
 * echo case proves nothing.
 */
export async function expectNoLeakAndEchoCaught(
  s: LeakStack,
  ids: string[],
  jobs: Job[],
  secrets: Record<string, string>,
): Promise<void> {
  const redactedIn = await s.checkNoLeak(ids, jobs, secrets);
  console.log(`redacted in: ${redactedIn.join(', ')}`);
  expect(
    redactedIn.length,
    'the echoed secret reached no place: the echo case proves nothing',
  ).toBeGreaterThan(0);
}
