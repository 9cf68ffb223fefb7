/**
 * Control-plane throughput: submissions/s, and claims/s for claim batches of 1 and 50 (claim then
 * complete through the batched report, as an operator drains). The server runs in its own process
 * pinned to CPU 1; this client is pinned to CPU 0. One warm-up, five measured runs; median (range).
 *
 * `--against REV` builds an older revision (git archive of REV into a temp dir, compiled with this
 * checkout's TypeScript and node_modules) and runs it beside the current build, alternating run by
 * run (A B A B …, one warm-up each), so a regression against REV is one command on one host.
 *
 * `--cpu-prof DIR` profiles the server instead: one process fills the queue, then a profiled process
 * (`node --cpu-prof`, plus bench/profile/sql-timing.ts timing every SQLite statement) drains it at
 * batch 1 and another at batch 50; bench/profile/analyze.ts turns each profile into the breakdown
 * per claim and per report that docs/performance.md records.
 *
 * Durability: SQLite in WAL mode with synchronous=NORMAL on a file in a temp directory (a commit
 * survives a process crash; the last transactions may be lost on power loss).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Pool } from 'undici';
import { CLI, freePort, median, pinSelf, startNode, summary } from './lib.ts';
import { analyzeProfile } from './profile/analyze.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const JOBS = Number(process.env.BENCH_CP_JOBS ?? 10_000);
const TYPE = 'datasets_truncate_table';
const BATCH1_JOBS = Math.min(Math.floor(JOBS / 3), 3_000);

export interface ControlPlaneBenchOptions {
  /** A git revision to build and run beside the current build, alternating. */
  against?: string;
  /** Profile the server's drain instead of measuring throughput; profiles are written here. */
  cpuProf?: string;
}

interface Server {
  /** The CLI to start (`node <cli> control-plane`). */
  cli: string;
  /** Extra node flags for the server process. */
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
}

interface Figures {
  submit: number;
  claim1: number;
  claim1x: number;
  claim50: number;
}

/** Operators draining at once in the parallel row (each one poll + one report per job). */
const PARALLEL = Number(process.env.BENCH_CP_PARALLEL ?? 10);

/** A running control plane with its tokens and a small client for the two operator calls. */
async function startServer(server: Server, dir: string) {
  const admin = randomBytes(18).toString('base64url');
  const operator = randomBytes(18).toString('base64url');
  const port = await freePort();
  const cp = await startNode([...(server.nodeArgs ?? []), server.cli, 'control-plane'], {
    cpu: 1,
    ready: /control plane listening/,
    env: {
      ...server.env,
      DPO_CP_LISTEN: `127.0.0.1:${port}`,
      DPO_DATA_DIR: dir,
      DPO_LOG_LEVEL: 'info',
      DPO_CP_TOKENS_FILE: writeTokens(dir, admin, operator),
    },
  });
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 10, pipelining: 1 });
  const post = async (path: string, token: string, body: unknown) => {
    const res = await pool.request({
      method: 'POST',
      path,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (await res.body.json()) as any;
    if (res.statusCode >= 300) throw new Error(`${path}: ${res.statusCode} ${JSON.stringify(json)}`);
    return json;
  };
  const fill = async (n: number) => {
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (next < n) {
          next++;
          await post('/v1/jobs', admin, {
            type: TYPE,
            company_id: 1,
            data_plane_id: 'dp-bench',
            input: { dataset_id: 1 },
          });
        }
      }),
    );
    return n / ((performance.now() - t0) / 1000);
  };
  const drain = async (capacity: number, n: number, executor = 'bench') => {
    const t0 = performance.now();
    let done = 0;
    while (done < n) {
      const r = await post('/v1/operators/poll', operator, {
        executor,
        data_plane_id: 'dp-bench',
        job_types: [TYPE],
        capacity,
        wait_ms: 0,
        held: [],
      });
      if (r.claimed.length === 0) throw new Error('queue ran dry');
      await post('/v1/operators/report', operator, {
        executor,
        reports: r.claimed.map((j: any) => ({
          id: j.id,
          lease_token: j.lease.token,
          outcome: 'complete',
          result: { type: TYPE },
        })),
      });
      done += r.claimed.length;
    }
    return n / ((performance.now() - t0) / 1000);
  };
  /** `PARALLEL` operators (distinct executor ids) drain `n` jobs between them at batch 1. */
  const drainParallel = async (n: number) => {
    const t0 = performance.now();
    const each = Math.floor(n / PARALLEL);
    await Promise.all(Array.from({ length: PARALLEL }, (_, i) => drain(1, each, `bench-${i}`)));
    return (each * PARALLEL) / ((performance.now() - t0) / 1000);
  };
  return {
    fill,
    drain,
    drainParallel,
    stop: async () => {
      await pool.close();
      await cp.stop();
    },
  };
}

