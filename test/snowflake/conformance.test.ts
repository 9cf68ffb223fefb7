/**
 * Snowflake as it really answers (issue 21): one test per defect, through the real snowflake-sdk
 * against the fake, the fake answering as the conformance table (executors/snowflake/README.md)
 * says. Each test names the table's row it feeds.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { SnowflakeExecutor } from '../../executors/snowflake/executor.ts';
import { snowflakeModule } from '../../executors/snowflake/index.ts';
import { validateResult } from '../../src/catalogue/index.ts';
import { parseJsonLossless } from '../../src/contract/json.ts';
import { finishColumnStats } from '../../src/executor/column-stats.ts';
import { JobError } from '../../src/executor/index.ts';
import { createTestContext, testJob } from '../../src/executor/testing.ts';
import { type FakeSnowflake, snowflakeQueryId } from '../fakes/snowflake.ts';
import { waitFor } from '../helpers.ts';
import { snowflakeEnv, startFake } from './support.ts';

let fake: FakeSnowflake;
let ex: SnowflakeExecutor;
let nextDataset = 700;
const SNOWFLAKE_QUERY_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

beforeAll(async () => {
  fake = await startFake();
  ex = (await snowflakeModule.createExecutor(snowflakeEnv(fake))) as SnowflakeExecutor;
});
afterAll(async () => {
  await ex?.close();
  await fake?.close();
});
afterEach(() => {
  fake.delays.length = 0;
  fake.holds.length = 0;
  fake.failures.length = 0;
  fake.settings.abortingMs = 0;
  fake.settings.refuseLogins = 0;
  fake.settings.multiStatementCount = 1;
});

const run = (
  type: string,
  input: unknown,
  options: Parameters<typeof createTestContext>[0] = {},
  job = {},
  executor: SnowflakeExecutor = ex,
) => {
  const t = createTestContext(options);
  const j = testJob(type, input, job);
  return { t, job: j, done: executor.execute(j, t.ctx) };
};

async function dataset(company = 56, rows = 20): Promise<number> {
  const id = nextDataset++;
  await run('datasets_create_table', {
    dataset_id: id,
    compiled_sql: `CREATE TABLE company_${company}.dataset_${id} (id INT, x DOUBLE)`,
  }).done;
  if (rows > 0)
    await fake.sql(
      `INSERT INTO company_${company}.dataset_${id} SELECT i, i / 2 FROM range(1, ${rows + 1}) t(i)`,
    );
  return id;
}

const dml = (id: number, compiled_sql: string) => ({
  dataset_id: id,
  nql: 'n',
  compiled_sql,
  nio_last_modified_at: '2024-01-15T10:30:00Z',
});

describe('query ids (table: "Query id")', () => {
  it('the fake hands out Snowflake-shaped ids, which an RFC 4122 validator refuses', () => {
    for (let i = 0; i < 200; i++) {
      const id = snowflakeQueryId();
      expect(id).toMatch(SNOWFLAKE_QUERY_ID);
      expect(z.string().uuid().safeParse(id).success).toBe(false);
    }
    expect(z.string().uuid().safeParse('01bfd516-0009-ae23-0000-4c390101d1aa').success).toBe(false);
  });

  it('a DML job checkpoints the id as Snowflake hands it out, reattaches by it, and completes once', async () => {
    const id = await dataset();
    fake.delays.push({ match: new RegExp(`^DELETE FROM company_56.dataset_${id}\\b`), ms: 300 });
    const first = run('datasets_execute_dml', dml(id, `DELETE FROM company_56.dataset_${id} WHERE id <= 4`));
    const queryId = await waitFor(
      () => (first.t.checkpoint as any)?.steps?.dml?.query_id as string | undefined,
      {
        what: 'the query id checkpoint',
      },
    );
    expect(queryId).toMatch(SNOWFLAKE_QUERY_ID);
    expect(z.string().uuid().safeParse(queryId).success).toBe(false);
    first.t.abort('lost');
    await expect(first.done).rejects.toMatchObject({ reason: 'lost' });
    const second = run(
      'datasets_execute_dml',
      first.job.input,
      { checkpoint: first.t.checkpoint },
      { id: first.job.id, attempt: 2 },
    );
    expect(await second.done).toEqual({ type: 'datasets_execute_dml', affected_rows: 4 });
    expect(fake.executions(new RegExp(`^DELETE FROM company_56.dataset_${id}\\b`))).toHaveLength(1);
  });
});

describe('query statuses (table: "Query statuses")', () => {
  it('BLOCKED is still running: the job polls through it (BLOCKED, RUNNING, SUCCESS) and completes', async () => {
    const id = await dataset();
    const match = new RegExp(`^UPDATE company_56.dataset_${id}\\b`);
    fake.holds.push({ match, ms: 300 });
    const r = run('datasets_execute_dml', dml(id, `UPDATE company_56.dataset_${id} SET x = 0 WHERE id <= 3`));
    expect(await r.done).toEqual({ type: 'datasets_execute_dml', affected_rows: 3 });
    const q = fake.executions(match)[0]!;
    expect(fake.events.filter((e) => e.startsWith(`status ${q.id}`))).toEqual([
      `status ${q.id} BLOCKED`,
      `status ${q.id} RUNNING`,
      `status ${q.id} SUCCESS`,
    ]);
    expect(r.t.progress.map((p) => p.message)).toContain('dml: blocked');
  });

  it.each(['QUEUED', 'RESUMING_WAREHOUSE', 'QUEUED_REPARING_WAREHOUSE', 'NO_DATA', 'RESTARTED'] as const)(
    '%s has not ended: the job polls through it and completes',
    async (status) => {
      const id = await dataset();
      const match = new RegExp(`^DELETE FROM company_56.dataset_${id}\\b`);
      fake.holds.push({ match, ms: 200, status });
      const r = run('datasets_execute_dml', dml(id, `DELETE FROM company_56.dataset_${id} WHERE id <= 2`));
      expect(await r.done).toEqual({ type: 'datasets_execute_dml', affected_rows: 2 });
      const q = fake.executions(match)[0]!;
      expect(fake.events.filter((e) => e.startsWith(`status ${q.id}`))[0]).toBe(`status ${q.id} ${status}`);
    },
  );

  it.each([
    ['FAILED_WITH_INCIDENT', '000603', 'SNOWFLAKE_TRANSIENT', true],
    ['DISCONNECTED', '100090', 'SNOWFLAKE_SQL_ERROR', false],
  ] as const)(
    '%s has ended: the job fails with the error its result carries (%s)',
    async (status, code, failure, retryable) => {
      const id = await dataset();
      fake.failures.push({
        match: new RegExp(`^DELETE FROM company_56.dataset_${id}\\b`),
        at: 'execute',
        status,
        code,
        message: `the query ended ${status}`,
      });
      const r = run(
        'datasets_execute_dml',
        dml(id, `DELETE FROM company_56.dataset_${id} WHERE id <= 2`),
        {},
        { attempt: 3, maxAttempts: 3 },
      );
      await expect(r.done).rejects.toMatchObject({
        code: failure,
        retryable,
        details: { status, snowflake_code: code },
      });
    },
  );

  it('ABORTING is not aborted: a cancel is confirmed only by ABORTED, and asked again meanwhile', async () => {
    const id = await dataset();
    const match = new RegExp(`^UPDATE company_56.dataset_${id}\\b`);
    fake.delays.push({ match, ms: 30_000 });
    // Longer than DPO_SNOWFLAKE_CANCEL_WAIT_MS (500 ms in the tests' environment).
    fake.settings.abortingMs = 2_000;
    const r = run('datasets_execute_dml', dml(id, `UPDATE company_56.dataset_${id} SET x = 0`));
    const q = await waitFor(() => fake.executions(match)[0], { what: 'the update' });
    await waitFor(() => (r.t.checkpoint as any)?.steps?.dml?.query_id, { what: 'the query id checkpoint' });
    r.t.abort('cancel');
    await waitFor(() => q.status === 'ABORTING', { what: 'ABORTING' });
    let statusWhenCancelled: string | undefined;
    await r.done.catch((err: unknown) => {
      statusWhenCancelled = q.status;
      expect(err).toMatchObject({ reason: 'cancel' });
    });
    expect(statusWhenCancelled).toBe('ABORTED');
    const cancels = fake.executions(/SYSTEM\$CANCEL_QUERY/).filter((c) => c.sql.includes(q.id));
    expect(cancels.length).toBeGreaterThanOrEqual(2);
    expect(fake.events.some((e) => e.startsWith(`abort-again ${q.id}`))).toBe(true);
  });
});

describe('tokens (table: "Session and master token")', () => {
  it('a status poll answered 390112 (the master token expired too): a fresh login reattaches by query id, one execution', async () => {
    const id = await dataset();
    const match = new RegExp(`^DELETE FROM company_56.dataset_${id}\\b`);
    fake.delays.push({ match, ms: 600 });
    const logins = fake.logins.ok;
    const r = run('datasets_execute_dml', dml(id, `DELETE FROM company_56.dataset_${id} WHERE id <= 6`));
    await waitFor(() => (r.t.checkpoint as any)?.steps?.dml?.query_id, { what: 'the query id checkpoint' });
    // The tokens run out after the pool's validation (a heartbeat) and before the status poll.
    fake.expireTokens(true, 'status');
    expect(await r.done).toEqual({ type: 'datasets_execute_dml', affected_rows: 6 });
    expect(fake.events.some((e) => e.startsWith('token-expired'))).toBe(true);
    expect(fake.logins.ok).toBeGreaterThan(logins);
    expect(fake.executions(match)).toHaveLength(1);
    expect(fake.executions(match)[0]!.abortedAt).toBeUndefined();
  });

  it('a submission answered 390112: the driver renews, the renewal answers 390114, and a fresh login submits once', async () => {
    const id = await dataset();
    const match = new RegExp(`^DELETE FROM company_56.dataset_${id}\\b`);
    const renewals = fake.events.filter((e) => e.startsWith('renew')).length;
    fake.expireTokens(true, 'submit');
    const r = run('datasets_execute_dml', dml(id, `DELETE FROM company_56.dataset_${id} WHERE id <= 1`));
    expect(await r.done).toEqual({ type: 'datasets_execute_dml', affected_rows: 1 });
    expect(fake.events.filter((e) => e.startsWith('renew')).length).toBeGreaterThan(renewals);
    expect(fake.executions(match)).toHaveLength(1);
  });
});

describe('throttling (table: "Error codes", throttling)', () => {
  it('a query-request answered HTTP 429 is retried by the driver itself: the job completes, one execution, no failure to classify', async () => {
    const id = await dataset();
    const match = new RegExp(`^DELETE FROM company_56.dataset_${id}\\b`);
    fake.failures.push({ match, at: 'submit', httpStatus: 429, code: '', message: '', times: 1 });
    const r = run('datasets_execute_dml', dml(id, `DELETE FROM company_56.dataset_${id} WHERE id <= 2`));
    expect(await r.done).toEqual({ type: 'datasets_execute_dml', affected_rows: 2 });
    expect(fake.events).toContain('http 429 query-request');
    expect(fake.executions(match)).toHaveLength(1);
  });
});

describe('login (table: "Error codes", network)', () => {
  it('a login refused at attempt 1 records no intent, and attempt 2 runs the DML once (never DML_OUTCOME_UNKNOWN)', async () => {
    const id = await dataset();
    // A fresh executor: no pooled session, so its first statement needs a login.
    const fresh = (await snowflakeModule.createExecutor(
      snowflakeEnv(fake, { DPO_SNOWFLAKE_REQUEST_TIMEOUT_MS: '1500' }),
    )) as SnowflakeExecutor;
    try {
      fake.settings.refuseLogins = 1_000_000;
      const input = dml(id, `DELETE FROM company_56.dataset_${id} WHERE id <= 2`);
      const first = run('datasets_execute_dml', input, {}, {}, fresh);
      await expect(first.done).rejects.toMatchObject({ code: 'SNOWFLAKE_NETWORK', retryable: true });
      expect(fake.logins.refused).toContain('network');
      // Nothing may have reached Snowflake, so nothing says it might have.
      expect((first.t.checkpoint as any)?.steps?.dml).toBeUndefined();
      fake.settings.refuseLogins = 0;
      const second = run(
        'datasets_execute_dml',
        input,
        { checkpoint: first.t.checkpoint },
        { id: first.job.id, attempt: 2 },
        fresh,
      );
      expect(await second.done).toEqual({ type: 'datasets_execute_dml', affected_rows: 2 });
      expect(fake.executions(new RegExp(`^DELETE FROM company_56.dataset_${id}\\b`))).toHaveLength(1);
    } finally {
      fake.settings.refuseLogins = 0;
      await fresh.close();
    }
  });
});

describe('column statistics (table: "Result shapes")', () => {
  it('NUMBER, FLOAT, DATE and TIMESTAMP values reach the executor as snowflake-sdk converts them', async () => {
    const o = { warehouse: 'DPO_WH', queryTag: '{"test":"types"}', timeoutSeconds: 60 };
    const res = await ex.client.run(
      `SELECT 9007199254740993::BIGINT AS "BIG", 9007199254740993::BIGINT::VARCHAR AS "BIG_TEXT", 42::BIGINT AS "SMALL",
         12.25::DECIMAL(10,2) AS "DEC", 1.5::DOUBLE AS "F", DATE '2026-01-02' AS "D",
         TIMESTAMP '2026-01-02 03:04:05.123456' AS "TS", TIMESTAMPTZ '2026-01-02 03:04:05.5+00' AS "TSTZ"`,
      [],
      o,
      AbortSignal.timeout(10_000),
    );
    const row = res.rows[0]!;
    // NUMBER(38,0) becomes a JavaScript number: beyond 2^53 it is rounded (read such values as text).
    expect(row.BIG).toBe(9007199254740992);
    expect(row.BIG_TEXT).toBe('9007199254740993');
    expect(row.SMALL).toBe(42);
    expect(row.DEC).toBe(12.25);
    expect(row.F).toBe(1.5);
    // DATE and TIMESTAMP_* become Dates (milliseconds kept, the rest of the nanoseconds dropped).
    expect(row.D).toBeInstanceOf(Date);
    expect((row.D as Date).toISOString()).toBe('2026-01-02T00:00:00.000Z');
    expect(row.TS).toBeInstanceOf(Date);
    expect((row.TS as Date).toISOString()).toBe('2026-01-02T03:04:05.123Z');
    expect((row.TSTZ as Date).toISOString()).toBe('2026-01-02T03:04:05.500Z');
  });

  it('64-bit columns: mean, deviation and bucket edges beyond 2^53 are valid under the 64-bit rule, after the lossless parse too', async () => {
    const id = nextDataset++;
    await run('datasets_create_table', {
      dataset_id: id,
      compiled_sql: `CREATE TABLE company_56.dataset_${id} (v BIGINT)`,
    }).done;
    await fake.sql(
      `INSERT INTO company_56.dataset_${id} SELECT 9200000000000000000 + i * 1000000007 FROM range(0, 50) t(i)`,
    );
    const input = {
      dataset_id: id,
      enabled_column_stats: {
        v: {
          data_type: 'long',
          enabled_column_stats: {
            mean: true,
            standard_deviation: true,
            histogram: true,
            lower_bound: true,
            upper_bound: true,
          },
        },
      },
    };
    const result = (await run('datasets_calculate_column_stats', input).done) as any;
    const v = result.columns.v;
    expect(v.lower_bound).toBe('9200000000000000000');
    expect(v.upper_bound).toBe('9200000049000000343');
    // Whole-number doubles beyond 2^53 - 1 are decimal strings, as the lossless parse reads them.
    expect(typeof v.mean).toBe('string');
    expect(Number(v.mean)).toBeCloseTo(9200000024500000000, -6);
    expect(typeof v.histogram[0].lower).toBe('string');
    // What the control plane does with the result: a lossless parse, then the catalogue's schema.
    expect(validateResult('datasets_calculate_column_stats', result).ok).toBe(true);
    const reparsed = parseJsonLossless(JSON.stringify(result));
    expect(validateResult('datasets_calculate_column_stats', reparsed).ok).toBe(true);
    expect(reparsed).toEqual(result);
    const stored = await fake.sql(
      `SELECT stats FROM NARRATIVE_OPERATOR.COLUMN_STATS WHERE dataset_id = ${id} AND column_name = 'v'`,
    );
    expect(parseJsonLossless(String(stored[0]?.stats))).toEqual(v);
  });

  it('a result the schema refuses is INVALID_RESULT before anything is written', () => {
    expect(() =>
      finishColumnStats({ v: { value_count: 3, histogram: [{ lower: 0, upper: 1, count: -1 }] } }),
    ).toThrow(JobError);
    try {
      finishColumnStats({ v: { completeness: 2 } });
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ code: 'INVALID_RESULT', retryable: false });
    }
    expect(finishColumnStats({ v: { mean: 2 ** 60, standard_deviation: 1.5 } })).toEqual({
      v: { mean: '1152921504606847000', standard_deviation: 1.5 },
    });
  });

  it('an unknown column is INVALID_INPUT, and nothing is scanned or stored', async () => {
    const id = await dataset(56, 10);
    const r = run('datasets_calculate_column_stats', {
      dataset_id: id,
      enabled_column_stats: {
        id: { data_type: 'int', enabled_column_stats: { value_count: true } },
        nope: { data_type: 'int', enabled_column_stats: { value_count: true } },
      },
    });
    await expect(r.done).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      retryable: false,
      details: { missing: ['nope'] },
    });
    expect(fake.executions(new RegExp(`FROM "NARRATIVE"."COMPANY_56"."DATASET_${id}"`))).toHaveLength(0);
    // The statistics table exists (the 64-bit test above wrote to it): this dataset has no row in it.
    const stored = await fake.sql(
      `SELECT count(*)::INT AS n FROM NARRATIVE_OPERATOR.COLUMN_STATS WHERE dataset_id = ${id}`,
    );
    expect(stored).toEqual([{ n: 0 }]);
  });
});

describe('one statement (table: "Statement parameters")', () => {
  const sneaky = (id: number) =>
    `DELETE FROM company_56.dataset_${id} WHERE id < 0 -- it's\n; DROP TABLE company_57.dataset_${id + 1}; -- '`;

  it("the issue's bypass is refused before it reaches Snowflake, even on an account that allows multi-statement requests", async () => {
    const id = await dataset(56);
    const victim = nextDataset++;
    expect(victim).toBe(id + 1);
    await run(
      'datasets_create_table',
      { dataset_id: victim, compiled_sql: `CREATE TABLE company_57.dataset_${victim} (id INT)` },
      {},
      { companyId: 57 },
    ).done;
    fake.settings.multiStatementCount = 0;
    const r = run('datasets_execute_dml', dml(id, sneaky(id)));
    await expect(r.done).rejects.toMatchObject({ code: 'INVALID_INPUT', retryable: false });
    expect(fake.executions(/DROP TABLE company_57/)).toHaveLength(0);
    expect(await fake.sql(`SELECT count(*)::INT AS n FROM company_57.dataset_${victim}`)).toEqual([{ n: 0 }]);
  });

  it('every statement the operator submits pins MULTI_STATEMENT_COUNT = 1, so Snowflake refuses a second statement itself', async () => {
    await dataset(56, 1);
    for (const q of fake.queries.values()) expect(String(q.parameters.MULTI_STATEMENT_COUNT)).toBe('1');
    fake.settings.multiStatementCount = 0;
    const signal = AbortSignal.timeout(10_000);
    const o = { warehouse: 'DPO_WH', queryTag: '{"test":1}', timeoutSeconds: 60 };
    const refused = await ex.client.submit('SELECT 1; SELECT 2', [], o, signal).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(JobError);
    expect(refused).toMatchObject({ retryable: false, details: { snowflake_code: '000008' } });
    expect(fake.events).toContain('refused multi-statement 2/1');
    // The account's own setting (0: any number) holds for a statement that does not pin it.
    expect(fake.executions(/^SELECT 1; SELECT 2$/)).toHaveLength(0);
  });
});
