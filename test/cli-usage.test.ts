/**
 * The jobs CLI as people use it: usage errors before any request (a job id that is not a UUID, an
 * unknown job type with a did-you-mean), durations with units, paths from where the user typed,
 * nql-forecast `Failure` results shown as failures, no stale progress on completed jobs, a large
 * input summarised by `show`, and hints that name a command the user can run.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliCommand, parseDuration } from '../src/cli/paths.ts';
import { userPath } from '../src/lib/config.ts';
import { clients, startTestControlPlane, type TestControlPlane, TRUNCATE } from './helpers.ts';
import { runCliInProcess } from './support/cli.ts';

const MAIN = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
const SEED = join(import.meta.dirname, 'fixtures', 'seed');
const seed = (name: string) => JSON.parse(readFileSync(join(SEED, `${name}.json`), 'utf8'));

let cp: TestControlPlane;
let c: ReturnType<typeof clients>;
beforeAll(async () => {
  cp = await startTestControlPlane();
  c = clients(cp);
});
afterAll(() => cp.close());

/**
 * `dataplane-operator jobs <args>`: in process (test/support/cli.ts), or as a child process when the
 * test needs its own working directory (the INIT_CWD test).
 */
function cli(args: string[], env: Record<string, string> = {}, cwd?: string) {
  const base = {
    DPO_CONTROL_PLANE_URL: cp.url,
    DPO_API_TOKEN: cp.adminToken,
    DPO_DATA_DIR: mkdtempSync(join(tmpdir(), 'dpo-cli-data-')),
  };
  if (cwd === undefined) return runCliInProcess(['jobs', ...args], { env: { ...base, ...env } });
  const child = spawn(process.execPath, [MAIN, 'jobs', ...args], {
    env: {
      PATH: process.env.PATH,
      DPO_CONTROL_PLANE_URL: cp.url,
      DPO_API_TOKEN: cp.adminToken,
      DPO_DATA_DIR: mkdtempSync(join(tmpdir(), 'dpo-cli-data-')),
      ...env,
    },
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  );
}

describe('usage errors exit 2 before any request', () => {
  it('a job id that is not a UUID, and an unknown job type with a did-you-mean', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'dpo-usage-')), 'job.json');
    writeFileSync(file, JSON.stringify({ type: 'nql-forcast', company_id: 56, input: {} }));
    const [show, wait, submit, submitFlag, list] = await Promise.all([
      cli(['show', '42']),
      cli(['wait', 'not-a-job']),
      cli(['submit', file]),
      cli(['submit', file, '--type', 'datasets_truncate']),
      cli(['list', '--type', `${TRUNCATE},costz`]),
    ]);
    for (const r of [show, wait, submit, submitFlag, list]) expect(r.code, r.stderr).toBe(2);
    expect(show.stderr).toContain("'42' is not a job id (a UUID");
    expect(wait.stderr).toContain("'not-a-job' is not a job id");
    expect(submit.stderr).toContain("unknown job type 'nql-forcast' (did you mean nql-forecast?)");
    expect(submitFlag.stderr).toContain(
      "--type: unknown job type 'datasets_truncate' (did you mean datasets_truncate_table?)",
    );
    expect(list.stderr).toContain("--type: unknown job type 'costz' (did you mean costs?)");
  });
});

describe('durations and paths', () => {
  it('durations take units', () => {
    expect(['1500', '500ms', '5s', '2m', '1h', '1m30s', '1.5s'].map(parseDuration)).toEqual([
      1500, 500, 5_000, 120_000, 3_600_000, 90_000, 1_500,
    ]);
    for (const bad of ['', 'soon', '5 s', '5x', '-1s', 's5'])
      expect(() => parseDuration(bad)).toThrow(/not a duration/);
  });

  it('relative paths resolve from where the user typed the npm command (INIT_CWD), else from cwd', () => {
    expect(userPath('job.json', { npm_lifecycle_event: 'cli', INIT_CWD: '/home/me/work' })).toBe(
      '/home/me/work/job.json',
    );
    expect(userPath('/abs/job.json', { npm_lifecycle_event: 'cli', INIT_CWD: '/home/me/work' })).toBe(
      '/abs/job.json',
    );
    expect(userPath('job.json', { INIT_CWD: '/home/me/work' })).toBe(join(process.cwd(), 'job.json'));
  });

  it('`jobs submit` under npm reads the file from INIT_CWD, and `wait --timeout 1s` gives up after a second', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpo-initcwd-'));
    mkdirSync(join(dir, 'jobs'));
    writeFileSync(
      join(dir, 'jobs', 'mine.json'),
      JSON.stringify({
        type: TRUNCATE,
        company_id: 56,
        data_plane_id: cp.otherDataPlaneId,
        input: { dataset_id: 7 },
      }),
    );
    // The CLI runs from elsewhere (npm's package directory), as under `npm run cli`.
    const r = await cli(
      ['submit', 'jobs/mine.json'],
      { npm_lifecycle_event: 'cli', INIT_CWD: dir },
      tmpdir(),
    );
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    const t0 = Date.now();
    const w = await cli(['wait', id, '--timeout', '1s']);
    expect(w.code).toBe(5);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_000);
    expect(w.stderr).toMatch(/timed out after/);
    const bad = await cli(['wait', id, '--timeout', 'soon']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--timeout: 'soon' is not a duration");
  });
});

