/**
 * The daemon's bars: the daemon against the bundled control plane, each in its own process (daemon on CPU 0,
 * control plane on CPU 1, this driver beside the control plane), BullMQ on Redis as the peer in the
 * same run. One warm-up and five measured runs for the rates and latencies; the one-minute hold and
 * the idle measurement run once. Prints every figure beside its bar.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { bullmqDrain, bullmqPickup, openLoop, startRedis } from './bullmq-peer.ts';
import { CLI, freePort, median, pinSelf, startNode, summary } from './lib.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const DRAIN_JOBS = Number(process.env.BENCH_DRAIN_JOBS ?? 20_000);
const HOLD_JOBS = Number(process.env.BENCH_HOLD_JOBS ?? 10_000);
const HOLD_MS = Number(process.env.BENCH_HOLD_MS ?? 60_000);
const TYPE = 'datasets_truncate_table';
const DP = 'dp-bench';
const nowMs = () => performance.timeOrigin + performance.now();
const CLK_TCK = 100; // Linux USER_HZ

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime + stime
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

interface Stack {
  url: string;
  dir: string;
  admin: string;
  pool: Pool;
  daemonPid(): number;
  controlPlanePid(): number;
  startDaemon(extra?: NodeJS.ProcessEnv): Promise<void>;
  stopDaemon(): Promise<void>;
  metrics(): Promise<string>;
  submit(input: Record<string, unknown>): Promise<{ id: string }>;
  user(method: 'GET' | 'POST', path: string, body?: unknown): Promise<any>;
  stop(): Promise<void>;
}

async function startStack(cpEnv: NodeJS.ProcessEnv = {}): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'dpo-bench-'));
  const admin = randomBytes(18).toString('base64url');
  const operator = randomBytes(18).toString('base64url');
  const tokens = join(dir, 'tokens.json');
  writeFileSync(
    tokens,
    JSON.stringify({ admin_tokens: [admin], operator_tokens: [{ token: operator, data_plane_id: DP }] }),
  );
  writeFileSync(join(dir, 'operator.token'), operator, { mode: 0o600 });
  const port = await freePort();
  const metricsPort = await freePort();
  const cp = await startNode([CLI, 'control-plane'], {
    cpu: 1,
    ready: async () => {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      await res.arrayBuffer();
      return res.ok;
    },
    env: {
      DPO_CP_LISTEN: `127.0.0.1:${port}`,
      DPO_DATA_DIR: dir,
      DPO_CP_TOKENS_FILE: tokens,
      DPO_LOG_LEVEL: 'warn',
      ...cpEnv,
    },
  });
  const url = `http://127.0.0.1:${port}`;
  const pool = new Pool(url, { connections: 16 });
  let daemon: Awaited<ReturnType<typeof startNode>> | undefined;
  const user = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
    const res = await pool.request({
      method,
      path,
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await res.body.json()) as any;
    if (res.statusCode >= 300)
      throw new Error(`${method} ${path}: ${res.statusCode} ${JSON.stringify(json)}`);
    return json;
  };
  return {
    url,
    dir,
    admin,
    pool,
    daemonPid: () => daemon!.child.pid!,
    controlPlanePid: () => cp.child.pid!,
    async startDaemon(extra = {}) {
      daemon = await startNode([CLI, 'run'], {
        cpu: 0,
        ready: async () => {
          const res = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
          await res.arrayBuffer();
          return res.ok;
        },
        env: {
          DPO_CONTROL_PLANE_URL: url,
          DPO_TOKEN_FILE: join(dir, 'operator.token'),
          DPO_DATA_PLANE_ID: DP,
          DPO_EXECUTORS: 'dist/bench/bench-executor.js',
          DPO_CONCURRENCY: '50',
          DPO_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
          DPO_LOG_LEVEL: 'warn',
          // BENCH_DAEMON_NODE_OPTIONS: V8/Node flags for the daemon only (an A/B of a flag).
          ...(process.env.BENCH_PROFILE || process.env.BENCH_DAEMON_NODE_OPTIONS
            ? {
                NODE_OPTIONS: [
                  process.env.BENCH_DAEMON_NODE_OPTIONS ?? '',
                  process.env.BENCH_PROFILE ? `--cpu-prof --cpu-prof-dir=${process.env.BENCH_PROFILE}` : '',
                ]
                  .join(' ')
                  .trim(),
              }
            : {}),
          ...extra,
        },
      });
    },
    async stopDaemon() {
      await daemon?.stop();
      daemon = undefined;
    },
    async metrics() {
      const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      return res.text();
    },
    submit: (input) => user('POST', '/v1/jobs', { type: TYPE, company_id: 1, data_plane_id: DP, input }),
    user,
    async stop() {
      await daemon?.stop();
      await pool.close();
      await cp.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function fill(stack: Stack, n: number, input: () => Record<string, unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < n) {
        next++;
        await stack.submit(input());
      }
    }),
  );
}

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function countState(stack: Stack, states: string): Promise<number> {
  // The list endpoint pages; count with per_page 1000 cursors only when needed.
  let n = 0;
  let cursor: string | null = null;
  do {
    const page: { jobs: unknown[]; next_cursor: string | null } = await stack.user(
      'GET',
      `/v1/jobs?state=${states}&per_page=1000${cursor ? `&cursor=${cursor}` : ''}`,
    );
    n += page.jobs.length;
    cursor = page.next_cursor;
  } while (cursor);
  return n;
}

const allDone = (stack: Stack) => async () =>
  (await stack.user('GET', '/v1/jobs?state=pending,running&per_page=1')).jobs.length === 0;

function requestCount(metricsText: string): number {
  let n = 0;
  for (const line of metricsText.split('\n')) {
    if (line.startsWith('dpo_control_plane_request_seconds_count')) n += Number(line.split(' ').pop());
  }
  return n;
}

/** Drain: prefill, start the daemon, time first claim → last completion from the database. */
async function drainRun(): Promise<{ rate: number; cpuPerJobUs: number; requestsPerJob: number }> {
  const stack = await startStack();
  try {
    // Baseline CPU of a daemon starting against an empty queue and idling 1 s.
    await stack.startDaemon();
    await new Promise((r) => setTimeout(r, 1_000));
    const baselineCpu = cpuSeconds(stack.daemonPid());
    const baselineRequests = requestCount(await stack.metrics());
    await stack.stopDaemon();

    await fill(stack, DRAIN_JOBS, () => ({ dataset_id: 0 }));
    await stack.startDaemon();
    await waitUntil(allDone(stack), 'the drain');
    const cpu = cpuSeconds(stack.daemonPid()) - baselineCpu;
    const requests = requestCount(await stack.metrics()) - baselineRequests;
    // First start to last end, from the jobs themselves (the control plane holds its database
    // file exclusively, so it is read through the API).
    const row = { a: Number.POSITIVE_INFINITY, b: 0, n: 0 };
    let cursor: string | null = null;
    do {
      const page: { jobs: Array<{ started_at: string; ended_at: string }>; next_cursor: string | null } =
        await stack.user('GET', `/v1/jobs?state=completed&per_page=1000${cursor ? `&cursor=${cursor}` : ''}`);
      for (const j of page.jobs) {
        row.a = Math.min(row.a, Date.parse(j.started_at));
        row.b = Math.max(row.b, Date.parse(j.ended_at));
        row.n++;
      }
      cursor = page.next_cursor;
    } while (cursor);
    if (row.n !== DRAIN_JOBS) throw new Error(`drain: ${row.n} of ${DRAIN_JOBS} completed`);
    return {
      rate: DRAIN_JOBS / (Math.max(1, row.b - row.a) / 1000),
      cpuPerJobUs: (cpu / DRAIN_JOBS) * 1e6,
      requestsPerJob: requests / DRAIN_JOBS,
    };
  } finally {
    await stack.stop();
  }
}

