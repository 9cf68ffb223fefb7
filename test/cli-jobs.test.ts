/**
 * The `jobs` CLI (in process, through `buildProgram`) against the bundled control plane, and `UserClient` against it
 * directly. Jobs are driven to their end through the operator side over plain HTTP (no daemon).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiError, ProtocolError, TransportError, UserClient } from '../src/client/user-client.ts';
import { type Job, Job as JobSchema, ListJobsResponse, StoredLogLine } from '../src/contract/index.ts';
import {
  clients,
  startTestControlPlane,
  type TestControlPlane,
  TRUNCATE,
  truncateResult,
  waitFor,
} from './helpers.ts';
import { startCli } from './support/cli.ts';

const files = mkdtempSync(join(tmpdir(), 'dpo-cli-files-'));

let cp: TestControlPlane;
let c: ReturnType<typeof clients>;
beforeEach(async () => {
  cp = await startTestControlPlane();
  c = clients(cp);
});
afterEach(() => cp.close());

/**
 * Runs `dataplane-operator jobs <args>` in process (test/support/cli.ts) with a clean environment
 * pointing at the test control plane. The spawned binary's exit codes and signals are tested in
 * test/cli-exit-codes.test.ts and test/cli-usage.test.ts.
 */
function start(args: string[], opts: { stdin?: string; env?: Record<string, string | undefined> } = {}) {
  return startCli(['jobs', ...args], {
    stdin: opts.stdin,
    env: {
      DPO_CONTROL_PLANE_URL: cp.url,
      DPO_API_TOKEN: cp.adminToken,
      // An empty data dir, so no admin.token is found by accident.
      DPO_DATA_DIR: mkdtempSync(join(tmpdir(), 'dpo-cli-data-')),
      ...opts.env,
    },
  });
}

const cli = (args: string[], opts?: Parameters<typeof start>[1]) => start(args, opts).done;

