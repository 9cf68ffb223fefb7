/**
 * `npm run bench -- soak`: a soak of the daemon (not in CI; only when asked for by name). The built
 * control plane and daemon (child processes) run the local data plane under mixed traffic for
 * DPO_SOAK_MINUTES (default 30): queries, DML, samples, statistics, snapshot writes, with a share of
 * cancels. Every DPO_SOAK_SAMPLE_S (default 10) it samples the daemon's RSS (/proc/<pid>/status),
 * open file descriptors (/proc/<pid>/fd) and event-loop lag (its /metrics), then reports the jobs run
 * and the growth of each figure between the first and the last fifth of the run. A leak shows as
 * steady growth; a warmed-up daemon levels off. Linux only (/proc).
 *
 * BENCH_SOAK_MIX=mixed adds remote executors against their fakes on 127.0.0.1 (test/fakes): EMR
 * Serverless (costs jobs; fake S3 beside it) and Snowflake (samples), routed by DPO_ROUTES, beside
 * the local data plane. DuckDB runs under DPO_LOCAL_MEMORY_LIMIT (BENCH_SOAK_MEMORY_LIMIT, default
 * 256MB). Every sample is appended to BENCH_SOAK_OUT (CSV) as it is taken, and the report gives the
 * issue's plateau test: RSS growth over the last quarter against the level at the end of the first.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, seedResult } from '../test/emr-serverless/support.ts';
import { startFakeEmr } from '../test/fakes/emr-serverless.ts';
import { startFakeS3 } from '../test/fakes/s3.ts';
import { keyFiles, snowflakeEnv, startFake } from '../test/snowflake/support.ts';
import { CLI, freePort, median, startNode } from './lib.ts';

const DP = 'dp-soak';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sample {
  at: number;
  rssMb: number;
  fds: number;
  lagMs: number;
  /** The V8 heap in use (dpo_nodejs_heap_size_used_bytes): our code's share of the RSS. */
  heapMb: number;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}
const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