/** Open-loop pickup: submit at `rate`/s; pickup = executor start − submit sent (same clock). */
async function pickupRun(rate: number, n: number): Promise<number[]> {
  const stack = await startStack();
  try {
    await stack.startDaemon();
    await openLoop(rate, n, () => stack.submit({ dataset_id: 0, sent_at_ms: nowMs() }).then(() => undefined));
    await waitUntil(allDone(stack), 'the pickup jobs');
    const out: number[] = [];
    let cursor: string | null = null;
    do {
      const page: {
        jobs: Array<{ input: { sent_at_ms: number }; result: { started_at_ms: number } }>;
        next_cursor: string | null;
      } = await stack.user(
        'GET',
        `/v1/jobs?state=completed&per_page=1000${cursor ? `&cursor=${cursor}` : ''}`,
      );
      for (const j of page.jobs) out.push(j.result.started_at_ms - j.input.sent_at_ms);
      cursor = page.next_cursor;
    } while (cursor);
    return out;
  } finally {
    await stack.stop();
  }
}

/** Cancel latency: 200 held jobs, cancel each; latency = executor saw the abort − cancel sent. */
async function cancelRun(): Promise<number[]> {
  const stack = await startStack();
  try {
    await stack.startDaemon({ DPO_CONCURRENCY: '250' });
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) ids.push((await stack.submit({ dataset_id: 1 })).id);
    await waitUntil(async () => (await countState(stack, 'running')) === 200, 'the held jobs to run');
    // Let the daemon settle into its parked poll.
    await new Promise((r) => setTimeout(r, 300));
    const sent = new Map<string, number>();
    for (const id of ids) {
      sent.set(id, nowMs());
      await stack.user('POST', `/v1/jobs/${id}/cancel`, {});
      await new Promise((r) => setTimeout(r, 5));
    }
    await waitUntil(async () => (await countState(stack, 'cancelled')) === 200, 'the cancels');
    const out: number[] = [];
    for (const id of ids) {
      const logs = await stack.user('GET', `/v1/jobs/${id}/logs`);
      const line = logs.lines.find((l: { msg: string }) => l.msg.startsWith('aborted_at_ms='));
      if (line) out.push(Number(line.msg.split('=')[1]) - sent.get(id)!);
    }
    return out;
  } finally {
    await stack.stop();
  }
}

