/**
 * Control-plane throughput: submissions/s, and claims/s for claim batches of 1 and 50 (claim then
 * complete through the batched report, as an operator drains). The server runs in its own process
 * pinned to CPU 1; this client is pinned to CPU 0. One warm-up, five measured runs; median (range).
 *
 * Durability: SQLite in WAL mode with synchronous=NORMAL on a file in a temp directory (a commit
 * survives a process crash; the last transactions may be lost on power loss).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { CLI, freePort, pinSelf, startNode, summary } from './lib.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const JOBS = Number(process.env.BENCH_CP_JOBS ?? 10_000);
const TYPE = 'datasets_truncate_table';

async function once(): Promise<{ submit: number; claim1: number; claim50: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'dpo-bench-'));
  const admin = randomBytes(18).toString('base64url');
  const operator = randomBytes(18).toString('base64url');
  const port = await freePort();
  const cp = await startNode([CLI, 'control-plane'], {
    cpu: 1,
    ready: /control plane listening/,
    env: {
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
  try {
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
    const drain = async (capacity: number, n: number) => {
      const t0 = performance.now();
      let done = 0;
      while (done < n) {
        const r = await post('/v1/operators/poll', operator, {
          executor: 'bench',
          data_plane_id: 'dp-bench',
          job_types: [TYPE],
          capacity,
          wait_ms: 0,
          held: [],
        });
        if (r.claimed.length === 0) throw new Error('queue ran dry');
        await post('/v1/operators/report', operator, {
          executor: 'bench',
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
    const submit = await fill(JOBS);
    const claim1 = await drain(1, Math.min(JOBS, 3_000));
    const rest = JOBS - Math.min(JOBS, 3_000);
    const claim50 = await drain(50, rest - (rest % 50));
    return { submit, claim1, claim50 };
  } finally {
    await pool.close();
    await cp.stop();
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

export async function benchControlPlane(): Promise<void> {
  const pinned = await pinSelf(0);
  process.stdout.write(
    `control plane: ${JOBS} jobs per run, ${RUNS} runs after one warm-up; server on CPU 1, client on CPU 0 ${pinned ? '' : '(taskset unavailable: not pinned)'}\n` +
      'durability: SQLite WAL, synchronous=NORMAL, file in a temp dir\n',
  );
  await once();
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push(await once());
  const rows: Array<[string, number[]]> = [
    ['submissions/s (10 connections)', runs.map((r) => r.submit)],
    ['claim+complete/s, batch 1 (one poll + one report per job)', runs.map((r) => r.claim1)],
    ['claim+complete/s, batch 50 (one poll + one report per 50 jobs)', runs.map((r) => r.claim50)],
  ];
  for (const [name, xs] of rows) process.stdout.write(`  ${name.padEnd(64)} ${summary(xs)}\n`);
}

if (import.meta.main) await benchControlPlane();