describe('nql-forecast Failure results, completed jobs, large inputs', () => {
  it('wait exits 6 and list says Failure, while the job stays completed; no stale progress', async () => {
    const job = await c.submit('nql-forecast', seed('nql-forecast.input'));
    const claimed = await c.claim(job.id, 'nql-forecast');
    const token = claimed.lease!.token;
    await c.op('POST', `/v1/jobs/${job.id}/checkpoint`, {
      lease_token: token,
      progress: { fraction: 0.4, message: 'querying' },
    });
    const done = await c.op('POST', `/v1/jobs/${job.id}/complete`, {
      lease_token: token,
      result: seed('nql-forecast.result.failure'),
    });
    expect(done.status).toBe(200);
    const [wait, list, show] = await Promise.all([
      cli(['wait', job.id]),
      cli(['list', '--type', 'nql-forecast']),
      cli(['show', job.id]),
    ]);
    expect(wait.code).toBe(6);
    expect(wait.stderr).toContain('with a Failure result: Query execution timed out after 300 seconds');
    expect(wait.stdout).not.toContain('querying');
    const row = list.stdout.split('\n').find((l) => l.startsWith(job.id)) ?? '';
    expect(row).toMatch(/ completed .*Failure result: Query execution timed out/);
    expect(row).not.toContain('querying');
    expect(show.stdout).toMatch(/^state +completed$/m);
    expect(show.stdout).toMatch(/^outcome +Failure result: Query execution timed out after 300 seconds$/m);
    expect(show.stdout).not.toMatch(/^progress/m);
  });

  it('show summarises an input larger than a screen (lines and megabytes); --full prints it all', async () => {
    const sql = `SELECT ${'x, '.repeat(200_000)}1`; // a 600 KB statement on one line
    const columns = Array.from({ length: 200 }, (_, i) => ({ name: `column_${i}`, type: 'VARCHAR' }));
    const job = await c.submit('datasets_create_table', { dataset_id: 4321, compiled_sql: sql, columns });
    const [short, full] = await Promise.all([cli(['show', job.id]), cli(['show', job.id, '--full'])]);
    expect(short.code, short.stderr).toBe(0);
    expect(short.stdout.length).toBeLessThan(20_000);
    expect(short.stdout).toMatch(/"compiled_sql": "SELECT x, x, .*… \(\d+ more characters\)/);
    expect(short.stdout).toMatch(/… \(\d+ more lines, \d+\.\d KiB in all; --full prints it all\)/);
    expect(full.stdout).toContain(sql);
    expect(full.stdout).toContain('column_199');
    expect(full.stdout).not.toContain('--full prints it all');
  });
});

describe('jobs wait on a job no operator serves', () => {
  it('says so after a while, from what the control plane knows of the operators', async () => {
    // Nobody polls the other data plane; on ours, an operator polls for another type only.
    const nobody = await c.submit(TRUNCATE, { dataset_id: 11 }, { data_plane_id: cp.otherDataPlaneId });
    const poll = await c.poll({ job_types: ['datasets_sample'], capacity: 1 });
    expect(poll.status).toBe(200);
    const otherType = await c.submit(TRUNCATE, { dataset_id: 12 });
    const [a, b] = await Promise.all([
      cli(['wait', nobody.id, '--unserved-after', '200ms', '--timeout', '3s']),
      cli(['wait', otherType.id, '--unserved-after', '200ms', '--timeout', '3s']),
    ]);
    expect(a.code).toBe(5);
    expect(a.stderr).toContain(
      `note: no operator serves ${TRUNCATE} on data plane ${cp.otherDataPlaneId}: no live operator polls data plane ${cp.otherDataPlaneId}`,
    );
    expect(b.code).toBe(5);
    expect(b.stderr).toMatch(
      new RegExp(
        `note: no operator serves ${TRUNCATE} on data plane ${cp.dataPlaneId}: the 1 live operator\\(s\\) there serve datasets_sample`,
      ),
    );
    expect(a.stderr.match(/note: /g)).toHaveLength(1);
  });
});

describe('hints name a command the user can run', () => {
  it('npm run, then a linked dataplane-operator on the PATH, then node and the script', () => {
    expect(cliCommand({ npm_lifecycle_event: 'dev', npm_package_name: 'dataplane-operator' })).toBe(
      'npm run --silent cli --',
    );
    const bin = mkdtempSync(join(tmpdir(), 'dpo-bin-'));
    writeFileSync(join(bin, 'dataplane-operator'), '');
    expect(cliCommand({ PATH: `/nonexistent:${bin}` })).toBe('dataplane-operator');
    expect(cliCommand({ PATH: '/nonexistent' }, join(process.cwd(), 'src', 'cli', 'main.ts'))).toBe(
      `node ${join('src', 'cli', 'main.ts')}`,
    );
  });
});
