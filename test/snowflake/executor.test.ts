/**
 * The Snowflake executor driven directly (the executor test kit), through the real snowflake-sdk
 * against the fake: every job type and its effects checked with direct SQL on the fake, the
 * checkpoint and reattach rules, cancel, the session expiring, and each error class.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { scrub } from '../../executors/snowflake/errors.ts';
import type { SnowflakeExecutor } from '../../executors/snowflake/executor.ts';
import { snowflakeModule } from '../../executors/snowflake/index.ts';
import { JobAbort, JobError } from '../../src/executor/index.ts';
import { createTestContext, testJob } from '../../src/executor/testing.ts';
import type { FakeSnowflake } from '../fakes/snowflake.ts';
import { waitFor } from '../helpers.ts';
import { compareColumnStats, referenceColumnStats } from '../support/column-stats.ts';
import { keyFiles, OAUTH_TOKEN, snowflakeEnv, startFake } from './support.ts';

let fake: FakeSnowflake;
let ex: SnowflakeExecutor;
let nextDataset = 100;

beforeAll(async () => {
  fake = await startFake();
  ex = (await snowflakeModule.createExecutor(snowflakeEnv(fake))) as SnowflakeExecutor;
});
afterAll(async () => {
  await ex?.close();
  await fake?.close();
});
beforeEach(() => {
  fake.delays.length = 0;
  fake.failures.length = 0;
});

const run = (
  type: string,
  input: unknown,
  options: Parameters<typeof createTestContext>[0] = {},
  job = {},
) => {
  const t = createTestContext(options);
  const j = testJob(type, input, job);
  return { t, job: j, done: ex.execute(j, t.ctx) };
};

const dml = (id: number, sql: string) => ({
  dataset_id: id,
  nql: 'n/a',
  compiled_sql: sql,
  nio_last_modified_at: '2024-01-15T10:30:00Z',
});

async function createDataset(rows = true): Promise<number> {
  const id = nextDataset++;
  const { done } = run('datasets_create_table', {
    dataset_id: id,
    compiled_sql: `CREATE TABLE company_56.dataset_${id} (id INT, x DOUBLE, name STRING, created_at TIMESTAMP_TZ) CLUSTER BY (created_at)`,
  });
  await done;
  if (rows) {
    await fake.sql(`INSERT INTO company_56.dataset_${id} SELECT i, CASE WHEN i % 10 = 0 THEN NULL WHEN i % 25 = 0 THEN 'NaN'::DOUBLE ELSE i / 2.0 END,
      CASE WHEN i % 3 = 0 THEN NULL ELSE 'n' || (i % 7) END, now() FROM range(1, 201) t(i)`);
  }
  return id;
}

describe('every job type', () => {
  it('creates a dataset table idempotently, and a second delivery changes nothing', async () => {
    const id = await createDataset(false);
    await fake.sql(`INSERT INTO company_56.dataset_${id} VALUES (1, 1.0, 'a', now())`);
    const again = run('datasets_create_table', {
      dataset_id: id,
      compiled_sql: `CREATE TABLE company_56.dataset_${id} (id INT, x DOUBLE, name STRING, created_at TIMESTAMP_TZ)`,
    });
    expect(await again.done).toEqual({ type: 'datasets_create_table' });
    expect(await fake.sql(`SELECT count(*)::INT AS n FROM company_56.dataset_${id}`)).toEqual([{ n: 1 }]);
    const create = fake.executions(
      new RegExp(`CREATE TABLE IF NOT EXISTS company_56\\.dataset_${id}\\b`, 'i'),
    );
    expect(create).toHaveLength(2);
    // The tag names the job, its type and attempt.
    expect(JSON.parse(create[1]!.tag!)).toMatchObject({
      dpo_job_id: again.job.id,
      type: 'datasets_create_table',
      attempt: 1,
    });
    expect(Number(create[1]!.parameters.STATEMENT_TIMEOUT_IN_SECONDS)).toBeGreaterThan(3500);
  });

  it('refuses a compiled CREATE of another table, and more than one statement', async () => {
    for (const compiled_sql of [
      'CREATE TABLE company_57.dataset_1 (id INT)',
      'CREATE TABLE company_56.dataset_9 (id INT); DROP TABLE company_56.other',
    ]) {
      await expect(run('datasets_create_table', { dataset_id: 9, compiled_sql }).done).rejects.toMatchObject({
        code: 'INVALID_INPUT',
        retryable: false,
      });
    }
  });

  it('executes DML and reports the affected rows', async () => {
    const id = await createDataset();
    const { done } = run('datasets_execute_dml', {
      dataset_id: id,
      nql: 'delete',
      compiled_sql: `DELETE FROM company_56.dataset_${id} WHERE id <= 40`,
      nio_last_modified_at: '2024-01-15T10:30:00Z',
    });
    expect(await done).toEqual({ type: 'datasets_execute_dml', affected_rows: 40 });
    expect(await fake.sql(`SELECT count(*)::INT AS n FROM company_56.dataset_${id}`)).toEqual([{ n: 160 }]);
  });

  it('samples into the samples table, capped', async () => {
    const id = await createDataset();
    const { done } = run('datasets_sample', { dataset_id: id, sample_size: 25 });
    expect(await done).toEqual({
      type: 'datasets_sample',
      rows: 25,
      table: `NARRATIVE_OPERATOR.DATASET_${id}_SAMPLE`,
    });
    expect(await fake.sql(`SELECT count(*)::INT AS n FROM NARRATIVE_OPERATOR.DATASET_${id}_SAMPLE`)).toEqual([
      { n: 25 },
    ]);
  });

  it('truncates, then deletes a managed table and refuses an unmanaged one', async () => {
    const id = await createDataset();
    expect(await run('datasets_truncate_table', { dataset_id: id }).done).toEqual({
      type: 'datasets_truncate_table',
    });
    expect(await fake.sql(`SELECT count(*)::INT AS n FROM company_56.dataset_${id}`)).toEqual([{ n: 0 }]);
    await expect(
      run('datasets_delete_table', { external_id: `company_56.dataset_${id}`, is_narrative_managed: false })
        .done,
    ).rejects.toMatchObject({ code: 'UNMANAGED_TABLE', retryable: false });
    await expect(
      run('datasets_delete_table', { external_id: `company_57.dataset_${id}`, is_narrative_managed: true })
        .done,
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(
      await run('datasets_delete_table', {
        external_id: `company_56.dataset_${id}`,
        is_narrative_managed: true,
      }).done,
    ).toEqual({ type: 'datasets_delete_table' });
    expect(
      await fake.sql(
        `SELECT count(*)::INT AS n FROM information_schema.tables WHERE table_name ILIKE 'dataset_${id}'`,
      ),
    ).toEqual([{ n: 0 }]);
  });

  it('computes column statistics in at most two scans and writes them to the statistics table', async () => {
    const id = await createDataset();
    const all = {
      null_value_count: true,
      nan_value_count: true,
      value_count: true,
      lower_bound: true,
      upper_bound: true,
      approx_count_distinct: true,
      completeness: true,
      histogram: true,
      mean: true,
      standard_deviation: true,
    };
    const before = fake.queries.size;
    const { done } = run('datasets_calculate_column_stats', {
      dataset_id: id,
      enabled_column_stats: {
        x: { data_type: 'double', enabled_column_stats: all },
        id: { data_type: 'int', enabled_column_stats: all },
        name: {
          data_type: 'string',
          enabled_column_stats: { null_value_count: true, lower_bound: true, completeness: true },
        },
      },
    });
    const result = (await done) as any;
    const scans = [...fake.queries.values()]
      .slice(before)
      .filter((q) => new RegExp(`FROM "NARRATIVE"."COMPANY_56"."DATASET_${id}"`).test(q.sql));
    expect(scans).toHaveLength(2);
    // The one definition (src/executor/column-stats.ts), computed exactly over the same rows.
    const ids = Array.from({ length: 200 }, (_, k) => k + 1);
    const xs = ids.map((i) => (i % 10 === 0 ? null : i % 25 === 0 ? Number.NaN : i / 2));
    const names = ids.map((i) => (i % 3 === 0 ? null : `n${i % 7}`));
    const x = result.columns.x;
    expect(compareColumnStats(x, referenceColumnStats(xs, 'floating', all, 10), 'x')).toEqual([]);
    expect(
      compareColumnStats(result.columns.id, referenceColumnStats(ids, 'integer', all, 10), 'id'),
    ).toEqual([]);
    const nameStats = { null_value_count: true, lower_bound: true, completeness: true };
    expect(result.columns.name).toEqual(referenceColumnStats(names, 'string', nameStats, 10));
    // The fixture has what the statistics must tell apart.
    expect(x).toMatchObject({
      value_count: 200,
      null_value_count: 20,
      nan_value_count: 4,
      completeness: 0.9,
    });
    const stored = await fake.sql(
      `SELECT column_name, stats FROM NARRATIVE_OPERATOR.COLUMN_STATS WHERE dataset_id = ${id} ORDER BY column_name`,
    );
    expect(stored.map((r) => r.column_name)).toEqual(['id', 'name', 'x']);
    expect(JSON.parse(String(stored[2]!.stats))).toEqual(x);
  });

  it('trains a classifier with SNOWFLAKE.ML.CLASSIFICATION: metrics, feature importance, accuracy from the confusion matrix', async () => {
    await fake.sql('CREATE SCHEMA IF NOT EXISTS company_56');
    await fake.sql(`CREATE TABLE company_56.training_data AS SELECT i AS id, (i % 2) * 10 + (i % 3) AS signal, i % 5 AS noise,
      CASE WHEN i % 2 = 0 THEN 'cheap' ELSE 'premium' END AS label FROM range(0, 60) t(i)`);
    const { done } = run('models_train_classifier', {
      config: {
        model_type: 'classification',
        target_column: 'label',
        feature_columns: ['signal', 'noise'],
        training_table: 'company_56.training_data',
        output_model_name: 'product_classifier_v1',
      },
    });
    const r = (await done) as any;
    expect(r.type).toBe('models_train_classifier');
    expect(r.result.model_name).toBe('product_classifier_v1');
    expect(r.result.accuracy).toBe(1);
    expect(r.result.f1_score).toBe(1);
    expect(Object.keys(r.result.feature_importance).sort()).toEqual(['noise', 'signal']);
    expect(r.result.feature_importance.signal).toBeGreaterThan(r.result.feature_importance.noise);
    expect(r.result.confusion_matrix).toContainEqual({ actual: 'cheap', predicted: 'cheap', count: 30 });
    expect(
      fake.executions(
        /^CREATE OR REPLACE SNOWFLAKE\.ML\.CLASSIFICATION "NARRATIVE"\."COMPANY_56"\."PRODUCT_CLASSIFIER_V1"/,
      ),
    ).toHaveLength(1);
  });
});

it('a model type it cannot train is INVALID_INPUT', async () => {
  const config = {
    model_type: 'regression',
    target_column: 'y',
    feature_columns: ['x'],
    training_table: 't',
    output_model_name: 'm',
  };
  await expect(run('models_train_classifier', { config }).done).rejects.toMatchObject({
    code: 'INVALID_INPUT',
    retryable: false,
  });
});

describe('submit once, reattach', () => {
  it('checkpoints the query id, and a claim with it reattaches without submitting again', async () => {
    const id = await createDataset();
    fake.delays.push({ match: /^DELETE FROM company_56/, ms: 400 });
    const first = run('datasets_execute_dml', {
      dataset_id: id,
      nql: 'd',
      compiled_sql: `DELETE FROM company_56.dataset_${id} WHERE id <= 10`,
      nio_last_modified_at: '2024-01-15T10:30:00Z',
    });
    await waitFor(() => (first.t.checkpoint as any)?.steps?.dml?.query_id, {
      what: 'the query id checkpoint',
    });
    first.t.abort('lost');
    await expect(first.done).rejects.toBeInstanceOf(JobAbort);
    const second = run(
      'datasets_execute_dml',
      first.job.input,
      { checkpoint: first.t.checkpoint },
      { id: first.job.id, attempt: 2 },
    );
    expect(await second.done).toEqual({ type: 'datasets_execute_dml', affected_rows: 10 });
    expect(fake.executions(new RegExp(`DELETE FROM company_56.dataset_${id}`))).toHaveLength(1);
  });

  it('finds a submission by its QUERY_TAG when the holder died before checkpointing the query id', async () => {
    const id = await createDataset();
    // The first holder's query id checkpoint never lands: it dies between the two saves.
    const first = run(
      'datasets_truncate_table',
      { dataset_id: id },
      {
        onSaveCheckpoint: (cp: any) => {
          if (cp.steps.truncate?.query_id) throw new Error('crashed');
        },
      },
    );
    await expect(first.done).rejects.toThrow();
    const intentOnly = first.t.checkpoint;
    expect((intentOnly as any).steps.truncate.query_id).toBeUndefined();
    const second = run(
      'datasets_truncate_table',
      { dataset_id: id },
      { checkpoint: intentOnly },
      { id: first.job.id, attempt: 2 },
    );
    await second.done;
    expect(fake.executions(new RegExp(`^TRUNCATE TABLE .*DATASET_${id}"$`))).toHaveLength(1);
    expect(fake.executions(/QUERY_HISTORY/).length).toBeGreaterThan(0);
  });

  it('a multi-step job resumes after its last checkpointed step: no scan runs twice', async () => {
    const id = await createDataset();
    const input = {
      dataset_id: id,
      enabled_column_stats: {
        x: { data_type: 'double', enabled_column_stats: { mean: true, histogram: true } },
      },
    };
    // The first holder dies once the histogram's query id is checkpointed (scan done, histogram submitted).
    const first = run('datasets_calculate_column_stats', input, {
      onSaveCheckpoint: (cp: any) => {
        if (cp.steps.histogram?.query_id) throw new Error('crashed');
      },
    });
    await expect(first.done).rejects.toThrow('crashed');
    const second = run(
      'datasets_calculate_column_stats',
      input,
      { checkpoint: first.t.checkpoints.at(-1) ?? null },
      { id: first.job.id, attempt: 2 },
    );
    const result = (await second.done) as any;
    expect(result.columns.x.histogram.length).toBe(10);
    const scans = fake.executions(new RegExp(`FROM "NARRATIVE"."COMPANY_56"."DATASET_${id}"`));
    expect(scans).toHaveLength(2);
    expect(second.t.checkpoint).toMatchObject({
      steps: { scan: { attempt: 1 }, histogram: { attempt: 1 }, write: { attempt: 2 } },
    });
  });

  it('fails DML_OUTCOME_UNKNOWN, not retryable, when a DML submission cannot be found', async () => {
    const id = await createDataset();
    const job = testJob('datasets_execute_dml', {
      dataset_id: id,
      nql: 'd',
      compiled_sql: `DELETE FROM company_56.dataset_${id}`,
      nio_last_modified_at: '2024-01-15T10:30:00Z',
    });
    const t = createTestContext({
      checkpoint: { snowflake: 1, nonce: 'abcdef01', steps: { dml: { attempt: 1, submission: 1 } } },
    });
    await expect(ex.execute({ ...job, attempt: 2 }, t.ctx)).rejects.toMatchObject({
      code: 'DML_OUTCOME_UNKNOWN',
      retryable: false,
    });
    expect(fake.executions(new RegExp(`DELETE FROM company_56.dataset_${id}`))).toHaveLength(0);
  });
});

describe('cancel, session expiry', () => {
  it('cancels with SYSTEM$CANCEL_QUERY and confirms by status before returning', async () => {
    const id = await createDataset();
    fake.delays.push({ match: /^UPDATE company_56/, ms: 30_000 });
    const r = run('datasets_execute_dml', {
      dataset_id: id,
      nql: 'u',
      compiled_sql: `UPDATE company_56.dataset_${id} SET x = 0`,
      nio_last_modified_at: '2024-01-15T10:30:00Z',
    });
    const q = await waitFor(() => fake.executions(new RegExp(`UPDATE company_56.dataset_${id}`))[0], {
      what: 'the update',
    });
    r.t.abort('cancel');
    await expect(r.done).rejects.toMatchObject({ reason: 'cancel' });
    expect(q.status).toBe('ABORTED');
    expect(fake.executions(/SYSTEM\$CANCEL_QUERY/).some((c) => c.sql.includes(q.id))).toBe(true);
    expect(await fake.sql(`SELECT count(*)::INT AS n FROM company_56.dataset_${id} WHERE x = 0`)).toEqual([
      { n: 0 },
    ]);
  });

  it('leaves the query running on lost and shutdown', async () => {
    const id = await createDataset();
    fake.delays.push({ match: /^DELETE FROM company_56/, ms: 300 });
    const r = run('datasets_execute_dml', {
      dataset_id: id,
      nql: 'd',
      compiled_sql: `DELETE FROM company_56.dataset_${id} WHERE id = 1`,
      nio_last_modified_at: '2024-01-15T10:30:00Z',
    });
    const q = await waitFor(() => fake.executions(new RegExp(`DELETE FROM company_56.dataset_${id}`))[0], {
      what: 'the delete',
    });
    r.t.abort('shutdown');
    await expect(r.done).rejects.toMatchObject({ reason: 'shutdown' });
    await waitFor(() => q.status === 'SUCCESS', { what: 'the query to finish on its own' });
    expect(q.abortedAt).toBeUndefined();
  });

  it('stops the running statement on rescheduled, confirmed by status, before settling', async () => {
    const id = await createDataset();
    fake.delays.push({ match: /^UPDATE company_56/, ms: 30_000 });
    const r = run('datasets_execute_dml', dml(id, `UPDATE company_56.dataset_${id} SET x = 0`));
    const q = await waitFor(() => fake.executions(new RegExp(`UPDATE company_56.dataset_${id}`))[0], {
      what: 'the update',
    });
    await waitFor(() => (r.t.checkpoint as any)?.steps?.dml?.query_id, { what: 'the query id checkpoint' });
    r.t.abort('rescheduled');
    let statusWhenSettled: string | undefined;
    await r.done.then(
      () => expect.unreachable('a rescheduled execution does not complete'),
      (err: unknown) => {
        statusWhenSettled = q.status;
        expect(err).toMatchObject({ reason: 'rescheduled' });
      },
    );
    expect(statusWhenSettled).toBe('ABORTED');
    expect(fake.executions(/SYSTEM\$CANCEL_QUERY/).some((c) => c.sql.includes(q.id))).toBe(true);
  });

  it('discards a connection whose session expired and goes on with a fresh one', async () => {
    const id = await createDataset();
    fake.delays.push({ match: /^DELETE FROM company_56/, ms: 300 });
    const logins = fake.logins.ok;
    const r = run('datasets_execute_dml', {
      dataset_id: id,
      nql: 'd',
      compiled_sql: `DELETE FROM company_56.dataset_${id} WHERE id <= 5`,
      nio_last_modified_at: '2024-01-15T10:30:00Z',
    });
    await waitFor(() => fake.executions(new RegExp(`DELETE FROM company_56.dataset_${id}`))[0], {
      what: 'the delete',
    });
    fake.expireSessions('390114');
    expect(await r.done).toEqual({ type: 'datasets_execute_dml', affected_rows: 5 });
    expect(fake.logins.ok).toBeGreaterThan(logins);
    // The expired sessions were thrown away (validated on borrow, or discarded on the error), never deleted.
    expect(fake.events.filter((e) => e.startsWith('session-delete'))).toEqual([]);
    expect(fake.executions(new RegExp(`DELETE FROM company_56.dataset_${id}`))).toHaveLength(1);
  });
});

describe('the error table', () => {
  const cases: Array<[string, string, string, boolean]> = [
    ['object missing', '002003', 'SNOWFLAKE_OBJECT_NOT_FOUND', false],
    ['syntax', '001003', 'SNOWFLAKE_SQL_ERROR', false],
    ['no access', '003001', 'SNOWFLAKE_ACCESS_DENIED', false],
    ['no warehouse', '000606', 'SNOWFLAKE_NO_WAREHOUSE', false],
    ['quota', '090073', 'SNOWFLAKE_QUOTA_EXCEEDED', false],
    ['statement timeout', '000630', 'TIMEOUT', false],
    ['cancelled elsewhere', '000604', 'SNOWFLAKE_QUERY_CANCELLED', false],
    ['lock timeout', '000625', 'SNOWFLAKE_TRANSIENT', true],
  ];
  for (const [what, code, jobCode, retryable] of cases) {
    it(`${what} (${code}) → ${jobCode}, ${retryable ? '' : 'not '}retryable, with code, SQL state and query id`, async () => {
      const id = nextDataset++;
      fake.failures.push({
        match: new RegExp(`TRUNCATE TABLE .*DATASET_${id}"`),
        at: 'execute',
        code,
        message: `injected ${what}`,
        sqlState: '42000',
      });
      const err = (await run('datasets_truncate_table', { dataset_id: id }).done.catch((e) => e)) as JobError;
      expect(err).toBeInstanceOf(JobError);
      expect(err.code).toBe(jobCode);
      expect(err.retryable).toBe(retryable);
      const q = fake.executions(new RegExp(`TRUNCATE TABLE .*DATASET_${id}"`))[0]!;
      expect(err.details).toMatchObject({ snowflake_code: code, sql_state: '42000', query_id: q.id });
    });
  }

  it('a real missing table is SNOWFLAKE_OBJECT_NOT_FOUND with SQL state 42S02', async () => {
    const err = (await run('datasets_truncate_table', { dataset_id: 99_999 }).done.catch(
      (e) => e,
    )) as JobError;
    expect(err).toMatchObject({
      code: 'SNOWFLAKE_OBJECT_NOT_FOUND',
      retryable: false,
      details: { sql_state: '42S02' },
    });
  });

  it.each([
    ['390114', 'Authentication token has expired.'],
    ['390111', 'Session no longer exists.'],
    ['390104', 'User must log in again.'],
  ])(
    'a submission refused for an ended session (%s) is made again on a fresh connection',
    async (code, message) => {
      const id = await createDataset();
      const discarded = ex.client.counters.discarded;
      fake.failures.push({
        match: new RegExp(`TRUNCATE TABLE .*DATASET_${id}"`),
        at: 'submit',
        code,
        message,
        times: 1,
      });
      expect(await run('datasets_truncate_table', { dataset_id: id }).done).toEqual({
        type: 'datasets_truncate_table',
      });
      expect(ex.client.counters.discarded).toBe(discarded + 1);
      expect(fake.executions(new RegExp(`TRUNCATE TABLE .*DATASET_${id}"`))).toHaveLength(1);
    },
  );

  it('a refusal at submission (no warehouse) fails with its code', async () => {
    const id = nextDataset++;
    fake.failures.push({
      match: new RegExp(`DATASET_${id}"`),
      at: 'submit',
      code: '000606',
      message: 'No active warehouse selected in the current session.',
      sqlState: '57P03',
    });
    const err = (await run('datasets_truncate_table', { dataset_id: id }).done.catch((e) => e)) as JobError;
    expect(err).toMatchObject({
      code: 'SNOWFLAKE_NO_WAREHOUSE',
      retryable: false,
      details: { snowflake_code: '000606' },
    });
  });

  it('a statement running past the job deadline ends TIMEOUT (STATEMENT_TIMEOUT_IN_SECONDS)', async () => {
    const id = await createDataset();
    fake.delays.push({ match: /^DELETE FROM company_56/, ms: 5_000 });
    const r = run(
      'datasets_execute_dml',
      {
        dataset_id: id,
        nql: 'd',
        compiled_sql: `DELETE FROM company_56.dataset_${id}`,
        nio_last_modified_at: '2024-01-15T10:30:00Z',
      },
      { deadline: Date.now() + 1_000 },
    );
    await expect(r.done).rejects.toMatchObject({
      code: 'TIMEOUT',
      retryable: false,
      details: { snowflake_code: '000630' },
    });
  });
});

describe('login', () => {
  it('a key the user does not have is refused (390144): not retryable, and no secret in the failure', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const other = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    const file = join(keyFiles().dir, 'other_key.p8');
    writeFileSync(file, other.privateKey);
    const stranger = (await snowflakeModule.createExecutor(
      snowflakeEnv(fake, {
        DPO_SNOWFLAKE_PRIVATE_KEY_FILE: file,
        DPO_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE: '',
      }),
    )) as SnowflakeExecutor;
    try {
      const refused = fake.logins.refused.length;
      const t = createTestContext();
      const err = (await stranger
        .execute(testJob('datasets_truncate_table', { dataset_id: 1 }), t.ctx)
        .catch((e) => e)) as JobError;
      expect(err).toMatchObject({
        code: 'SNOWFLAKE_ACCESS_DENIED',
        retryable: false,
        details: { snowflake_code: '390144' },
      });
      expect(fake.logins.refused.length).toBeGreaterThan(refused);
      expect(fake.logins.refused.at(-1)).toContain('bad signature');
      const said = JSON.stringify({ m: err.message, d: err.details, lines: t.lines });
      expect(said).not.toMatch(/PRIVATE KEY|eyJ[A-Za-z0-9_-]{10,}/);
    } finally {
      await stranger.close();
    }
  });

  it('scrubs anything shaped like a credential from messages', () => {
    const jwt = `eyJhbGciOiJSUzI1NiJ9.${'a'.repeat(40)}.${'b'.repeat(40)}`;
    const out = scrub(
      `failed: Snowflake Token="ST-123" password=hunter2 token: ${jwt} -----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----`,
    );
    expect(out).not.toMatch(/ST-123|hunter2|eyJhbGci|abc/);
  });
});

describe('the configuration in effect', () => {
  it('caps the sample size and the rows read back, and runs a type on its own warehouse', async () => {
    const capped = (await snowflakeModule.createExecutor(
      snowflakeEnv(fake, {
        DPO_SNOWFLAKE_MAX_SAMPLE_ROWS: '20',
        DPO_SNOWFLAKE_SAMPLE_ROWS: '5',
        DPO_SNOWFLAKE_MAX_RESULT_ROWS: '3',
        DPO_SNOWFLAKE_WAREHOUSES: 'datasets_sample=SAMPLE_WH',
      }),
    )) as SnowflakeExecutor;
    try {
      const id = await createDataset();
      await fake.sql(
        `CREATE TABLE IF NOT EXISTS company_56.training_caps AS SELECT i AS signal, CASE WHEN i < 5 THEN 'a' ELSE 'b' END AS label FROM range(0, 10) t(i)`,
      );
      const go = (type: string, input: unknown) =>
        capped.execute(testJob(type, input), createTestContext().ctx);
      expect(await go('datasets_sample', { dataset_id: id, sample_size: 50 })).toMatchObject({ rows: 20 });
      expect(await go('datasets_sample', { dataset_id: id })).toMatchObject({ rows: 5 });
      const sampled = fake.executions(new RegExp(`DATASET_${id}_SAMPLE" AS SELECT`));
      expect(sampled.map((q) => fake.sessions.get(q.sessionId)?.warehouse)).toEqual([
        'SAMPLE_WH',
        'SAMPLE_WH',
      ]);
      // Four rows per class of evaluation metrics: more than the three allowed.
      const err = (await go('models_train_classifier', {
        config: {
          model_type: 'classification',
          target_column: 'label',
          feature_columns: ['signal'],
          training_table: 'company_56.training_caps',
          output_model_name: 'capped_model',
        },
      }).catch((e) => e)) as JobError;
      expect(err).toMatchObject({ code: 'RESULT_TOO_LARGE', retryable: false });
    } finally {
      await capped.close();
    }
  });

  it('logs in with an OAuth token file', async () => {
    const { writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const tokenFile = join(keyFiles().dir, 'oauth-token');
    writeFileSync(tokenFile, `${OAUTH_TOKEN}\n`);
    const oauth = (await snowflakeModule.createExecutor(
      snowflakeEnv(fake, {
        DPO_SNOWFLAKE_AUTHENTICATOR: 'OAUTH',
        DPO_SNOWFLAKE_OAUTH_TOKEN_FILE: tokenFile,
        DPO_SNOWFLAKE_PRIVATE_KEY_FILE: '',
        DPO_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE: '',
      }),
    )) as SnowflakeExecutor;
    try {
      const id = await createDataset();
      const logins = fake.logins.ok;
      expect(
        await oauth.execute(testJob('datasets_truncate_table', { dataset_id: id }), createTestContext().ctx),
      ).toEqual({
        type: 'datasets_truncate_table',
      });
      expect(fake.logins.ok).toBeGreaterThan(logins);
    } finally {
      await oauth.close();
    }
  });
});

describe('remote work a reschedule left (stale_checkpoints, issue 22)', () => {
  /** The execution context of a holder given the job's stale checkpoints; counts the clears. */
  const withStale = (t: ReturnType<typeof createTestContext>, stale: unknown[]) => {
    const cleared: number[] = [];
    const ctx = {
      ...t.ctx,
      staleCheckpoints: stale as any[],
      clearStaleCheckpoints: async () => {
        cleared.push(Date.now());
      },
    };
    return { ctx, cleared };
  };

  it('a rescheduled job whose holder is gone: the next holder stops the old query (ABORTING is not ended) before it submits afresh, then clears the list', async () => {
    const id = await createDataset();
    const match = new RegExp(`^UPDATE company_56.dataset_${id}\\b`);
    fake.delays.push({ match, ms: 30_000 });
    // ABORTING for longer than DPO_SNOWFLAKE_CANCEL_WAIT_MS (500 ms): a stop is confirmed only by ABORTED.
    fake.settings.abortingMs = 1_200;
    try {
      const first = run('datasets_execute_dml', dml(id, `UPDATE company_56.dataset_${id} SET x = 0`));
      const old = await waitFor(() => fake.executions(match)[0], { what: 'the first update' });
      await waitFor(() => (first.t.checkpoint as any)?.steps?.dml?.query_id, {
        what: 'the query id checkpoint',
      });
      // The holder is cut off: its query runs on (lost leaves it for a reattach that never comes).
      first.t.abort('lost');
      await expect(first.done).rejects.toBeInstanceOf(JobAbort);
      expect(old.status).toBe('RUNNING');

      // The reschedule cleared the checkpoint and kept it in stale_checkpoints: attempt 1 afresh.
      fake.delays.length = 0;
      const t = createTestContext();
      const { ctx, cleared } = withStale(t, [first.t.checkpoint]);
      const job = testJob('datasets_execute_dml', first.job.input, { id: first.job.id });
      expect(await ex.execute(job, ctx)).toEqual({ type: 'datasets_execute_dml', affected_rows: 200 });

      expect(old.status).toBe('ABORTED');
      const runs = fake.executions(match);
      expect(runs).toHaveLength(2);
      const fresh = runs[1]!;
      const events = fake.events;
      const abortedAt = events.indexOf(`status ${old.id} ABORTED`);
      expect(abortedAt).toBeGreaterThanOrEqual(0);
      expect(events.indexOf(`status ${old.id} ABORTING`)).toBeLessThan(abortedAt);
      expect(abortedAt).toBeLessThan(events.indexOf(`submit ${fresh.id}`));
      // Asked again while it was ABORTING: ABORTING did not count as ended.
      expect(events.some((e) => e.startsWith(`abort-again ${old.id}`))).toBe(true);
      expect(cleared).toHaveLength(1);
      // The fresh run's checkpoint is its own: a new nonce, nothing of the stale one.
      expect((t.checkpoint as any).nonce).not.toBe((first.t.checkpoint as any).nonce);
    } finally {
      fake.settings.abortingMs = 0;
    }
  });

  it('a stale step with an intent but no query id is found by its QUERY_TAG and stopped; a step that succeeded is left alone', async () => {
    const id = await createDataset();
    const match = new RegExp(`^UPDATE company_56.dataset_${id}\\b`);
    fake.delays.push({ match, ms: 30_000 });
    const nonce = '0a1b2c3d';
    const tag = (step: string) =>
      JSON.stringify({
        dpo_job_id: 'j',
        type: 'datasets_execute_dml',
        attempt: 1,
        step,
        submission: `${nonce}-${step}-1`,
      });
    const o = (step: string) => ({ warehouse: 'DPO_WH', queryTag: tag(step), timeoutSeconds: 600 });
    const signal = AbortSignal.timeout(10_000);
    // A step that finished (its status is SUCCESS) and one whose holder died before saving its id.
    const doneId = await ex.client.submit(
      `SELECT COUNT(*) FROM company_56.dataset_${id}`,
      [],
      o('count'),
      signal,
    );
    await waitFor(() => fake.executions(/^SELECT COUNT/).find((q) => q.id === doneId)?.status === 'SUCCESS', {
      what: 'the finished step',
    });
    await ex.client.submit(`UPDATE company_56.dataset_${id} SET x = 0`, [], o('dml'), signal);
    const orphan = await waitFor(() => fake.executions(match)[0], { what: 'the orphaned update' });
    const stale = {
      snowflake: 1,
      nonce,
      steps: { count: { attempt: 1, submission: 1, query_id: doneId }, dml: { attempt: 1, submission: 1 } },
    };
    const t = createTestContext();
    const { ctx, cleared } = withStale(t, [stale, { run: 'not ours' }]);
    const job = testJob('datasets_truncate_table', { dataset_id: id });
    await ex.execute(job, ctx);
    expect(orphan.status).toBe('ABORTED');
    expect(fake.executions(/SYSTEM\$CANCEL_QUERY/).some((c) => c.sql.includes(orphan.id))).toBe(true);
    expect(fake.executions(/SYSTEM\$CANCEL_QUERY/).some((c) => c.sql.includes(doneId))).toBe(false);
    expect(
      fake.executions(/QUERY_HISTORY/).some((q) => (q.parameters as any) && q.sql.includes('LIKE')),
    ).toBe(true);
    expect(t.lines.some((l) => l.msg.includes('did not write'))).toBe(true);
    expect(cleared).toHaveLength(1);
  });
});