/** Writes a submission file for the test control plane's data plane. */
function submissionFile(extra: Record<string, unknown> = {}): string {
  const file = join(files, `${randomUUID()}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      type: TRUNCATE,
      company_id: 56,
      data_plane_id: cp.dataPlaneId,
      input: { dataset_id: 1234 },
      ...extra,
    }),
  );
  return file;
}

async function submitted(extra: Record<string, unknown> = {}): Promise<string> {
  const r = await cli(['submit', submissionFile(extra)]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

const getJob = async (id: string): Promise<Job> => (await c.user<Job>('GET', `/v1/jobs/${id}`)).body;

/** Claims the job (it must be the oldest pending one) and reports progress; returns the lease token. */
async function claimWithProgress(id: string): Promise<string> {
  const job = await c.claim(id);
  const token = job.lease!.token;
  const r = await c.op('POST', `/v1/jobs/${id}/checkpoint`, {
    lease_token: token,
    progress: { fraction: 0.5, message: 'halfway' },
  });
  expect(r.status).toBe(200);
  return token;
}

const complete = async (id: string, token: string) =>
  expect(
    (await c.op('POST', `/v1/jobs/${id}/complete`, { lease_token: token, result: truncateResult })).status,
  ).toBe(200);

const fail = async (id: string, token: string) =>
  expect(
    (
      await c.op('POST', `/v1/jobs/${id}/fail`, {
        lease_token: token,
        failure: { code: 'BOOM', message: 'the table went away', retryable: false },
      })
    ).status,
  ).toBe(200);

const appendLog = async (id: string, token: string, level: string, msg: string) =>
  expect(
    (
      await c.op('POST', `/v1/jobs/${id}/logs`, {
        lease_token: token,
        lines: [{ ts: new Date().toISOString(), level, msg }],
      })
    ).status,
  ).toBe(200);

describe('jobs submit', () => {
  it('submits from a file, from stdin ("-" or no file) and prints the id', async () => {
    const fromFile = await submitted();
    expect(await getJob(fromFile)).toMatchObject({
      id: fromFile,
      state: 'pending',
      input: { dataset_id: 1234 },
    });

    // With --type, the document is just the input.
    const dash = await cli(
      ['submit', '--type', TRUNCATE, '--company-id', '57', '--data-plane-id', cp.dataPlaneId, '-'],
      { stdin: '{"dataset_id": 2}' },
    );
    expect(dash.code, dash.stderr).toBe(0);
    expect(await getJob(dash.stdout.trim())).toMatchObject({
      type: TRUNCATE,
      company_id: 57,
      data_plane_id: cp.dataPlaneId,
      input: { dataset_id: 2 },
    });

    // No file: a whole submission on stdin, an option overriding one of its fields.
    const noFile = await cli(['submit', '--max-attempts', '7', '--json'], {
      stdin: JSON.stringify({ type: TRUNCATE, company_id: 58, input: { dataset_id: 3 }, max_attempts: 2 }),
    });
    expect(noFile.code, noFile.stderr).toBe(0);
    const job = JobSchema.parse(JSON.parse(noFile.stdout));
    expect(job).toMatchObject({ company_id: 58, max_attempts: 7, input: { dataset_id: 3 } });
    expect((await getJob(job.id)).max_attempts).toBe(7);
  });

  it('prints the same id for a repeated idempotency key', async () => {
    const file = submissionFile({ idempotency_key: `key-${randomUUID()}` });
    const first = await cli(['submit', file]);
    const again = await cli(['submit', file]);
    expect(first.code).toBe(0);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(first.stdout);
    expect(first.stderr).toBe('');
    expect(again.stderr).toContain('idempotency key already used');
    const all = (await c.user('GET', '/v1/jobs')).body as { jobs: Job[] };
    expect(all.jobs).toHaveLength(1);
  });

  it('exits 1 and prints the 422 issues naming the field for input the type refuses', async () => {
    const r = await cli(['submit', submissionFile({ input: { dataset_id: 'x' } })]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error: .*\(422 validation_failed\)$/m);
    expect(r.stderr).toMatch(/^ {2}input\.dataset_id: /m);
  });

  it('exits 2 for what it can tell is wrong before asking the server', async () => {
    const [noCompany, notJson, noFile, badNumber] = await Promise.all([
      cli(['submit', '--type', TRUNCATE], { stdin: '{"dataset_id": 1}' }),
      cli(['submit', '-'], { stdin: '{"type": ' }),
      cli(['submit', join(files, 'no-such-file.json')]),
      cli(['submit', '--max-attempts', 'many', submissionFile()]),
    ]);
    expect(noCompany.code).toBe(2);
    expect(noCompany.stderr).toMatch(/company_id: .*--company-id/);
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toContain('stdin is not valid JSON');
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toContain('ENOENT');
    expect(badNumber.code).toBe(2);
    expect(badNumber.stderr).toContain('--max-attempts');
    expect((await c.user('GET', '/v1/jobs')).body.jobs).toEqual([]);
  });
});

describe('jobs tokens and connection', () => {
  it('exits 2 without a token, saying how to pass one', async () => {
    const r = await cli(['list'], { env: { DPO_API_TOKEN: undefined } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no token');
    expect(r.stderr).toContain('--token');
    expect(r.stderr).toContain('admin.token');
  });

  it('exits 1 for a wrong token with an unauthorized message that does not contain it', async () => {
    const secret = `wrong-${randomUUID()}`;
    const [fromEnv, fromFlag] = await Promise.all([
      cli(['list'], { env: { DPO_API_TOKEN: secret } }),
      cli(['show', randomUUID(), '--token', secret]),
    ]);
    for (const r of [fromEnv, fromFlag]) {
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('unauthorized');
      expect(r.stderr + r.stdout).not.toContain(secret);
    }
  });

  it('reads the token from --token-file, DPO_API_TOKEN_FILE or <data dir>/admin.token', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpo-cli-token-'));
    writeFileSync(join(dir, 'admin.token'), `${cp.adminToken}\n`);
    const [flag, env, dataDir] = await Promise.all([
      cli(['list', '--token-file', join(dir, 'admin.token')], { env: { DPO_API_TOKEN: undefined } }),
      cli(['list'], { env: { DPO_API_TOKEN: undefined, DPO_API_TOKEN_FILE: join(dir, 'admin.token') } }),
      cli(['list'], { env: { DPO_API_TOKEN: undefined, DPO_DATA_DIR: dir } }),
    ]);
    for (const r of [flag, env, dataDir]) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('no jobs\n');
    }
  });

  it('says an operator token is the wrong kind, and names the URL it cannot reach', async () => {
    const operator = await cli(['list'], { env: { DPO_API_TOKEN: cp.operatorToken } });
    expect(operator.code).toBe(1);
    expect(operator.stderr).toContain('403 forbidden');
    expect(operator.stderr).toContain('admin token');
    expect(operator.stderr).not.toContain(cp.operatorToken);

    const url = await closedPortUrl();
    const unreachable = await cli(['list', '--url', url]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain(`cannot reach the control plane at ${url}`);

    const badUrl = await cli(['list', '--url', 'not a url']);
    expect(badUrl.code).toBe(2);
  });
});

describe('jobs list', () => {
  it('lists as a table and as JSON, with filters and cursors', async () => {
    const done = await submitted();
    await complete(done, await claimWithProgress(done));
    const pendingA = await submitted();
    const pendingB = await submitted();

    const pendingTable = await cli(['list', '--state', 'pending', '--type', TRUNCATE]);
    expect(pendingTable.code).toBe(0);
    const [header, ...rows] = pendingTable.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^ID\s+TYPE\s+STATE\s+ATTEMPT\s+DATA PLANE\s+CREATED\s+DETAIL$/);
    expect(rows).toHaveLength(2);
    expect(pendingTable.stdout).toContain(pendingA);
    expect(pendingTable.stdout).toContain(pendingB);
    expect(pendingTable.stdout).not.toContain(done);
    // Aligned columns: every row's state starts where the header's STATE does.
    const stateCol = header!.indexOf('STATE');
    for (const row of rows) expect(row.slice(stateCol)).toMatch(/^pending /);

    // --json after the subcommand and after its own options.
    const completed = await cli(['list', '--state', 'completed', '--json']);
    const parsed = ListJobsResponse.parse(JSON.parse(completed.stdout));
    expect(parsed.jobs.map((j) => j.id)).toEqual([done]);
    expect(parsed.jobs[0]!.state).toBe('completed');

    const [otherPlane, onePage, all] = await Promise.all([
      cli(['list', '--data-plane-id', cp.otherDataPlaneId]),
      cli(['--json', 'list', '--per-page', '1']),
      cli(['list', '--per-page', '1', '--all', '--json']),
    ]);
    expect(otherPlane.stdout).toBe('');
    expect(otherPlane.stderr).toBe('no jobs\n');
    const first = ListJobsResponse.parse(JSON.parse(onePage.stdout));
    expect(first.jobs).toHaveLength(1);
    expect(first.next_cursor).not.toBeNull();
    const everything = ListJobsResponse.parse(JSON.parse(all.stdout));
    expect(everything.next_cursor).toBeNull();
    expect(new Set(everything.jobs.map((j) => j.id))).toEqual(new Set([done, pendingA, pendingB]));

    const next = await cli(['list', '--per-page', '1', '--cursor', first.next_cursor!]);
    expect(next.stdout).toContain(everything.jobs[1]!.id);
    expect(next.stderr).toContain('--cursor');

    const badState = await cli(['list', '--state', 'finished']);
    expect(badState.code).toBe(2);
    expect(badState.stderr).toContain('unknown state finished');
  });
});

describe('jobs show', () => {
  it('shows a readable summary of a completed and of a failed job', async () => {
    const ok = await submitted({ idempotency_key: `show-${randomUUID()}` });
    await complete(ok, await claimWithProgress(ok));
    const bad = await submitted();
    await fail(bad, await claimWithProgress(bad));

    const [shownOk, shownBad, asJson, missing] = await Promise.all([
      cli(['show', ok]),
      cli(['show', bad]),
      cli(['show', ok, '--json']),
      cli(['show', randomUUID()]),
    ]);
    expect(shownOk.code).toBe(0);
    const text = shownOk.stdout;
    expect(text).toMatch(new RegExp(`^id +${ok}$`, 'm'));
    expect(text).toMatch(new RegExp(`^type +${TRUNCATE}$`, 'm'));
    expect(text).toMatch(/^state +completed$/m);
    expect(text).toMatch(/^attempt +1\/3$/m);
    expect(text).toMatch(/^executor +test-executor$/m);
    expect(text).toMatch(/^started +\d{4}-\d\d-\d\dT.* ago\)$/m);
    expect(text).toMatch(/^ended +\d{4}-/m);
    // Its last progress report (50% halfway) is stale once it completed: not shown.
    expect(text).not.toMatch(/^progress/m);
    expect(text).not.toContain('halfway');
    expect(text).toContain('result\n  {\n    "type": "datasets_truncate_table"\n  }');
    expect(text).not.toContain('lease');

    expect(shownBad.stdout).toMatch(/^state +failed$/m);
    expect(shownBad.stdout).toMatch(/^failures +1$/m);
    expect(shownBad.stdout).toMatch(/attempt 1 .* BOOM {2}on test-executor\n {4}the table went away/);

    expect(JobSchema.parse(JSON.parse(asJson.stdout))).toMatchObject({ id: ok, state: 'completed' });

    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('404 not_found');
  });
});

describe('jobs wait', () => {
  it('shows progress live and exits 0 when the job completes', async () => {
    const id = await submitted();
    const waiting = start(['wait', id]);
    await waitFor(() => waiting.stdout().includes('pending'), { what: 'wait to show the pending job' });
    const token = await claimWithProgress(id);
    // The job ends only once `wait` has shown its progress.
    await waitFor(() => waiting.stdout().includes('50% halfway'), { what: 'wait to show progress' });
    await complete(id, token);
    const r = await waiting.done;
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(`${id}  pending  attempt 0/3`);
    expect(lines).toContain(`${id}  running  attempt 1/3  50% halfway`);
    // Completed: no stale progress on the last line.
    expect(lines).toContain(`${id}  completed  attempt 1/3`);
    expect(r.stdout).toContain('"type": "datasets_truncate_table"');
    expect(r.stderr).toMatch(/^completed in /);
  });

  it('exits 3 when the job fails, naming the failure', async () => {
    const id = await submitted();
    await fail(id, await claimWithProgress(id));
    const r = await cli(['wait', id]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('failed: BOOM: the table went away');
  });

  it('exits 4 once a cancel ends the job, pending or running', async () => {
    const pending = await submitted();
    const cancelled = await cli(['cancel', pending, '--reason', 'not needed']);
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toContain(`cancelled: job ${pending} is cancelled`);
    const waitedJson = await cli(['wait', pending, '--json']);
    expect(waitedJson.code).toBe(4);
    expect(JSON.parse(waitedJson.stdout)).toMatchObject({
      state: 'cancelled',
      cancellation_reason: 'not needed',
    });

    const running = await submitted();
    const token = await claimWithProgress(running);
    const waiting = start(['wait', running]);
    await waitFor(() => waiting.stdout().includes('running'), { what: 'wait to show the running job' });
    const requested = await cli(['cancel', running, '--json']);
    expect(JSON.parse(requested.stdout)).toMatchObject({
      outcome: 'cancellation_requested',
      job: { state: 'pending_cancellation' },
    });
    await waitFor(() => waiting.stdout().includes('pending_cancellation'), { what: 'pending_cancellation' });
    expect((await c.op('POST', `/v1/jobs/${running}/cancelled`, { lease_token: token })).status).toBe(200);
    const r = await waiting.done;
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('cancelled');
  });

  it('exits 5 when --timeout passes first', async () => {
    const id = await submitted();
    const r = await cli(['wait', id, '--timeout', '300']);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('the job is still pending');
    expect((await getJob(id)).state).toBe('pending');
  });
});

describe('jobs reschedule', () => {
  it('leaves a completed job alone without --force and requeues it with --force', async () => {
    const id = await submitted();
    await complete(id, await claimWithProgress(id));
    const skipped = await cli(['reschedule', id]);
    expect(skipped.code).toBe(0);
    expect(skipped.stdout).toContain('skipped_terminal');
    expect(skipped.stdout).toContain('--force');
    expect((await getJob(id)).state).toBe('completed');

    const forced = await cli(['reschedule', id, '--force', '--json']);
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({
      outcome: 'rescheduled',
      job: { id, state: 'pending', executor: null, lease: null, checkpoint: null },
    });
    // Claimable again.
    expect((await c.claim(id)).state).toBe('running');
  });
});

describe('jobs logs', () => {
  it('prints the lines, and --follow tails them until the job ends', async () => {
    const id = await submitted();
    const token = await claimWithProgress(id);
    await appendLog(id, token, 'info', 'first line');

    const once = await cli(['logs', id]);
    expect(once.code).toBe(0);
    expect(once.stdout).toMatch(/^\S+Z {2}INFO {3}\[attempt 1\] {2}first line\n$/);

    const following = start(['logs', id, '--follow']);
    await waitFor(() => following.stdout().includes('first line'), { what: 'the first line' });
    await appendLog(id, token, 'warn', 'second line');
    await waitFor(() => following.stdout().includes('second line'), {
      what: 'the line appended while following',
    });
    await appendLog(id, token, 'error', 'last words');
    await complete(id, token);
    const r = await following.done;
    expect(r.code).toBe(0);
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(3);
    expect(r.stdout).toMatch(/WARN .*second line/);
    expect(r.stdout).toMatch(/ERROR .*last words/);

    const asJson = await cli(['logs', id, '--json']);
    const lines = asJson.stdout
      .trimEnd()
      .split('\n')
      .map((l) => StoredLogLine.parse(JSON.parse(l)));
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      ['info', 'first line'],
      ['warn', 'second line'],
      ['error', 'last words'],
    ]);
  });
});

describe('UserClient', () => {
  it('submits, reports replays, and throws ApiError with status, code, message and details', async () => {
    const client = new UserClient({ url: cp.url, token: cp.adminToken });
    try {
      const key = `client-${randomUUID()}`;
      const first = await client.submit({
        type: TRUNCATE,
        company_id: 1,
        input: { dataset_id: 1 },
        idempotency_key: key,
      });
      const again = await client.submit({
        type: TRUNCATE,
        company_id: 1,
        input: { dataset_id: 1 },
        idempotency_key: key,
      });
      expect(first.created).toBe(true);
      expect(again).toMatchObject({ created: false, job: { id: first.job.id } });
      expect((await client.get(first.job.id)).id).toBe(first.job.id);

      const missing = await client.get(randomUUID()).catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(ApiError);
      expect(missing).toMatchObject({ status: 404, code: 'not_found' });
      expect((missing as ApiError).message).toContain('no job');

      const bad = await client.submit({ type: TRUNCATE, company_id: 1, input: {} }).catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(ApiError);
      expect(bad).toMatchObject({ status: 422, code: 'validation_failed' });
      expect((bad as ApiError).details).toMatchObject({ issues: [{ path: 'input.dataset_id' }] });

      const cancelled = await client.cancel(first.job.id, 'test');
      expect(cancelled).toMatchObject({ outcome: 'cancelled', job: { cancellation_reason: 'test' } });
      expect((await client.wait(first.job.id, 5_000)).state).toBe('cancelled');
      expect((await client.list({ state: 'cancelled' })).jobs.map((j) => j.id)).toEqual([first.job.id]);
      expect((await client.reschedule(first.job.id)).outcome).toBe('skipped_terminal');
      expect(await client.logs(first.job.id, { after: 0 })).toEqual({ lines: [], last_seq: null });
    } finally {
      await client.close();
    }
  });

  it('stops a long wait when the caller aborts', async () => {
    const client = new UserClient({ url: cp.url, token: cp.adminToken });
    try {
      const { job } = await client.submit({ type: TRUNCATE, company_id: 1, input: { dataset_id: 1 } });
      const ac = new AbortController();
      const waiting = client.wait(job.id, 30_000, ac.signal);
      ac.abort(new Error('user gave up'));
      await expect(waiting).rejects.toThrow('user gave up');
      await expect(client.get(job.id, AbortSignal.abort(new Error('already')))).rejects.toThrow('already');
    } finally {
      await client.close();
    }
  });

  it('names the URL when it cannot connect or gets no answer in time', async () => {
    const url = await closedPortUrl();
    const refused = new UserClient({ url, token: 'x' });
    try {
      const e = await refused.list().catch((x: unknown) => x);
      expect(e).toBeInstanceOf(TransportError);
      expect((e as Error).message).toContain(url);
    } finally {
      await refused.close();
    }

    await withServer(
      () => {}, // never answers
      async (silentUrl) => {
        const client = new UserClient({ url: silentUrl, token: 'x', timeoutMs: 200 });
        try {
          const e = await client.get(randomUUID()).catch((x: unknown) => x);
          expect(e).toBeInstanceOf(TransportError);
          expect((e as Error).message).toMatch(new RegExp(`${silentUrl}.*timed out|timed out.*${silentUrl}`));
        } finally {
          await client.close();
        }
      },
    );
  });

  it('refuses an answer the contract does not allow', async () => {
    await withServer(
      (res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"jobs": "many"}');
      },
      async (url) => {
        const client = new UserClient({ url, token: 'x' });
        try {
          const e = await client.list().catch((x: unknown) => x);
          expect(e).toBeInstanceOf(ProtocolError);
          expect((e as Error).message).toContain('answered GET /v1/jobs with something unexpected');
        } finally {
          await client.close();
        }
      },
    );
  });
});

/** A URL on which nothing listens. */
async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

/** Runs `fn` against a throwaway HTTP server answering with `answer`. */
async function withServer(
  answer: (res: import('node:http').ServerResponse) => void,
  fn: (url: string) => Promise<void>,
): Promise<void> {
  const server: Server = createServer((_req, res) => answer(res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  try {
    await fn(`http://127.0.0.1:${port}`);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}
