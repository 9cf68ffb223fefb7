/**
 * `npm run bench -- poll-cost`: what a remote job of an hour costs in status calls, for EMR
 * Serverless, Snowflake and SageMaker, each through its real SDK against its fake on 127.0.0.1
 * (test/fakes), the three at once in this process.
 *
 * An hour is compressed: every executor's pause between two status polls is
 * `min + jitter(min·2^n capped at max − min)` (src/executor/remote-run.ts, Snowflake's client.ts), so
 * the schedule scales linearly with (min, max). With both divided by SCALE the job runs 3,600/SCALE
 * seconds, and the status calls counted at the fake are the calls of an hour at the defaults. The
 * defaults are read from each executor's config schema, so a change of default shows here.
 * The remote work never ends by itself (EMR and SageMaker fakes in manual mode, a Snowflake
 * statement delayed past the window); at the end of the window the job is aborted (cancel path).
 * Runs from the TypeScript sources (the fakes live with the tests).
 */
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EmrServerlessEnv } from '../executors/emr-serverless/config.ts';
import { emrServerlessModule } from '../executors/emr-serverless/index.ts';
import { SageMakerEnv } from '../executors/sagemaker/config.ts';
import { sagemakerModule } from '../executors/sagemaker/index.ts';
import { SnowflakeEnv } from '../executors/snowflake/config.ts';
import { snowflakeModule } from '../executors/snowflake/index.ts';
import type { Executor } from '../src/executor/index.ts';
import { createTestContext, testJob } from '../src/executor/testing.ts';
import { emrEnv, fixture, seedResult } from '../test/emr-serverless/support.ts';
import { startFakeEmr } from '../test/fakes/emr-serverless.ts';
import { startFakeS3 } from '../test/fakes/s3.ts';
import { smEnv, startSmFakes, trainingInput } from '../test/sagemaker/support.ts';
import { snowflakeEnv, startFake } from '../test/snowflake/support.ts';

const SCALE = Number(process.env.BENCH_POLL_SCALE ?? 50);
const WINDOW_MS = 3_600_000 / SCALE;

/** The default of `name` in an executor's env schema (zod), as a number of milliseconds. */
function defaultMs(schema: { shape: Record<string, { parse(v: unknown): unknown }> }, name: string): number {
  return Number(schema.shape[name]!.parse(undefined));
}

/** Scaled poll bounds; at least 10 ms (the schemas' floor), which bounds SCALE for Snowflake. */
function scaled(min: number, max: number): { min: string; max: string } {
  return { min: String(Math.max(10, Math.round(min / SCALE))), max: String(Math.round(max / SCALE)) };
}

/**
 * A pass-through HTTP proxy on 127.0.0.1 that counts requests by path: the Snowflake fake has no call
 * counter of its own, and it is not ours to change.
 */
