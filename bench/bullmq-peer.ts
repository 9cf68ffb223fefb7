/**
 * The peer: BullMQ on Redis, measured in the same run on the same machine. Redis (Debian's
 * redis-server) is started and stopped here, pinned to CPU 1, with AOF and appendfsync everysec;
 * the BullMQ worker runs in a child process pinned to CPU 0, concurrency 50, no-op jobs.
 *
 * `node bench/bullmq-peer.ts worker <port> <mode>` is the worker side (mode: drain | pickup).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import { freePort, hasTaskset } from './lib.ts';

const nowMs = () => performance.timeOrigin + performance.now();

async function workerMain(port: number, mode: string, expected: number): Promise<void> {
  const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
  const pickups: number[] = [];
  let done = 0;
  let first = 0;
  const worker = new Worker(
    'bench',
    async (job) => {
      if (first === 0) first = nowMs();
      if (mode === 'pickup') pickups.push(nowMs() - (job.data as { sent_at_ms: number }).sent_at_ms);
      return null;
    },
    {
      connection,
      concurrency: 50,
      autorun: true,
      removeOnComplete: { count: 0 },
      removeOnFail: { count: 0 },
    },
  );
  await worker.waitUntilReady();
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => {
    worker.on('completed', () => {
      done++;
      if (done === expected) resolve();
    });
  });
  const last = nowMs();
  process.stdout.write(`${JSON.stringify({ first, last, pickups })}\n`);
  await worker.close();
}

export interface RedisServer {
  port: number;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'dpo-redis-'));
  const port = await freePort();
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'yes',
    '--appendfsync',
    'everysec',
  ];
  const child = hasTaskset
    ? spawn('taskset', ['-c', '1', 'redis-server', ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
    : spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (/Ready to accept connections/.test(out)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`)));
    child.once('error', reject);
  });
  child.stdout?.resume();
  return {
    port,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

function startWorker(port: number, mode: string, expected: number) {
  const args = [import.meta.filename, 'worker', String(port), mode, String(expected)];
  const child = hasTaskset
    ? spawn('taskset', ['-c', '0', process.execPath, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
    : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const ready = new Promise<void>((resolve) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) resolve();
    });
  });
  const result = new Promise<{ first: number; last: number; pickups: number[] }>((resolve, reject) => {
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code === 0 && line) resolve(JSON.parse(line));
      else reject(new Error(`bullmq worker exited with ${code}`));
    });
  });
  return { ready, result };
}

/** Drains `n` no-op jobs added in bulk before the worker starts; jobs/s. */
export async function bullmqDrain(redis: RedisServer, n: number): Promise<number> {
  const queue = new Queue('bench', { connection: { host: '127.0.0.1', port: redis.port } });
  await queue.obliterate({ force: true });
  for (let i = 0; i < n; i += 1000) {
    await queue.addBulk(Array.from({ length: Math.min(1000, n - i) }, () => ({ name: 'noop', data: {} })));
  }
  const w = startWorker(redis.port, 'drain', n);
  const { first, last } = await w.result;
  await queue.close();
  return n / ((last - first) / 1000);
}

/** Open-loop pickup at `rate` jobs/s for `n` jobs; pickup latencies in ms. */
export async function bullmqPickup(redis: RedisServer, rate: number, n: number): Promise<number[]> {
  const queue = new Queue('bench', { connection: { host: '127.0.0.1', port: redis.port } });
  await queue.obliterate({ force: true });
  const w = startWorker(redis.port, 'pickup', n);
  await w.ready;
  await openLoop(rate, n, () => queue.add('noop', { sent_at_ms: nowMs() }).then(() => undefined));
  const { pickups } = await w.result;
  await queue.close();
  return pickups;
}

/** Sends `n` requests at `rate`/s on a fixed schedule, never waiting for earlier ones (open loop). */
export async function openLoop(rate: number, n: number, send: () => Promise<void>): Promise<void> {
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    else if (wait > 0) await new Promise((r) => setImmediate(r));
    inflight.push(send());
  }
  await Promise.all(inflight);
}

if (import.meta.main && process.argv[2] === 'worker') {
  await workerMain(Number(process.argv[3]), process.argv[4] ?? 'drain', Number(process.argv[5]));
  process.exit(0);
}
