/**
 * The Snowflake executor through the daemon and the bundled control plane, against the fake driven
 * by the real snowflake-sdk: every type completes (effects checked with direct SQL), a cancel
 * mid-query (the fake sees the abort before the job turns `cancelled`), a drain that leaves the
 * query running for the next holder, a session expiring mid-job, and SIGKILLed daemons (real
 * `dataplane-operator run` processes) whose successor reattaches: the fake saw one execution.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { SnowflakeExecutor } from '../../executors/snowflake/executor.ts';
import { snowflakeModule } from '../../executors/snowflake/index.ts';
import type { Job } from '../../src/contract/index.ts';
import type { ControlPlane } from '../../src/daemon/control-plane.ts';
import type { FakeSnowflake } from '../fakes/snowflake.ts';
import { call, clients, startTestControlPlane, type TestControlPlane, waitFor } from '../helpers.ts';
import { startTestDaemon, type TestDaemon } from '../support/daemon.ts';
import { Partition } from '../support/partition.ts';
import { type CliProcess, runCli } from '../support/processes.ts';
import { snowflakeEnv, startFake } from './support.ts';

let cleanup: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

interface Stack {
  fake: FakeSnowflake;
  cp: TestControlPlane;
  submit(type: string, input: unknown): Promise<Job>;
  get(id: string): Promise<Job>;
  settle(id: string): Promise<Job>;
  /** A daemon; `partitioned`: its control-plane link can be cut (`partition.cutNow()`). */
  daemon(opts?: {
    partitioned?: boolean;
  }): Promise<{ td: TestDaemon; ex: SnowflakeExecutor; partition?: Partition }>;
}

async function stack(): Promise<Stack> {
  const fake = await startFake();
  const cp = await startTestControlPlane({ leaseTtlMs: 1_500 });
  cleanup.push(
    () => fake.close(),
    () => cp.close(),
  );
  const c = clients(cp);
  return {
    fake,
    cp,
    submit: (type, input) => c.submit(type, input),
    get: async (id) => (await c.user<Job>('GET', `/v1/jobs/${id}`)).body,
    async settle(id) {
      return waitFor(
        async () => {
          const r = await call<Job>(cp.url, 'GET', `/v1/jobs/${id}/wait?timeout_ms=5000`, {
            token: cp.adminToken,
          });
          return ['completed', 'failed', 'cancelled'].includes(r.body.state) ? r.body : undefined;
        },
        { what: `job ${id} to end`, timeoutMs: 20_000 },
      );
    },
    async daemon(opts = {}) {
      const ex = (await snowflakeModule.createExecutor(snowflakeEnv(fake))) as SnowflakeExecutor;
      let partition: Partition | undefined;
      const td = await startTestDaemon(cp, {
        executors: [ex],
        jobTimeoutMs: 600_000,
        progressIntervalMs: 100,
        ...(opts.partitioned
          ? {
              // Full while it holds its one job: a poll parked before the cut claims nothing for it.
              concurrency: 1,
              wrapControlPlane: (inner: ControlPlane) => {
                partition = new Partition(inner);
                return partition;
              },
            }
          : {}),
      });
      cleanup.push(
        () => td.stop(),
        () => ex.close(),
      );
      return { td, ex, ...(partition ? { partition } : {}) };
    },
  };
}

const dml = (id: number, sql: string) => ({
  dataset_id: id,
  nql: 'n/a',
  compiled_sql: sql,
  nio_last_modified_at: '2024-01-15T10:30:00Z',
});

async function seedDataset(s: Stack, id: number) {
  await s.fake.sql('CREATE SCHEMA IF NOT EXISTS company_56');
  await s.fake.sql(
    `CREATE TABLE company_56.dataset_${id} AS SELECT i AS id, i * 1.5 AS x FROM range(1, 101) t(i)`,
  );
}

