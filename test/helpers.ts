/**
 * Shared test helpers: a bundled control plane on 127.0.0.1:0 with fresh tokens, a small JSON
 * client on undici, and waiting on conditions (never on fixed sleeps).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { request } from 'undici';
import type { Job } from '../src/contract/index.ts';
import {
  type ControlPlaneOptions,
  type RunningControlPlane,
  startControlPlane,
} from '../src/control-plane/server.ts';

export interface TestControlPlane extends RunningControlPlane {
  adminToken: string;
  operatorToken: string;
  /** The data plane `operatorToken` is bound to. */
  dataPlaneId: string;
  /** A second operator token, bound to `otherDataPlaneId`. */
  otherOperatorToken: string;
  otherDataPlaneId: string;
}

export async function startTestControlPlane(
  overrides: Partial<ControlPlaneOptions> = {},
): Promise<TestControlPlane> {
  const adminToken = randomBytes(18).toString('base64url');
  const operatorToken = randomBytes(18).toString('base64url');
  const otherOperatorToken = randomBytes(18).toString('base64url');
  const dataPlaneId = `dp-${randomUUID().slice(0, 8)}`;
  const otherDataPlaneId = `dp-other-${randomUUID().slice(0, 8)}`;
  const cp = await startControlPlane({
    dbPath: ':memory:',
    port: 0,
    adminTokens: [adminToken],
    operatorTokens: [
      { token: operatorToken, data_plane_id: dataPlaneId },
      { token: otherOperatorToken, data_plane_id: otherDataPlaneId },
    ],
    retryBaseMs: 50,
    retryMaxMs: 400,
    ...overrides,
  });
  return Object.assign(cp, { adminToken, operatorToken, dataPlaneId, otherOperatorToken, otherDataPlaneId });
}

export interface Reply<T = any> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
}

/** One JSON request; `body` may be a raw string to send malformed JSON. */
export async function call<T = any>(
  baseUrl: string,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  path: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Reply<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await request(`${baseUrl}${path}`, {
    method,
    headers,
    body,
    signal: AbortSignal.timeout(70_000),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

/** Convenience wrappers bound to one control plane. */
export function clients(cp: TestControlPlane) {
  const user = <T = any>(method: 'GET' | 'POST', path: string, body?: unknown) =>
    call<T>(cp.url, method, path, { token: cp.adminToken, body });
  const op = <T = any>(method: 'GET' | 'POST', path: string, body?: unknown) =>
    call<T>(cp.url, method, path, { token: cp.operatorToken, body });
  const submit = async (type: string, input: unknown, extra: Record<string, unknown> = {}): Promise<Job> => {
    const r = await user<Job>('POST', '/v1/jobs', {
      type,
      company_id: 56,
      data_plane_id: cp.dataPlaneId,
      input,
      ...extra,
    });
    if (r.status !== 201) throw new Error(`submit failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const poll = (body: Record<string, unknown> = {}) =>
    op<{ claimed: Job[]; cancel: string[]; lost: string[]; lease_ttl_ms: number; error?: any }>(
      'POST',
      '/v1/operators/poll',
      {
        executor: 'test-executor',
        data_plane_id: cp.dataPlaneId,
        job_types: [TRUNCATE],
        capacity: 10,
        wait_ms: 0,
        held: [],
        ...body,
      },
    );
  /** Claims exactly the job `id` (it must be the oldest pending job of its type). */
  const claim = async (id: string, type = TRUNCATE): Promise<Job> => {
    const r = await poll({ job_types: [type], capacity: 1 });
    const job = r.body.claimed?.[0];
    if (job?.id !== id) throw new Error(`expected to claim ${id}, got ${JSON.stringify(r.body)}`);
    return job;
  };
  return { user, op, submit, poll, claim };
}

export const TRUNCATE = 'datasets_truncate_table';
export const truncateInput = (datasetId = 1234) => ({ dataset_id: datasetId });
export const truncateResult = { type: 'datasets_truncate_table' };

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 10, what = 'condition' } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