/** Abort times the bench executor appended to its file, by job id, for one reason. */
function abortTimes(file: string, reason: string): Map<string, number> {
  const out = new Map<string, number>();
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const [id, why, at] = line.split(' ');
    if (id && why === reason && !out.has(id)) out.set(id, Number(at));
  }
  return out;
}

/**
 * Reschedule latency: 200 held jobs, reschedule each (not forced); latency = the old execution's
 * signal aborted (reason rescheduled) − reschedule sent. Renewals are 15 s apart (TTL 60 s), so only the
 * push through the parked poll can make it fast.
 */
async function rescheduleRun(): Promise<number[]> {
  const stack = await startStack({ DPO_CP_LEASE_TTL_MS: '60000' });
  const file = join(stack.dir, 'aborts.log');
  try {
    await stack.startDaemon({ DPO_CONCURRENCY: '450', BENCH_ABORT_LOG: file });
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) ids.push((await stack.submit({ dataset_id: 1 })).id);
    await waitUntil(async () => (await countState(stack, 'running')) === 200, 'the held jobs to run');
    await new Promise((r) => setTimeout(r, 300));
    const sent = new Map<string, number>();
    for (const id of ids) {
      sent.set(id, nowMs());
      await stack.user('POST', `/v1/jobs/${id}/reschedule`, {});
      await new Promise((r) => setTimeout(r, 5));
    }
    // The abort's reason is `rescheduled` since the poll says why a lease was lost (`lost` before).
    const reason = process.env.BENCH_RESCHEDULE_REASON ?? 'rescheduled';
    await waitUntil(async () => abortTimes(file, reason).size === 200, 'the rescheduled aborts', 30_000);
    return [...abortTimes(file, reason)].map(([id, at]) => at - sent.get(id)!);
  } finally {
    await stack.stop();
  }
}

/**
 * Fencing: 20 held jobs, then the control plane is frozen (SIGSTOP: a partition that answers
 * nothing and expires nothing). Time from the freeze until the daemon aborted each job as lost.
 */