async function countingProxy(target: string) {
  const to = new URL(target);
  const counts = new Map<string, number>();
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').replace(/\?.*$/, '').replace(/[0-9a-f-]{36}/g, '{id}');
    counts.set(`${req.method} ${path}`, (counts.get(`${req.method} ${path}`) ?? 0) + 1);
    const up = httpRequest(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    counts,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

interface Row {
  name: string;
  min: number;
  max: number;
  calls: number;
}

/** Runs `job` on `executor` for the window, then aborts it; returns the status calls counted. */
async function runFor(
  executor: Executor,
  job: ReturnType<typeof testJob>,
  count: () => number,
): Promise<number> {
  const t = createTestContext({ deadline: Date.now() + 10 * WINDOW_MS });
  const run = executor.execute(job, t.ctx).catch(() => undefined);
  const start = count();
  await new Promise((r) => setTimeout(r, WINDOW_MS));
  const calls = count() - start;
  t.abort('cancel');
  await run;
  return calls;
}

async function emrRow(): Promise<Row> {
  const min = defaultMs(EmrServerlessEnv, 'DPO_EMR_POLL_MIN_MS');
  const max = defaultMs(EmrServerlessEnv, 'DPO_EMR_POLL_MAX_MS');
  const s = scaled(min, max);
  const s3 = await startFakeS3();
  const emr = await startFakeEmr({ s3, mode: 'manual', autoCancel: true, resultFor: seedResult });
  const ex = await emrServerlessModule.createExecutor(
    emrEnv(emr, s3, { DPO_EMR_POLL_MIN_MS: s.min, DPO_EMR_POLL_MAX_MS: s.max }),
  );
  try {
    const calls = await runFor(ex, testJob('costs', fixture('costs.input')), () => emr.calls.GetJobRun);
    return { name: 'EMR Serverless (GetJobRun)', min, max, calls };
  } finally {
    await ex.close?.();
    await emr.close();
    await s3.close();
  }
}

async function sageMakerRow(): Promise<Row> {
  const min = defaultMs(SageMakerEnv, 'DPO_SAGEMAKER_POLL_MIN_MS');
  const max = defaultMs(SageMakerEnv, 'DPO_SAGEMAKER_POLL_MAX_MS');
  const s = scaled(min, max);
  const fakes = await startSmFakes({ mode: 'manual', autoStop: true });
  const ex = await sagemakerModule.createExecutor(
    smEnv(fakes.sm, fakes.s3, fakes.hub, fakes.tokenPath, {
      DPO_SAGEMAKER_POLL_MIN_MS: s.min,
      DPO_SAGEMAKER_POLL_MAX_MS: s.max,
    }),
  );
  try {
    const calls = await runFor(
      ex,
      testJob('model_training_run', trainingInput()),
      () => fakes.sm.calls.DescribeTrainingJob,
    );
    return { name: 'SageMaker (DescribeTrainingJob)', min, max, calls };
  } finally {
    await ex.close?.();
    await fakes.stop();
  }
}

async function snowflakeRow(): Promise<Row> {
  const min = defaultMs(SnowflakeEnv, 'DPO_SNOWFLAKE_POLL_MIN_MS');
  const max = defaultMs(SnowflakeEnv, 'DPO_SNOWFLAKE_POLL_MAX_MS');
  const s = scaled(min, max);
  const fake = await startFake();
  const proxy = await countingProxy(fake.url);
  await fake.sql('CREATE SCHEMA IF NOT EXISTS company_56');
  await fake.sql('CREATE TABLE company_56.dataset_77 AS SELECT i AS id FROM range(0, 100) t(i)');
  fake.delays.push({ match: /DELETE FROM company_56\.dataset_77/i, ms: 3 * WINDOW_MS });
  const ex = await snowflakeModule.createExecutor(
    snowflakeEnv(fake, {
      DPO_SNOWFLAKE_URL: proxy.url,
      DPO_SNOWFLAKE_POLL_MIN_MS: s.min,
      DPO_SNOWFLAKE_POLL_MAX_MS: s.max,
    }),
  );
  const statusCalls = () =>
    [...proxy.counts]
      .filter(([k]) => /monitoring\/queries|\/queries\/\{id\}\/result/.test(k))
      .reduce((n, [, c]) => n + c, 0);
  try {
    const calls = await runFor(
      ex,
      testJob('datasets_execute_dml', {
        dataset_id: 77,
        nql: '-',
        compiled_sql: 'DELETE FROM company_56.dataset_77 WHERE id % 10 = 0',
        nio_last_modified_at: '2024-01-15T10:30:00Z',
      }),
      statusCalls,
    );
    return { name: 'Snowflake (query status + result)', min, max, calls };
  } finally {
    await ex.close?.();
    await proxy.close();
    await fake.close();
  }
}

export async function benchPollCost(): Promise<void> {
  process.stdout.write(
    `\n== Remote polling cost per job-hour (real SDKs against the fakes; the hour compressed ${SCALE}×: ${WINDOW_MS / 1000} s with poll bounds ÷${SCALE})\n`,
  );
  const rows = await Promise.all([emrRow(), snowflakeRow(), sageMakerRow()]);
  for (const r of rows) {
    const floor = Math.max(10 * SCALE, r.min);
    const note = floor > r.min ? ` (min scaled to the 10 ms floor: ${floor} ms)` : '';
    process.stdout.write(
      `  ${r.name.padEnd(36)} poll ${r.min / 1000}–${r.max / 1000} s${note}: ${String(r.calls).padStart(4)} status calls per job-hour   bar: a few hundred at most\n`,
    );
  }
}

if (import.meta.main) await benchPollCost();