describe('through the daemon', () => {
  it('runs every Snowflake job type to completion', async () => {
    const s = await stack();
    await s.daemon();
    await s.fake.sql('CREATE SCHEMA IF NOT EXISTS company_56');
    await s.fake.sql(`CREATE TABLE company_56.training_data AS SELECT i AS price, i % 3 AS brand,
      CASE WHEN i < 20 THEN 'low' ELSE 'high' END AS category FROM range(0, 40) t(i)`);
    const created = await s.settle(
      (
        await s.submit('datasets_create_table', {
          dataset_id: 1234,
          compiled_sql:
            'CREATE TABLE company_56.dataset_1234 (id INT, x DOUBLE, name STRING, created_at TIMESTAMP_TZ) CLUSTER BY (created_at)',
        })
      ).id,
    );
    expect(created.state, JSON.stringify(created.failures)).toBe('completed');
    await s.fake
      .sql(`INSERT INTO company_56.source_table SELECT i, i / 4, 'n' || i, now() FROM range(0, 50) t(i)`)
      .catch(async () => {
        await s.fake.sql(
          `CREATE TABLE company_56.source_table AS SELECT i AS id, i / 4 AS x, 'n' || i AS name, now() AS created_at FROM range(0, 50) t(i)`,
        );
      });
    const inserted = await s.settle(
      (
        await s.submit(
          'datasets_execute_dml',
          dml(
            1234,
            'INSERT INTO company_56.dataset_1234 SELECT * FROM company_56.source_table WHERE id < 30',
          ),
        )
      ).id,
    );
    expect(inserted.state, JSON.stringify(inserted.failures)).toBe('completed');
    expect(inserted.result).toEqual({ type: 'datasets_execute_dml', affected_rows: 30 });
    const jobs = await Promise.all([
      s.submit('datasets_sample', { dataset_id: 1234, sample_size: 10 }),
      s.submit('datasets_calculate_column_stats', {
        dataset_id: 1234,
        enabled_column_stats: {
          x: {
            data_type: 'double',
            enabled_column_stats: { mean: true, histogram: true, value_count: true },
          },
        },
      }),
      s.submit('models_train_classifier', {
        config: {
          model_type: 'classification',
          target_column: 'category',
          feature_columns: ['price', 'brand'],
          training_table: 'company_56.training_data',
          output_model_name: 'product_classifier_v1',
        },
      }),
    ]);
    const [sample, stats, model] = await Promise.all(jobs.map((j) => s.settle(j.id)));
    for (const j of [sample, stats, model])
      expect(j!.state, `${j!.type}: ${JSON.stringify(j!.failures)}`).toBe('completed');
    expect(sample!.result).toMatchObject({ rows: 10 });
    expect(await s.fake.sql('SELECT count(*)::INT AS n FROM NARRATIVE_OPERATOR.DATASET_1234_SAMPLE')).toEqual(
      [{ n: 10 }],
    );
    expect((stats!.result as any).columns.x).toMatchObject({ value_count: 30, mean: 14.5 / 4 });
    expect(
      await s.fake.sql(
        'SELECT count(*)::INT AS n FROM NARRATIVE_OPERATOR.COLUMN_STATS WHERE dataset_id = 1234',
      ),
    ).toEqual([{ n: 1 }]);
    expect((model!.result as any).result).toMatchObject({ model_name: 'product_classifier_v1' });
    expect(Object.keys((model!.result as any).result.feature_importance).sort()).toEqual(['brand', 'price']);
    const truncated = await s.settle((await s.submit('datasets_truncate_table', { dataset_id: 1234 })).id);
    expect(truncated.state).toBe('completed');
    expect(await s.fake.sql('SELECT count(*)::INT AS n FROM company_56.dataset_1234')).toEqual([{ n: 0 }]);
    const deleted = await s.settle(
      (
        await s.submit('datasets_delete_table', {
          external_id: 'company_56.dataset_1234',
          is_narrative_managed: true,
        })
      ).id,
    );
    expect(deleted.state).toBe('completed');
    expect(
      await s.fake.sql(
        "SELECT count(*)::INT AS n FROM information_schema.tables WHERE table_name ILIKE 'dataset_1234'",
      ),
    ).toEqual([{ n: 0 }]);
    // A refusal is a failure with its code, not retried.
    const refused = await s.settle(
      (
        await s.submit('datasets_delete_table', {
          external_id: 'company_56.source_table',
          is_narrative_managed: false,
        })
      ).id,
    );
    expect(refused).toMatchObject({ state: 'failed' });
    expect(refused.failures.map((f) => f.code)).toEqual(['UNMANAGED_TABLE']);
  }, 30_000);

  it('cancels mid-query: the fake sees the abort before the job turns cancelled', async () => {
    const s = await stack();
    await s.daemon();
    await seedDataset(s, 7);
    s.fake.delays.push({ match: /^UPDATE company_56\.dataset_7/, ms: 20_000 });
    const job = await s.submit('datasets_execute_dml', dml(7, 'UPDATE company_56.dataset_7 SET x = 0'));
    const q = await waitFor(() => s.fake.executions(/^UPDATE company_56\.dataset_7/)[0], {
      what: 'the update submitted',
    });
    await waitFor(async () => ((await s.get(job.id)).checkpoint as any)?.steps?.dml?.query_id, {
      what: 'the query id checkpoint',
    });
    await call(s.cp.url, 'POST', `/v1/jobs/${job.id}/cancel`, { token: s.cp.adminToken, body: {} });
    const done = await s.settle(job.id);
    expect(done.state).toBe('cancelled');
    expect(q.status).toBe('ABORTED');
    expect(q.abortedAt).toBeLessThanOrEqual(Date.parse(done.ended_at as string));
    expect(await s.fake.sql('SELECT count(*)::INT AS n FROM company_56.dataset_7 WHERE x = 0')).toEqual([
      { n: 0 },
    ]);
  }, 30_000);

  it('a drain leaves the query running, and the next holder finishes it: one execution', async () => {
    const s = await stack();
    const first = await s.daemon();
    await seedDataset(s, 8);
    s.fake.delays.push({ match: /^DELETE FROM company_56\.dataset_8/, ms: 1_500 });
    const job = await s.submit(
      'datasets_execute_dml',
      dml(8, 'DELETE FROM company_56.dataset_8 WHERE id <= 60'),
    );
    const q = await waitFor(() => s.fake.executions(/^DELETE FROM company_56\.dataset_8/)[0], {
      what: 'the delete submitted',
    });
    await waitFor(async () => ((await s.get(job.id)).checkpoint as any)?.steps?.dml?.query_id, {
      what: 'the query id checkpoint',
    });
    await first.td.daemon.drain(50);
    await first.ex.close();
    // The drain released the job and deleted no session: the query still runs.
    expect(q.status).toBe('RUNNING');
    expect(s.fake.events.filter((e) => e.startsWith('session-delete'))).toEqual([]);
    await s.daemon();
    const done = await s.settle(job.id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    expect(done.result).toEqual({ type: 'datasets_execute_dml', affected_rows: 60 });
    expect(s.fake.executions(/^DELETE FROM company_56\.dataset_8/)).toHaveLength(1);
    expect(q.abortedAt).toBeUndefined();
  }, 30_000);

  it('a rescheduled job whose holder is cut off: the next holder stops the old query before it runs afresh, and the stale checkpoint is cleared', async () => {
    const s = await stack();
    const first = await s.daemon({ partitioned: true });
    await seedDataset(s, 9);
    const match = /^UPDATE company_56\.dataset_9\b/;
    s.fake.delays.push({ match, ms: 60_000 });
    const job = await s.submit('datasets_execute_dml', dml(9, 'UPDATE company_56.dataset_9 SET x = 0'));
    const old = await waitFor(() => s.fake.executions(match)[0], { what: 'the update submitted' });
    await waitFor(async () => ((await s.get(job.id)).checkpoint as any)?.steps?.dml?.query_id, {
      what: 'the query id checkpoint',
    });
    first.partition!.cutNow();
    const r = await call(s.cp.url, 'POST', `/v1/jobs/${job.id}/reschedule`, {
      token: s.cp.adminToken,
      body: {},
    });
    expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
    const rescheduled = await s.get(job.id);
    expect(rescheduled).toMatchObject({ state: 'pending', checkpoint: null });
    expect((rescheduled.stale_checkpoints as any[])[0].steps.dml.query_id).toBe(old.id);
    expect(old.status).toBe('RUNNING');
    s.fake.delays.length = 0;
    await s.daemon();
    const done = await s.settle(job.id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    expect(done.result).toEqual({ type: 'datasets_execute_dml', affected_rows: 100 });
    const runs = s.fake.executions(match);
    expect(runs).toHaveLength(2);
    expect(old.status).toBe('ABORTED');
    const events = s.fake.events;
    expect(events.indexOf(`status ${old.id} ABORTED`)).toBeGreaterThanOrEqual(0);
    expect(events.indexOf(`status ${old.id} ABORTED`)).toBeLessThan(events.indexOf(`submit ${runs[1]!.id}`));
    expect(done.stale_checkpoints).toEqual([]);
  }, 30_000);

  it('a session that expires mid-job: a fresh connection reattaches by query id', async () => {
    const s = await stack();
    await s.daemon();
    await seedDataset(s, 9);
    s.fake.delays.push({ match: /^DELETE FROM company_56\.dataset_9/, ms: 600 });
    const logins = s.fake.logins.ok;
    const job = await s.submit(
      'datasets_execute_dml',
      dml(9, 'DELETE FROM company_56.dataset_9 WHERE id <= 5'),
    );
    await waitFor(() => s.fake.executions(/^DELETE FROM company_56\.dataset_9/)[0], {
      what: 'the delete submitted',
    });
    s.fake.expireSessions('390114');
    const done = await s.settle(job.id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    expect(done.result).toEqual({ type: 'datasets_execute_dml', affected_rows: 5 });
    expect(s.fake.logins.ok).toBeGreaterThan(logins);
    expect(s.fake.executions(/^DELETE FROM company_56\.dataset_9/)).toHaveLength(1);
  }, 30_000);
});

describe('the error table through the daemon', () => {
  it('each class fails the job with its code, retry decision and details; a retryable one is retried', async () => {
    const s = await stack();
    await s.daemon();
    const cases: Array<[string, string, boolean]> = [
      ['002003', 'SNOWFLAKE_OBJECT_NOT_FOUND', false],
      ['001003', 'SNOWFLAKE_SQL_ERROR', false],
      ['003001', 'SNOWFLAKE_ACCESS_DENIED', false],
      ['000606', 'SNOWFLAKE_NO_WAREHOUSE', false],
      ['090073', 'SNOWFLAKE_QUOTA_EXCEEDED', false],
      ['000630', 'TIMEOUT', false],
      ['000604', 'SNOWFLAKE_QUERY_CANCELLED', false],
      ['000625', 'SNOWFLAKE_TRANSIENT', true],
    ];
    await s.fake.sql('CREATE SCHEMA IF NOT EXISTS company_56');
    const jobs = await Promise.all(
      cases.map(async ([code], i) => {
        const id = 300 + i;
        await s.fake.sql(`CREATE TABLE company_56.dataset_${id} (id INT)`);
        s.fake.failures.push({
          match: new RegExp(`DATASET_${id}"$`),
          at: 'execute',
          code,
          message: `injected ${code}`,
          sqlState: '42000',
          times: 1,
        });
        return s.submit('datasets_truncate_table', { dataset_id: id });
      }),
    );
    const done = await Promise.all(jobs.map((j) => s.settle(j.id)));
    done.forEach((job, i) => {
      const [code, jobCode, retryable] = cases[i]!;
      const first = job.failures[0]!;
      expect(first, code).toMatchObject({
        code: jobCode,
        retryable,
        details: { snowflake_code: code, sql_state: '42000' },
      });
      expect((first.details as any).query_id).toMatch(/^[0-9a-f-]{36}$/);
      // Not retryable: failed at once; retryable: the next attempt completed.
      expect(job.state, code).toBe(retryable ? 'completed' : 'failed');
    });
  }, 30_000);
});

describe('SIGKILL of the daemon', () => {
  function daemon(s: Stack): CliProcess {
    const p = runCli(['run'], {
      DPO_CONTROL_PLANE_URL: s.cp.url,
      DPO_TOKEN: s.cp.operatorToken,
      DPO_DATA_PLANE_ID: s.cp.dataPlaneId,
      DPO_EXECUTORS: 'snowflake',
      DPO_METRICS_LISTEN: 'off',
      DPO_POLL_WAIT_MS: '1000',
      DPO_PROGRESS_INTERVAL_MS: '200',
      ...snowflakeEnv(s.fake),
    });
    cleanup.push(() => p.kill('SIGKILL'));
    cleanup.push(() => expect(p.stderr()).not.toContain('LOOPBACK GUARD'));
    return p;
  }

  it('after the submit: the next daemon reattaches and the fake saw one execution', async () => {
    const s = await stack();
    await seedDataset(s, 11);
    s.fake.delays.push({ match: /^DELETE FROM company_56\.dataset_11/, ms: 1_500 });
    const first = daemon(s);
    const job = await s.submit(
      'datasets_execute_dml',
      dml(11, 'DELETE FROM company_56.dataset_11 WHERE id > 90'),
    );
    await waitFor(async () => ((await s.get(job.id)).checkpoint as any)?.steps?.dml?.query_id, {
      what: 'the query id checkpoint',
      timeoutMs: 15_000,
    });
    first.kill('SIGKILL');
    await first.exited;
    daemon(s);
    const done = await s.settle(job.id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    expect(done.result).toEqual({ type: 'datasets_execute_dml', affected_rows: 10 });
    expect(s.fake.executions(/^DELETE FROM company_56\.dataset_11/)).toHaveLength(1);
  }, 45_000);

  it('between the submit and the checkpoint: the next daemon finds the query by its QUERY_TAG, one execution', async () => {
    const s = await stack();
    await seedDataset(s, 12);
    s.fake.delays.push({ match: /^DELETE FROM company_56\.dataset_12/, ms: 500 });
    let first: CliProcess | undefined;
    s.fake.hooks.onSubmit = async (q) => {
      if (/^DELETE FROM company_56\.dataset_12/.test(q.sql) && first) {
        // Snowflake has the statement; the daemon dies before it hears the query id.
        first.kill('SIGKILL');
        await first.exited;
      }
    };
    first = daemon(s);
    const job = await s.submit(
      'datasets_execute_dml',
      dml(12, 'DELETE FROM company_56.dataset_12 WHERE id > 95'),
    );
    await waitFor(() => first?.child.signalCode === 'SIGKILL', {
      what: 'the first daemon killed at submit',
      timeoutMs: 15_000,
    });
    const intent = (await s.get(job.id)).checkpoint as any;
    expect(intent.steps.dml).toMatchObject({ attempt: 1, submission: 1 });
    expect(intent.steps.dml.query_id).toBeUndefined();
    daemon(s);
    const done = await s.settle(job.id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    expect(done.result).toEqual({ type: 'datasets_execute_dml', affected_rows: 5 });
    expect(s.fake.executions(/^DELETE FROM company_56\.dataset_12/)).toHaveLength(1);
    expect(s.fake.executions(/QUERY_HISTORY/).length).toBeGreaterThan(0);
  }, 45_000);
});
