/**
 * The local executor as the daemon holds it (executors/local/lazy.ts): DuckDB loads on the first job,
 * not at startup; the data plane's lock file still stops a second daemon at startup; DuckDB's memory
 * limit is the one configured.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalExecutor } from '../../executors/local/executor.ts';
import { LazyLocalExecutor } from '../../executors/local/lazy.ts';
import { createTestContext, testJob } from '../../src/executor/testing.ts';
import { localConfig } from './support.ts';

const ROOT = resolve(import.meta.dirname, '../..');

/** Runs `code` (an ES module) in a fresh node process; resolves with its stdout once it exits 0. */
function node(code: string, onLine?: (line: string) => void): { done: Promise<string>; kill(): void } {
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d;
    for (const line of d.toString().split('\n')) if (line) onLine?.(line);
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d;
  });
  const done = new Promise<string>((res, rej) =>
    child.on('exit', (code) => (code === 0 ? res(out) : rej(new Error(`exit ${code}: ${err}`)))),
  );
  return { done, kill: () => child.kill('SIGTERM') };
}

describe('the local executor loads DuckDB on first use', () => {
  it('an idle daemon serving local has not loaded DuckDB; the first job loads it and runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpo-lazy-'));
    // A fresh process: whether DuckDB's native module is mapped is read from /proc/self/maps.
    const out = await node(`
      import { readFileSync } from 'node:fs';
      import { localModule } from './executors/local/index.ts';
      import { createTestContext, testJob } from './src/executor/testing.ts';
      const duck = () => /duckdb[^\\n]*\\.node/.test(readFileSync('/proc/self/maps', 'utf8'));
      const ex = await localModule.createExecutor({ DPO_LOCAL_DIR: ${JSON.stringify(dir)} });
      await ex.start();
      const idle = duck();
      const t = createTestContext();
      const result = await ex.execute(testJob('nql-forecast', { compiled_sql: 'SELECT 42 AS answer', nql: '-' }), t.ctx);
      console.log(JSON.stringify({ idle, afterJob: duck(), result }));
      await ex.close();
    `).done;
    const r = JSON.parse(out.trim().split('\n').at(-1)!);
    expect(r.idle).toBe(false);
    expect(r.afterJob).toBe(true);
    expect(JSON.stringify(r.result)).toContain('42');
  }, 60_000);

  it('a second process on the same directory fails at start, naming the holder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpo-lazy-'));
    let ready!: () => void;
    const started = new Promise<void>((r) => {
      ready = r;
    });
    const holder = node(
      `
      import { localModule } from './executors/local/index.ts';
      const ex = await localModule.createExecutor({ DPO_LOCAL_DIR: ${JSON.stringify(dir)} });
      await ex.start();
      console.log('holding');
      process.on('SIGTERM', async () => { await ex.close(); process.exit(0); });
      setInterval(() => {}, 1000);
    `,
      (line) => line === 'holding' && ready(),
    );
    try {
      await started;
      const second = new LazyLocalExecutor(localConfig(dir));
      await expect(second.start()).rejects.toThrow(
        /the local data plane at .*warehouse\.duckdb is in use by another process \(pid \d+/,
      );
    } finally {
      holder.kill();
      await holder.done;
    }
    // Released on close: this process may take it now.
    const third = new LazyLocalExecutor(localConfig(dir));
    await third.start();
    await third.close();
  }, 60_000);

  it('a lock left by a process that is gone is taken over', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpo-lazy-'));
    const gone = spawn(process.execPath, ['-e', '']);
    const pid = gone.pid!;
    await new Promise((r) => gone.on('exit', r));
    writeFileSync(join(dir, 'daemon.lock'), JSON.stringify({ pid, host: hostname() }));
    const ex = new LazyLocalExecutor(localConfig(dir));
    await ex.start();
    const t = createTestContext();
    await ex.execute(testJob('nql-forecast', { compiled_sql: 'SELECT 1 AS one', nql: '-' }), t.ctx);
    expect(ex.loaded).toBe(true);
    await ex.close();
  }, 60_000);
});

describe('DPO_LOCAL_MEMORY_LIMIT', () => {
  it("bounds DuckDB: the warehouse's memory_limit is the configured size", async () => {
    const toBytes = (s: string) => {
      const m = /^([\d.]+)\s*(B|KiB|MiB|GiB|KB|MB|GB)$/.exec(s.trim());
      if (!m) throw new Error(`unexpected size ${s}`);
      const unit = { B: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, KB: 1e3, MB: 1e6, GB: 1e9 }[m[2]!]!;
      return Number(m[1]) * unit;
    };
    for (const limit of ['256MB', '1GiB']) {
      const ex = new LocalExecutor(
        localConfig(mkdtempSync(join(tmpdir(), 'dpo-mem-')), { memoryLimit: limit }),
      );
      try {
        const [row] = await ex.query(`SELECT current_setting('memory_limit') AS m`);
        // DuckDB prints the limit in binary units with one decimal (256MB → 244.1 MiB).
        expect(Math.abs(toBytes(String(row!.m)) / toBytes(limit) - 1)).toBeLessThan(0.001);
      } finally {
        await ex.close();
      }
    }
  }, 60_000);
});