export async function benchSoak(): Promise<void> {
  const minutes = Number(process.env.DPO_SOAK_MINUTES ?? 30);
  const mixed = process.env.BENCH_SOAK_MIX === 'mixed';
  const memoryLimit = process.env.BENCH_SOAK_MEMORY_LIMIT ?? '256MB';
  const out = process.env.BENCH_SOAK_OUT;
  const sampleMs = Number(process.env.DPO_SOAK_SAMPLE_S ?? 10) * 1_000;
  // Not passed on to the children: the CLI refuses DPO_* variables it does not know.
  delete process.env.DPO_SOAK_MINUTES;
  delete process.env.DPO_SOAK_SAMPLE_S;
  const dir = mkdtempSync(join(tmpdir(), 'dpo-soak-'));
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
  const url = `http://127.0.0.1:${port}`;
  const cp = await startNode([CLI, 'control-plane'], {
    ready: () => fetch(`${url}/healthz`).then((r) => r.ok),
    env: {
      DPO_CP_LISTEN: `127.0.0.1:${port}`,
      DPO_DATA_DIR: dir,
      DPO_CP_TOKENS_FILE: tokens,
      DPO_LOG_LEVEL: 'warn',
    },
  });
  const user = async (method: 'GET' | 'POST', path: string, body?: unknown): Promise<any> => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    return res.json();
  };
  // The remote executors' fakes (mixed soak): EMR (auto mode: one state per GetJobRun, then the
  // seed's result in S3) and Snowflake (DuckDB behind the REST protocol), all on 127.0.0.1.
  const remote: NodeJS.ProcessEnv = {};
  const closers: Array<() => Promise<unknown>> = [];
  if (mixed) {
    const s3 = await startFakeS3();
    const emr = await startFakeEmr({ s3, resultFor: seedResult });
    const sf = await startFake();
    closers.push(
      () => emr.close(),
      () => s3.close(),
      () => sf.close(),
    );
    await sf.sql('CREATE SCHEMA IF NOT EXISTS company_56');
    await sf.sql('CREATE TABLE company_56.dataset_1 AS SELECT i AS id, i % 7 AS v FROM range(0, 20000) t(i)');
    const k = keyFiles();
    Object.assign(remote, {
      AWS_ACCESS_KEY_ID: 'AKIDSOAK000000000000',
      AWS_SECRET_ACCESS_KEY: 'soak-secret-not-used-anywhere-else',
      AWS_EC2_METADATA_DISABLED: 'true',
      ...Object.fromEntries(
        Object.entries({
          ...snowflakeEnv(sf, { DPO_SNOWFLAKE_POLL_MIN_MS: '20', DPO_SNOWFLAKE_POLL_MAX_MS: '200' }),
          DPO_SNOWFLAKE_PRIVATE_KEY_FILE: k.privateKeyFile,
          DPO_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE: k.passphraseFile,
        }),
      ),
      DPO_EMR_REGION: 'us-east-1',
      DPO_EMR_APPLICATION_ID: emr.applicationId,
      DPO_EMR_EXECUTION_ROLE_ARN: 'arn:aws:iam::123456789012:role/dpo-spark-jobs',
      DPO_EMR_S3_URI: 's3://dpo-test-bucket/operator',
      DPO_EMR_ENTRY_POINT: 's3://dpo-test-bucket/runner/job_runner.py',
      DPO_EMR_POLL_MIN_MS: '200',
      DPO_EMR_POLL_MAX_MS: '2000',
      DPO_EMR_S3_FORCE_PATH_STYLE: 'true',
      AWS_ENDPOINT_URL_EMR_SERVERLESS: emr.url,
      AWS_ENDPOINT_URL_S3: s3.url,
      // Types two enabled executors serve: costs on EMR, samples on Snowflake, the rest local.
      DPO_ROUTES: [
        'costs=emr-serverless',
        'datasets_sample=snowflake',
        ...[
          'forecast',
          'forecast-internal',
          'nql-forecast',
          'materialize-view',
          'materialized_views_collect_access_rules_billing_data',
          'datasets_create_table',
          'datasets_delete_table',
          'datasets_truncate_table',
          'datasets_calculate_column_stats',
          'datasets_execute_dml',
        ].map((t) => `${t}=local`),
      ].join(','),
    });
  }
  const daemon = await startNode([CLI, 'run'], {
    ready: () => fetch(`http://127.0.0.1:${metricsPort}/readyz`).then((r) => r.ok),
    env: {
      DPO_CONTROL_PLANE_URL: url,
      DPO_TOKEN_FILE: join(dir, 'operator.token'),
      DPO_DATA_PLANE_ID: DP,
      DPO_EXECUTORS: mixed ? 'local,emr-serverless,snowflake' : 'local',
      DPO_LOCAL_DIR: join(dir, 'local'),
      DPO_LOCAL_THREADS: '1',
      DPO_LOCAL_MEMORY_LIMIT: memoryLimit,
      ...remote,
      DPO_CONCURRENCY: '8',
      DPO_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
      DPO_LOG_LEVEL: 'warn',
    },
  });
  const pid = daemon.child.pid as number;
  const submit = (type: string, input: unknown, company = 56) =>
    user('POST', '/v1/jobs', { type, company_id: company, data_plane_id: DP, input });
  const created = await submit('datasets_create_table', {
    dataset_id: 1,
    compiled_sql: 'CREATE TABLE company_56.dataset_1 (id BIGINT, v VARCHAR, written_at TIMESTAMPTZ)',
  });
  const ready = await user('GET', `/v1/jobs/${created.id}/wait?timeout_ms=30000`);
  if (ready.state !== 'completed')
    throw new Error(`soak: the dataset was not created: ${JSON.stringify(ready)}`);

  const scrape = async () => {
    const text = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text());
    const value = (name: string) => {
      const m = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+([0-9.e+-]+)`, 'm').exec(text);
      return m ? Number(m[1]) : Number.NaN;
    };
    return {
      lagMs: value('dpo_event_loop_lag_seconds') * 1_000,
      heapMb: value('dpo_nodejs_heap_size_used_bytes') / 1_048_576,
    };
  };
  const samples: Sample[] = [];
  const started = Date.now();
  const end = started + minutes * 60_000;
  let submitted = 0;
  let cancels = 0;
  let n = 0;
  const traffic = (async () => {
    while (Date.now() < end) {
      n++;
      const k = n % 10;
      const job =
        k < 3
          ? submit('nql-forecast', {
              nql: 'n/a',
              compiled_sql: `SELECT count(*), max(id) FROM company_56.dataset_1 WHERE id % ${1 + (n % 7)} = 0`,
            })
          : k < 6
            ? submit('datasets_execute_dml', {
                dataset_id: 1,
                nql: 'n/a',
                compiled_sql: `INSERT INTO company_56.dataset_1 SELECT ${n} * 1000 + i, 'v' || i, now() FROM range(500) t(i)`,
                nio_last_modified_at: new Date().toISOString(),
              })
            : k < 7
              ? submit('datasets_sample', { dataset_id: 1, sample_size: 100 })
              : k < 8
                ? submit('datasets_calculate_column_stats', {
                    dataset_id: 1,
                    enabled_column_stats: {
                      id: {
                        data_type: 'long',
                        enabled_column_stats: { approx_count_distinct: true, mean: true },
                      },
                    },
                  })
                : k < 9
                  ? submit('materialize-view', {
                      nql: 'n/a',
                      dataset_id: 2,
                      compiled_select: `SELECT id, v, (id % 3)::BIGINT AS _nio_access_rule_id, 1000::BIGINT AS _nio_price_per_row FROM company_56.dataset_1 ORDER BY id DESC LIMIT 1000`,
                      first_run: true,
                    })
                  : submit('datasets_execute_dml', {
                      dataset_id: 1,
                      nql: 'n/a',
                      compiled_sql: `DELETE FROM company_56.dataset_1 WHERE id < ${(n - 200) * 1000}`,
                      nio_last_modified_at: new Date().toISOString(),
                    });
      const { id } = await job;
      submitted++;
      if (mixed && n % 4 === 0) {
        await submit('costs', fixture('costs.input'));
        submitted++;
      }
      if (n % 13 === 0 && id) {
        await user('POST', `/v1/jobs/${id}/cancel`, { reason: 'soak' });
        cancels++;
      }
      await sleep(100);
    }
  })();
  while (Date.now() < end) {
    await sleep(Math.min(sampleMs, Math.max(0, end - Date.now())));
    const sample: Sample = {
      at: Date.now() - started,
      rssMb: rssMb(pid),
      fds: fds(pid),
      ...(await scrape().catch(() => ({ lagMs: Number.NaN, heapMb: Number.NaN }))),
    };
    samples.push(sample);
    if (out) {
      if (samples.length === 1) appendFileSync(out, 'seconds,rss_mb,heap_mb,fds,lag_ms\n');
      appendFileSync(
        out,
        `${(sample.at / 1000).toFixed(0)},${sample.rssMb.toFixed(1)},${sample.heapMb.toFixed(1)},${sample.fds},${sample.lagMs.toFixed(2)}\n`,
      );
    }
  }
  await traffic;
  const counts: Record<string, number> = {};
  for (const state of ['completed', 'failed', 'cancelled', 'pending', 'running']) {
    let cursor: string | null = null;
    let total = 0;
    do {
      const page: any = await user(
        'GET',
        `/v1/jobs?state=${state}&per_page=1000${cursor ? `&cursor=${cursor}` : ''}`,
      );
      total += page.jobs.length;
      cursor = page.next_cursor;
    } while (cursor);
    counts[state] = total;
  }
  // Why jobs failed, by the code of their last failure (a soak should show none but cancels).
  const failures: Record<string, number> = {};
  let cursor: string | null = null;
  do {
    const page: any = await user(
      'GET',
      `/v1/jobs?state=failed&per_page=1000${cursor ? `&cursor=${cursor}` : ''}`,
    );
    for (const j of page.jobs) {
      const code = `${j.type}:${j.failures.at(-1)?.code ?? '?'}`;
      failures[code] = (failures[code] ?? 0) + 1;
    }
    cursor = page.next_cursor;
  } while (cursor);
  // Jobs by type and state (the mix: how many ran remote).
  const byType: Record<string, number> = {};
  cursor = null;
  do {
    const page: any = await user('GET', `/v1/jobs?per_page=1000${cursor ? `&cursor=${cursor}` : ''}`);
    for (const j of page.jobs) byType[`${j.type}:${j.state}`] = (byType[`${j.type}:${j.state}`] ?? 0) + 1;
    cursor = page.next_cursor;
  } while (cursor);
  await daemon.stop();
  await cp.stop();
  for (const close of closers) await close().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });

  // The issue's plateau test: growth over the last quarter ≤ 5 % of the level at the end of the first.
  // Each level is the median of the samples in the 10 % of the run before that point.
  const total = minutes * 60_000;
  const levelAt = (t: number) =>
    median(samples.filter((s) => s.at <= t && s.at > t - total / 10).map((s) => s.rssMb));
  const q1 = levelAt(total / 4);
  const q3 = levelAt((3 * total) / 4);
  const q4 = levelAt(total);
  const lastQuarterGrowth = ((q4 - q3) / q1) * 100;

  const fifth = Math.max(1, Math.floor(samples.length / 5));
  const first = samples.slice(0, fifth);
  const last = samples.slice(-fifth);
  const growth = (f: (s: Sample) => number, digits: number) => {
    const a = median(first.map(f));
    const b = median(last.map(f));
    return `${a.toFixed(digits)} → ${b.toFixed(digits)} (${b - a >= 0 ? '+' : ''}${(b - a).toFixed(digits)})`;
  };
  process.stdout.write(
    [
      `\nsoak: ${minutes} min of ${mixed ? 'mixed local + remote (EMR, Snowflake fakes)' : 'mixed local'} traffic, DPO_LOCAL_MEMORY_LIMIT=${memoryLimit}, ${submitted} jobs submitted (${cancels} cancels asked): ${JSON.stringify(counts)}`,
      `soak: jobs by type:state: ${JSON.stringify(byType)}`,
      `soak: RSS MB at the end of quarters 1, 3 and 4: ${q1.toFixed(1)}, ${q3.toFixed(1)}, ${q4.toFixed(1)}; growth over the last quarter ${lastQuarterGrowth >= 0 ? '+' : ''}${lastQuarterGrowth.toFixed(1)} % of the first quarter's level (bar ≤ 5 %)`,
      `soak: failures by type and code: ${JSON.stringify(failures)}`,
      `soak: daemon RSS MB, median of the first and last fifth: ${growth((s) => s.rssMb, 1)}`,
      `soak: daemon V8 heap used MB (the rest of the RSS is DuckDB and native buffers): ${growth((s) => s.heapMb, 1)}`,
      `soak: daemon open fds: ${growth((s) => s.fds, 0)}`,
      `soak: event-loop lag ms: ${growth((s) => s.lagMs, 2)}`,
      `soak: ${samples.length} samples every ${sampleMs / 1000} s`,
      '',
    ].join('\n'),
  );
}
