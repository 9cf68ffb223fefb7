import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiError, UserClient } from '../src/client/user-client.ts';
import type { Job } from '../src/contract/index.ts';
import {
  clients,
  startTestControlPlane,
  type TestControlPlane,
  TRUNCATE,
  truncateResult,
  waitFor,
} from './helpers.ts';

const MAIN = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
let cp: TestControlPlane;
let c: ReturnType<typeof clients>;
beforeEach(async () => {
  cp = await startTestControlPlane();
  c = clients(cp);
});
afterEach(() => cp.close());

function cli(args: string[], opts: { stdin?: string; env?: NodeJS.ProcessEnv } = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [MAIN, 'jobs', ...args], {
      env: {
        PATH: process.env.PATH,
        DPO_CONTROL_PLANE_URL: cp.url,
        DPO_API_TOKEN: cp.adminToken,
        DPO_DATA_DIR: mkdtempSync(join(tmpdir(), 'dpo-cli-')),
        ...opts.env,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdin.end(opts.stdin ?? '');
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const dir = mkdtempSync(join(tmpdir(), 'dpo-cli-files-'));
const submission = (extra: Record<string, unknown> = {}) => {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      type: TRUNCATE,
      company_id: 56,
      data_plane_id: cp.dataPlaneId,
      input: { dataset_id: 1 },
      ...extra,
    }),
  );
  return file;
};

async function drive(id: string, finish: (token: string) => Promise<unknown>) {
  const job = await c.claim(id);
  await c.op('POST', `/v1/jobs/${id}/checkpoint`, {
    lease_token: job.lease!.token,
    progress: { fraction: 0.5, message: 'halfway' },
  });
  return finish(job.lease!.token);
}

describe('jobs submit', () => {
  it('submits from a file and from stdin and prints the id', async () => {
    const fromFile = await cli(['submit', submission()]);
    expect(fromFile.code).toBe(0);
    const id = fromFile.stdout.trim();
    expect((await c.user<Job>('GET', `/v1/jobs/${id}`)).body.state).toBe('pending');
    const fromStdin = await cli(
      ['submit', '--type', TRUNCATE, '--company-id', '56', '--data-plane-id', cp.dataPlaneId, '-'],
      { stdin: '{"dataset_id": 2}' },
    );
    expect(fromStdin.code).toBe(0);
    const job = (await c.user<Job>('GET', `/v1/jobs/${fromStdin.stdout.trim()}`)).body;
    expect(job.input).toEqual({ dataset_id: 2 });
  });

  it('prints the same id for a repeated idempotency key', async () => {
    const file = submission({ idempotency_key: `k-${Math.random()}` });
    const a = await cli(['submit', file]);
    const b = await cli(['submit', file]);
    expect(b.stdout).toBe(a.stdout);
    expect(b.stderr).toContain('existing job');
  });

  it('exits 1 and lists the issues naming the field for bad input', async () => {
    const r = await cli(['submit', submission({ input: { dataset_id: 'x' } })]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('validation_failed');
    expect(r.stderr).toContain('input.dataset_id');
  });

  it('exits 2 without a token, and 1 for a wrong one without printing it', async () => {
    const none = await cli(['list'], { env: { DPO_API_TOKEN: '' } });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--token');
    const wrong = await cli(['list'], { env: { DPO_API_TOKEN: 'wrong-secret-token' } });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('unauthorized');
    expect(wrong.stderr).not.toContain('wrong-secret-token');
  });
});

describe('jobs list, show, cancel, reschedule, logs', () => {
  it('lists as a table and as JSON, with filters', async () => {
    const id = (await cli(['submit', submission()])).stdout.trim();
    const t = await cli(['list', '--state', 'pending', '--type', TRUNCATE]);
    expect(t.stdout).toMatch(/^ID\s+TYPE\s+STATE/);
    expect(t.stdout).toContain(id);
    const j = await cli(['--json', 'list', '--state', 'completed']);
    const parsed = JSON.parse(j.stdout) as { jobs: Job[] };
    expect(parsed.jobs.every((x) => x.state === 'completed')).toBe(true);
  });

  it('shows a job, cancels it, and reschedules it with --force', async () => {
    const id = (await cli(['submit', submission()])).stdout.trim();
    const shown = await cli(['show', id]);
    expect(shown.stdout).toContain(`id          ${id}`);
    expect(shown.stdout).toContain('state       pending');
    const cancelled = await cli(['cancel', id, '--reason', 'not needed']);
    expect(cancelled.stdout).toContain('cancelled');
    expect((await cli(['wait', id])).code).toBe(4);
    const skipped = await cli(['reschedule', id]);
    expect(skipped.stdout).toContain('skipped_terminal');
    const forced = await cli(['--json', 'reschedule', id, '--force']);
    expect(JSON.parse(forced.stdout)).toMatchObject({ outcome: 'rescheduled', job: { state: 'pending' } });
  });

  it('prints logs and follows them until the job ends', async () => {
    const id = (await cli(['submit', submission()])).stdout.trim();
    const job = await c.claim(id);
    const ts = new Date().toISOString();
    await c.op('POST', `/v1/jobs/${id}/logs`, {
      lease_token: job.lease!.token,
      lines: [{ ts, level: 'info', msg: 'first' }],
    });
    const following = cli(['logs', id, '--follow']);
    await c.op('POST', `/v1/jobs/${id}/logs`, {
      lease_token: job.lease!.token,
      lines: [{ ts, level: 'warn', msg: 'second' }],
    });
    await c.op('POST', `/v1/jobs/${id}/complete`, { lease_token: job.lease!.token, result: truncateResult });
    const r = await following;
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/INFO .*first/);
    expect(r.stdout).toMatch(/WARN .*second/);
  });
});