async function fenceRun(ttlMs: number): Promise<number[]> {
  const stack = await startStack({ DPO_CP_LEASE_TTL_MS: String(ttlMs) });
  const file = join(stack.dir, 'aborts.log');
  try {
    await stack.startDaemon({ BENCH_ABORT_LOG: file });
    for (let i = 0; i < 20; i++) await stack.submit({ dataset_id: 1 });
    await waitUntil(async () => (await countState(stack, 'running')) === 20, 'the held jobs to run');
    await new Promise((r) => setTimeout(r, ttlMs / 2));
    const frozenAt = nowMs();
    process.kill(stack.controlPlanePid(), 'SIGSTOP');
    try {
      const deadline = Date.now() + ttlMs * 3;
      while (abortTimes(file, 'lost').size < 20 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      process.kill(stack.controlPlanePid(), 'SIGCONT');
    }
    return [...abortTimes(file, 'lost').values()].map((at) => at - frozenAt);
  } finally {
    await stack.stop();
  }
}

/** 10,000 jobs held for a minute: leases lost, RSS growth per job, requests per lease interval. */
async function holdRun(): Promise<{ lost: number; rssPerJob: number; requestsPerMinute: number }> {
  const ttl = 10_000;
  const stack = await startStack({ DPO_CP_LEASE_TTL_MS: String(ttl) });
  try {
    await stack.startDaemon({ DPO_CONCURRENCY: String(HOLD_JOBS) });
    await new Promise((r) => setTimeout(r, 1_000));
    const rss0 = rssBytes(stack.daemonPid());
    await fill(stack, HOLD_JOBS, () => ({ dataset_id: 1 }));
    await waitUntil(async () => (await countState(stack, 'running')) === HOLD_JOBS, 'every job to be held');
    const requests0 = requestCount(await stack.metrics());
    await new Promise((r) => setTimeout(r, HOLD_MS));
    const rss1 = rssBytes(stack.daemonPid());
    const requests1 = requestCount(await stack.metrics());
    const m = await stack.metrics();
    const lostLine = m.split('\n').find((l) => l.startsWith('dpo_leases_lost_total'));
    const stillRunning = await countState(stack, 'running');
    return {
      lost: Number(lostLine?.split(' ').pop() ?? 0) + (HOLD_JOBS - stillRunning),
      rssPerJob: (rss1 - rss0) / HOLD_JOBS,
      requestsPerMinute: ((requests1 - requests0) / HOLD_MS) * 60_000,
    };
  } finally {
    await stack.stop();
  }
}

/** Idle daemon: RSS and CPU share over 20 s of long polls. */
async function idleRun(): Promise<{ rssMb: number; cpuPercent: number }> {
  const stack = await startStack();
  try {
    await stack.startDaemon();
    await new Promise((r) => setTimeout(r, 2_000));
    const cpu0 = cpuSeconds(stack.daemonPid());
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 20_000));
    const cpu1 = cpuSeconds(stack.daemonPid());
    return {
      rssMb: rssBytes(stack.daemonPid()) / 1024 / 1024,
      cpuPercent: ((cpu1 - cpu0) / ((performance.now() - t0) / 1000)) * 100,
    };
  } finally {
    await stack.stop();
  }
}

const fmt = (x: number, d = 0) =>
  x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

