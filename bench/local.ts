/**
 * The local data plane: `dev`'s time to its first completed job (from a cold start on a fresh data
 * directory, synthetic dataset generation included), and the column-statistics job's rows per second
 * on the synthetic events, all ten statistics on every column the seed's example names.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestContext } from '../src/executor/testing.ts';
import { summary } from './lib.ts';

const DEV_RUNS = 3;
const STATS_RUNS = 5;

function runDev(dataDir: string): Promise<{ firstS: number; allS: number; wallS: number }> {
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    ['dist/src/cli/main.js', 'dev', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--exit-when-done'],
    { env: { ...process.env, DPO_METRICS_LISTEN: 'off' }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      const m = /completed in ([\d.]+) s \(first job completed after ([\d.]+) s\)/.exec(out);
      if (code !== 0 || !m) return reject(new Error(`dev exited ${code}:\n${out}`));
      resolve({ allS: Number(m[1]), firstS: Number(m[2]), wallS: (performance.now() - t0) / 1000 });
    });
  });
}

export async function benchLocal(): Promise<void> {
  process.stdout.write('\n== local data plane (DuckDB)\n');
  const first: number[] = [];
  const all: number[] = [];
  const wall: number[] = [];
  for (let i = 0; i <= DEV_RUNS; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'dpo-bench-dev-'));
    try {
      const r = await runDev(dir);
      if (i === 0) continue; // warm-up (file cache)
      first.push(r.firstS);
      all.push(r.allS);
      wall.push(r.wallS);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  process.stdout.write(
    `dev, fresh data dir, 2,000,000 synthetic events (${DEV_RUNS} runs, median (range)):\n` +
      `  first job completed after  ${summary(first, 2)} s (from the command's start, dataset generation included)\n` +
      `  all 12 example jobs ended  ${summary(all, 2)} s; process wall time ${summary(wall, 2)} s\n`,
  );

  // The build, like the rest of the bench (a variable keeps tsc from resolving dist/ at typecheck).
  const built = '../dist/executors/local/executor.js';
  const { LocalExecutor } = (await import(built)) as typeof import('../executors/local/executor.ts');
  const dir = mkdtempSync(join(tmpdir(), 'dpo-bench-local-'));
  const ex = new LocalExecutor({
    dir,
    queryTimeoutMs: 300_000,
    maxResultRows: 10,
    sampleRows: 100,
    maxSampleRows: 100,
    histogramBins: 10,
  });
  const every = Object.fromEntries(
    [
      'null_value_count',
      'nan_value_count',
      'value_count',
      'lower_bound',
      'upper_bound',
      'approx_count_distinct',
      'completeness',
      'histogram',
      'mean',
      'standard_deviation',
    ].map((s) => [s, true]),
  );
  const { ctx } = createTestContext();
  for (const rows of [2_000_000, 10_000_000]) {
    await ex.seedDemoData(rows);
    const columns = ['event_id', 'country', 'amount', 'event_timestamp', '_nio_access_rule_id'];
    const input = {
      dataset_id: 424,
      enabled_column_stats: Object.fromEntries(
        columns.map((c) => [c, { data_type: 'string', enabled_column_stats: every }]),
      ),
    };
    const rates: number[] = [];
    for (let i = 0; i <= STATS_RUNS; i++) {
      const t = performance.now();
      await ex.execute(
        {
          id: `b-${i}`,
          type: 'datasets_calculate_column_stats',
          attempt: 1,
          maxAttempts: 1,
          companyId: 56,
          dataPlaneId: 'dp',
          input,
        },
        ctx,
      );
      if (i > 0) rates.push(rows / ((performance.now() - t) / 1000));
    }
    process.stdout.write(
      `datasets_calculate_column_stats, ${rows.toLocaleString('en-US')} rows, all 10 statistics on ${columns.length} columns: ` +
        `${summary(
          rates.map((r) => r / 1e6),
          1,
        )} M rows/s\n`,
    );
  }
  await ex.close();
  rmSync(dir, { recursive: true, force: true });
}