describe('jobs wait', () => {
  it('shows progress and exits 0 when the job completes', async () => {
    const id = (await cli(['submit', submission()])).stdout.trim();
    const waiting = cli(['wait', id]);
    await drive(id, async (token) => {
      await waitFor(async () => (await c.user<Job>('GET', `/v1/jobs/${id}`)).body.progress);
      // Give `wait` a chance to see the progress before the job ends: it polls once a second.
      await new Promise((r) => setTimeout(r, 1_200));
      return c.op('POST', `/v1/jobs/${id}/complete`, { lease_token: token, result: truncateResult });
    });
    const r = await waiting;
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('50% halfway');
    expect(r.stdout).toContain('completed');
  });

  it('exits 3 when the job fails and 5 when --timeout passes first', async () => {
    const id = (await cli(['submit', submission()])).stdout.trim();
    await drive(id, (token) =>
      c.op('POST', `/v1/jobs/${id}/fail`, {
        lease_token: token,
        failure: { code: 'BOOM', message: 'no', retryable: false },
      }),
    );
    const failed = await cli(['wait', id]);
    expect(failed.code).toBe(3);
    expect(failed.stderr).toContain('BOOM');
    const pending = (await cli(['submit', submission()])).stdout.trim();
    expect((await cli(['wait', pending, '--timeout', '100'])).code).toBe(5);
  });
});

describe('UserClient', () => {
  it('throws ApiError with status, code and details', async () => {
    const client = new UserClient({ url: cp.url, token: cp.adminToken });
    try {
      await expect(client.get('00000000-0000-4000-8000-000000000000')).rejects.toMatchObject({
        status: 404,
        code: 'not_found',
      });
      const bad = await client.submit({ type: TRUNCATE, company_id: 1, input: {} }).catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(ApiError);
      expect((bad as ApiError).status).toBe(422);
      expect((bad as ApiError).details).toMatchObject({ issues: [{ path: 'input.dataset_id' }] });
    } finally {
      await client.close();
    }
  });

  it('stops a long wait when its signal aborts', async () => {
    const client = new UserClient({ url: cp.url, token: cp.adminToken });
    try {
      const { job } = await client.submit({ type: TRUNCATE, company_id: 1, input: { dataset_id: 1 } });
      const ac = new AbortController();
      const waiting = client.wait(job.id, 30_000, ac.signal);
      ac.abort(new Error('user gave up'));
      await expect(waiting).rejects.toThrow('user gave up');
    } finally {
      await client.close();
    }
  });
});