export async function benchDaemon(): Promise<void> {
  await pinSelf(1);
  const out = (s: string) => process.stdout.write(`${s}\n`);
  out(
    `\ndaemon vs BullMQ: ${RUNS} measured runs after one warm-up; daemon on CPU 0, control plane (and this driver) on CPU 1; ` +
      'concurrency 50, no-op jobs\n' +
      'durability: control plane SQLite WAL synchronous=NORMAL; Redis AOF appendfsync everysec',
  );
  const redis = await startRedis();
  try {
    const drains: Array<Awaited<ReturnType<typeof drainRun>>> = [];
    const peers: number[] = [];
    const pick100: number[][] = [];
    const pick1000: number[][] = [];
    const peerPick100: number[][] = [];
    const cancels: number[][] = [];
    const reschedules: number[][] = [];
    for (let i = 0; i <= RUNS; i++) {
      const d = await drainRun();
      const p = await bullmqDrain(redis, DRAIN_JOBS);
      const a = await pickupRun(100, 500);
      const b = await pickupRun(1_000, 3_000);
      const q = await bullmqPickup(redis, 100, 500);
      const c = await cancelRun();
      const r = await rescheduleRun();
      if (i === 0) continue; // warm-up
      drains.push(d);
      peers.push(p);
      pick100.push(a);
      pick1000.push(b);
      peerPick100.push(q);
      cancels.push(c);
      reschedules.push(r);
      out(
        `  run ${i}: drain ${fmt(d.rate)} jobs/s (BullMQ ${fmt(p)}), pickup@100 p50 ${fmt(median(a), 2)} ms, cancel p99 ${fmt(percentile(c, 99), 2)} ms`,
      );
    }
    const ratio = drains.map((d, i) => d.rate / peers[i]!);
    const rows: Array<[string, string, string]> = [
      [
        'drain 20,000 trivial jobs (jobs/s)',
        summary(drains.map((d) => d.rate)),
        `≥ BullMQ: ${summary(peers)} (ratio ${summary(ratio, 2)})`,
      ],
      [
        'daemon CPU per trivial job (µs)',
        summary(
          drains.map((d) => d.cpuPerJobUs),
          1,
        ),
        '≤ 60',
      ],
      [
        'pickup p50 / p99 at 100 jobs/s (ms)',
        `${summary(
          pick100.map((x) => median(x)),
          2,
        )} / ${summary(
          pick100.map((x) => percentile(x, 99)),
          2,
        )}`,
        `≤ 1 / ≤ 5 (BullMQ ${summary(
          peerPick100.map((x) => median(x)),
          2,
        )} / ${summary(
          peerPick100.map((x) => percentile(x, 99)),
          2,
        )})`,
      ],
      [
        'pickup p50 / p99 at 1,000 jobs/s (ms)',
        `${summary(
          pick1000.map((x) => median(x)),
          2,
        )} / ${summary(
          pick1000.map((x) => percentile(x, 99)),
          2,
        )}`,
        '≤ 1 / ≤ 5',
      ],
      [
        'cancel → executor signal aborted, p99 over 200 (ms)',
        summary(
          cancels.map((x) => percentile(x, 99)),
          2,
        ),
        '≤ 10',
      ],
      [
        'reschedule → old execution aborted (lost), p99 of 200 (ms)',
        summary(
          reschedules.map((x) => percentile(x, 99)),
          2,
        ),
        '≤ 10',
      ],
      [
        'control-plane requests per job while draining',
        summary(
          drains.map((d) => d.requestsPerJob),
          3,
        ),
        '≤ 0.1',
      ],
    ];
    out('');
    for (const [name, value, bar] of rows) out(`  ${name.padEnd(52)} ${value.padEnd(34)} bar ${bar}`);
  } finally {
    await redis.stop();
  }
  if (process.env.BENCH_SKIP_HOLD !== '1') {
    const h = await holdRun();
    out(
      `  ${`${fmt(HOLD_JOBS)} in-flight jobs held ${HOLD_MS / 1000} s (lease TTL 10 s), once`.padEnd(52)} ` +
        `${`${h.lost} leases lost, RSS +${fmt(h.rssPerJob / 1024, 2)} KB/job, ${fmt(h.requestsPerMinute, 1)} requests/min`.padEnd(34)} bar no lease lost; ≤ 20 KB/job; O(1) per lease interval`,
    );
  }
  const fence = await fenceRun(3_000);
  out(
    `  ${'partitioned holder fences itself (TTL 3 s), 20 jobs, once'.padEnd(52)} ` +
      `${`${fence.length} of 20 fenced, after ${fmt(Math.min(...fence), 0)}–${fmt(Math.max(...fence), 0)} ms`.padEnd(34)} bar before the lease can move (< 3,000 ms after the last renewal)`,
  );
  const idle = await idleRun();
  out(
    `  ${'idle operator, 20 s of long polls, once'.padEnd(52)} ${`RSS ${fmt(idle.rssMb, 1)} MB, CPU ${fmt(idle.cpuPercent, 3)} %`.padEnd(34)} bar RSS ≤ 100 MB; CPU ≤ 0.2 %`,
  );
}

export { cancelRun, drainRun, fenceRun, holdRun, idleRun, pickupRun, rescheduleRun };

if (import.meta.main) await benchDaemon();