async function once(server: Server): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), 'dpo-bench-'));
  const s = await startServer(server, dir);
  try {
    const submit = await s.fill(JOBS);
    const claim1 = await s.drain(1, BATCH1_JOBS);
    const claim1x = await s.drainParallel(BATCH1_JOBS);
    const rest = JOBS - 2 * BATCH1_JOBS;
    const claim50 = await s.drain(50, rest - (rest % 50));
    return { submit, claim1, claim1x, claim50 };
  } finally {
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function writeTokens(dir: string, admin: string, operator: string): string {
  const file = join(dir, 'tokens.json');
  writeFileSync(
    file,
    JSON.stringify({
      admin_tokens: [admin],
      operator_tokens: [{ token: operator, data_plane_id: 'dp-bench' }],
    }),
    { mode: 0o600 },
  );
  return file;
}

const ROWS: Array<[string, keyof Figures]> = [
  ['submissions/s (10 connections)', 'submit'],
  ['claim+complete/s, batch 1 (one poll + one report per job)', 'claim1'],
  [`claim+complete/s, batch 1, ${PARALLEL} operators at once`, 'claim1x'],
  ['claim+complete/s, batch 50 (one poll + one report per 50 jobs)', 'claim50'],
];

/**
 * Builds `rev` into a temp directory: its files from `git archive`, this checkout's node_modules
 * (linked), compiled with its own tsconfig.build.json. Type errors against today's dependencies do
 * not stop the emit; a missing CLI does.
 */
export function buildRevision(rev: string): { cli: string; dir: string; commit: string } {
  const commit = execFileSync('git', ['rev-parse', '--short', `${rev}^{commit}`], {
    encoding: 'utf8',
  }).trim();
  const dir = mkdtempSync(join(tmpdir(), `dpo-rev-${commit}-`));
  execFileSync('sh', ['-c', `git archive --format=tar ${commit} | tar -x -C "${dir}"`], { stdio: 'inherit' });
  symlinkSync(resolve('node_modules'), join(dir, 'node_modules'), 'dir');
  try {
    execFileSync(
      process.execPath,
      [resolve('node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
      {
        cwd: dir,
        stdio: 'ignore',
      },
    );
  } catch {
    // tsc exits non-zero on type errors but still emits (noEmitOnError is off).
  }
  const cli = join(dir, CLI);
  if (!existsSync(cli)) throw new Error(`building ${rev} (${commit}) in ${dir} produced no ${CLI}`);
  return { cli, dir, commit };
}

async function compare(rev: string): Promise<void> {
  process.stdout.write(`  building ${rev} into a temp dir…\n`);
  const old = buildRevision(rev);
  const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .filter(Boolean).length;
  const current = `${head}${dirty > 0 ? '+changes' : ''}`;
  try {
    const a: Server = { cli: old.cli };
    const b: Server = { cli: CLI };
    await once(a);
    await once(b);
    const ra: Figures[] = [];
    const rb: Figures[] = [];
    for (let i = 0; i < RUNS; i++) {
      ra.push(await once(a));
      rb.push(await once(b));
    }
    process.stdout.write(
      `  alternating ${old.commit} and ${current} (A B A B …), ${RUNS} runs each after one warm-up each\n`,
    );
    process.stdout.write(
      `  ${'figure'.padEnd(64)} ${old.commit.padEnd(26)} ${current.padEnd(26)} change of medians\n`,
    );
    for (const [name, key] of ROWS) {
      const xa = ra.map((r) => r[key]);
      const xb = rb.map((r) => r[key]);
      const change = (median(xb) / median(xa) - 1) * 100;
      process.stdout.write(
        `  ${name.padEnd(64)} ${summary(xa).padEnd(26)} ${summary(xb).padEnd(26)} ${change >= 0 ? '+' : ''}${change.toFixed(0)} % (${(median(xb) / median(xa)).toFixed(2)}×)\n`,
      );
    }
  } finally {
    rmSync(old.dir, { recursive: true, force: true });
  }
}

/** Fills a queue, then drains it at batch 1 and at batch 50 in two profiled server processes. */
async function profile(outDir: string): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'dpo-bench-'));
  const rest = JOBS - BATCH1_JOBS - ((JOBS - BATCH1_JOBS) % 50);
  try {
    const filler = await startServer({ cli: CLI }, dir);
    await filler.fill(JOBS);
    await filler.stop();
    for (const [batch, n] of [
      [1, BATCH1_JOBS],
      [50, rest],
    ] as const) {
      const name = `batch${batch}`;
      const sqlFile = join(outDir, `${name}.sql.json`);
      const s = await startServer(
        {
          cli: CLI,
          nodeArgs: [
            '--cpu-prof',
            `--cpu-prof-dir=${outDir}`,
            `--cpu-prof-name=${name}.cpuprofile`,
            '--cpu-prof-interval=100',
            '--import',
            resolve('bench/profile/sql-timing.ts'),
          ],
          env: { BENCH_SQL_TIMING: sqlFile },
        },
        dir,
      );
      const rate = await s.drain(batch, n);
      await s.stop();
      process.stdout.write(
        `\n  profile: drain ${n} jobs at batch ${batch} (${rate.toFixed(0)} claims/s under the profiler)\n`,
      );
      process.stdout.write(
        analyzeProfile(join(outDir, `${name}.cpuprofile`), sqlFile, { jobs: n, polls: n / batch }),
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchControlPlane(options: ControlPlaneBenchOptions = {}): Promise<void> {
  const pinned = await pinSelf(0);
  process.stdout.write(
    `control plane: ${JOBS} jobs per run, ${RUNS} runs after one warm-up; server on CPU 1, client on CPU 0 ${pinned ? '' : '(taskset unavailable: not pinned)'}\n` +
      'durability: SQLite WAL, synchronous=NORMAL, file in a temp dir\n',
  );
  if (options.cpuProf) return profile(options.cpuProf);
  if (options.against) return compare(options.against);
  await once({ cli: CLI });
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push(await once({ cli: CLI }));
  for (const [name, key] of ROWS) {
    process.stdout.write(`  ${name.padEnd(64)} ${summary(runs.map((r) => r[key]))}\n`);
  }
}

if (import.meta.main) await benchControlPlane();
