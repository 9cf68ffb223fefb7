/**
 * The local data plane's write integrity, driven directly through the executor (no daemon):
 * exactly-once effects per job, DML write isolation, merge semantics with NULL partitions and the
 * partition transforms. Every check reads the warehouse back with direct SQL.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalExecutor } from '../../executors/local/executor.ts';
import { findWriteTarget } from '../../executors/local/write-target.ts';
import { JobError, type JobHandle } from '../../src/executor/index.ts';
import { createTestContext, testJob } from '../../src/executor/testing.ts';
import { localConfig } from '../local/support.ts';

let dir: string;
let ex: LocalExecutor;
const n = (v: unknown) => Number(v);
const count = async (table: string) => n((await ex.query(`SELECT count(*) AS n FROM ${table}`))[0]?.n);

async function run(job: JobHandle) {
  const t = createTestContext();
  const result = await ex.execute(job, t.ctx);
  return { result, lines: t.lines };
}
async function fails(job: JobHandle): Promise<JobError> {
  const err = await ex.execute(job, createTestContext().ctx).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof JobError)) throw new Error(`expected a JobError, got ${String(err)}`);
  return err;
}
const create = (company: number, dataset: number, cols = 'id INTEGER, v VARCHAR') =>
  run(
    testJob(
      'datasets_create_table',
      { dataset_id: dataset, compiled_sql: `CREATE TABLE company_${company}.dataset_${dataset} (${cols})` },
      { companyId: company },
    ),
  );
const dml = (company: number, dataset: number, sql: string, id?: string) =>
  testJob(
    'datasets_execute_dml',
    { dataset_id: dataset, compiled_sql: sql, nio_last_modified_at: '2026-11-29T12:00:00Z' },
    { companyId: company, ...(id ? { id } : {}) },
  );

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dpo-integrity-'));
  ex = new LocalExecutor(localConfig(dir, { threads: 1 }));
  await create(1, 10);
  await create(1, 11);
  await create(2, 20);
  await ex.query(`INSERT INTO company_2.dataset_20 VALUES (1, 'theirs'), (2, 'theirs')`);
  await ex.query(`INSERT INTO company_1.dataset_11 VALUES (7, 'sibling')`);
});
afterAll(async () => {
  await ex?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('exactly-once effects', () => {
  it('a DML delivered again answers from its record and writes nothing', async () => {
    const job = dml(1, 10, `INSERT INTO company_1.dataset_10 VALUES (1, 'a'), (2, 'b')`);
    const first = await run(job);
    expect(first.result).toEqual({ type: 'datasets_execute_dml', affected_rows: 2 });
    const again = await run({ ...job, attempt: 2 });
    expect(again.result).toEqual(first.result);
    expect(await count('company_1.dataset_10')).toBe(2);
    expect(again.lines.some((l) => /answering from its record/.test(l.msg))).toBe(true);
    const recorded = await ex.query(`SELECT count(*) AS n FROM _dpo.job_effects WHERE job_id = '${job.id}'`);
    expect(n(recorded[0]?.n)).toBe(1);
  });

  it('two deliveries racing apply the statement once and answer the same', async () => {
    const job = dml(1, 10, `INSERT INTO company_1.dataset_10 SELECT 100 + i, 'race' FROM range(5) t(i)`);
    const [a, b] = await Promise.allSettled([run(job), run({ ...job, attempt: 2 })]);
    const answers = [a, b].filter((r) => r.status === 'fulfilled').map((r) => r.value.result);
    // One commits; the other answers from its record (or, if DuckDB saw a write-write conflict
    // before the record existed, fails retryably and its retry answers from the record).
    for (const r of [a, b]) {
      if (r.status === 'rejected') {
        expect(r.reason).toBeInstanceOf(JobError);
        expect((r.reason as JobError).retryable).toBe(true);
        answers.push((await run(job)).result);
      }
    }
    expect(answers).toEqual([
      { type: 'datasets_execute_dml', affected_rows: 5 },
      { type: 'datasets_execute_dml', affected_rows: 5 },
    ]);
    expect(n((await ex.query(`SELECT count(*) AS n FROM company_1.dataset_10 WHERE v = 'race'`))[0]?.n)).toBe(
      5,
    );
  });

  it('a failed statement records nothing, so its retry runs', async () => {
    const job = dml(1, 10, `INSERT INTO company_1.dataset_10 VALUES ('not a number', 'x')`);
    const err = await fails(job);
    expect(err.code).toBe('SQL_ERROR');
    const rec = await ex.query(`SELECT count(*) AS n FROM _dpo.job_effects WHERE job_id = '${job.id}'`);
    expect(n(rec[0]?.n)).toBe(0);
  });

  it('sample, statistics, truncate, create and delete are recorded and not repeated', async () => {
    await create(1, 12);
    await ex.query(`INSERT INTO company_1.dataset_12 SELECT i, 'x' || i FROM range(50) t(i)`);
    const sample = testJob('datasets_sample', { dataset_id: 12, sample_size: 10 }, { companyId: 1 });
    const s1 = await run(sample);
    const s2 = await run(sample);
    expect(s2.result).toEqual(s1.result);
    const stats = testJob(
      'datasets_calculate_column_stats',
      {
        dataset_id: 12,
        enabled_column_stats: { id: { data_type: 'long', enabled_column_stats: { value_count: true } } },
      },
      { companyId: 1 },
    );
    expect((await run(stats)).result).toEqual((await run(stats)).result);
    const truncate = testJob('datasets_truncate_table', { dataset_id: 12 }, { companyId: 1 });
    await run(truncate);
    // New rows after the truncate: a re-delivery of the truncate must not remove them.
    await ex.query(`INSERT INTO company_1.dataset_12 VALUES (1, 'after')`);
    await run(truncate);
    expect(await count('company_1.dataset_12')).toBe(1);
    const del = testJob(
      'datasets_delete_table',
      { external_id: 'company_1.dataset_12', is_narrative_managed: true },
      { companyId: 1 },
    );
    await run(del);
    await run(del);
    const kinds = await ex.query(
      `SELECT job_type, count(*) AS n FROM _dpo.job_effects WHERE job_id IN ('${sample.id}', '${stats.id}', '${truncate.id}', '${del.id}') GROUP BY ALL ORDER BY 1`,
    );
    expect(kinds.map((r) => [r.job_type, n(r.n)])).toEqual([
      ['datasets_calculate_column_stats', 1],
      ['datasets_delete_table', 1],
      ['datasets_sample', 1],
      ['datasets_truncate_table', 1],
    ]);
  });

  it('the job log says what ran and how it ended, never the statement text', async () => {
    const secret = 'customer-value-4f1c';
    const { lines } = await run(dml(1, 10, `INSERT INTO company_1.dataset_10 VALUES (900, '${secret}')`));
    const text = JSON.stringify(lines);
    expect(text).not.toContain(secret);
    expect(lines.find((l) => l.msg === 'running DML')?.fields).toMatchObject({
      statement: 'INSERT',
      table: 'company_1.dataset_10',
    });
    expect(lines.find((l) => l.msg === 'DML committed')?.fields).toEqual({ affected_rows: 1 });
  });
});

describe('DML write isolation', () => {
  const observed = async () => ({
    theirs: await ex.query('SELECT * FROM company_2.dataset_20 ORDER BY id'),
    sibling: await ex.query('SELECT * FROM company_1.dataset_11 ORDER BY id'),
    catalogue: await ex.query('SELECT * FROM _dpo.datasets ORDER BY dataset_id'),
  });
  const refused: Array<[string, string]> = [
    ['DELETE of another company', 'DELETE FROM company_2.dataset_20 WHERE id = 1'],
    ['UPDATE of another company', `UPDATE company_2.dataset_20 SET v = 'x'`],
    ['INSERT into another company', `INSERT INTO company_2.dataset_20 VALUES (9, 'x')`],
    ['INSERT OR REPLACE elsewhere', `INSERT OR REPLACE INTO company_1.dataset_11 VALUES (9, 'x')`],
    ['another dataset of the same company', 'DELETE FROM company_1.dataset_11'],
    ['the catalogue', 'UPDATE _dpo.datasets SET company_id = 1'],
    ['the catalogue, quoted', `DELETE FROM "_dpo"."datasets"`],
    ['the catalogue, three parts', 'DELETE FROM warehouse._dpo.job_effects'],
    ['upper case', 'DELETE FROM COMPANY_2.DATASET_20'],
    ['quoted, mixed case', `DELETE FROM "Company_2"."Dataset_20"`],
    ['snapshots', 'DELETE FROM _snapshots.x'],
    ['an unqualified name', 'DELETE FROM dataset_10'],
    [
      'a CTE in front',
      'WITH own AS (SELECT id FROM company_1.dataset_10) DELETE FROM company_2.dataset_20 WHERE id IN (SELECT id FROM own)',
    ],
    [
      'a CTE named like the own table',
      'WITH "company_1.dataset_10" AS (SELECT 1 AS id) UPDATE company_2.dataset_20 SET v = $$x$$',
    ],
    [
      'MERGE into another company',
      `MERGE INTO company_2.dataset_20 AS t USING company_1.dataset_10 AS s ON t.id = s.id
         WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v)`,
    ],
    [
      'comments and strings that name the own table',
      `/* INSERT INTO company_1.dataset_10 */ DELETE -- company_1.dataset_10
         FROM company_2.dataset_20 WHERE v <> 'INSERT INTO company_1.dataset_10'`,
    ],
    ['a sequence', `INSERT INTO company_1.dataset_10 VALUES (nextval('_dpo.snapshot_ids'), 'x')`],
  ];
  it.each(refused)('refuses %s, before anything is written', async (_what, sql) => {
    const was = await observed();
    const err = await fails(dml(1, 10, sql));
    expect(['FORBIDDEN_WRITE', 'SQL_ERROR']).toContain(err.code);
    expect(err.retryable).toBe(false);
    expect(await observed()).toEqual(was);
  });

  it('refuses the writes DuckDB would run as FORBIDDEN_WRITE, naming the rule', async () => {
    const err = await fails(dml(1, 10, 'DELETE FROM company_2.dataset_20 WHERE id = 1'));
    expect(err.code).toBe('FORBIDDEN_WRITE');
    expect(err.message).toMatch(/only its own dataset/);
  });

  const allowed: Array<[string, string, number]> = [
    ['a qualified INSERT', `INSERT INTO company_1.dataset_10 VALUES (500, 'ok')`, 1],
    ['quoted identifiers', `INSERT INTO "company_1"."dataset_10" VALUES (501, 'ok')`, 1],
    ['the database prefix', `INSERT INTO warehouse.company_1.dataset_10 VALUES (502, 'ok')`, 1],
    ['upper case', `UPDATE COMPANY_1.DATASET_10 SET v = 'ok2' WHERE id = 500`, 1],
    [
      'reads of another dataset of the company',
      `INSERT INTO company_1.dataset_10 SELECT id + 1000, v FROM company_1.dataset_11`,
      1,
    ],
    [
      'a CTE',
      `WITH src AS (SELECT 503 AS id, 'cte' AS v) INSERT INTO company_1.dataset_10 SELECT * FROM src`,
      1,
    ],
    [
      'MERGE',
      `MERGE INTO company_1.dataset_10 AS t USING (SELECT 504 AS id, 'm' AS v) AS s ON t.id = s.id
         WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v)`,
      1,
    ],
    ['DELETE with an alias', `DELETE FROM company_1.dataset_10 AS d WHERE d.id = 503`, 1],
  ];
  it.each(allowed)('runs %s on the own table', async (_what, sql, affected) => {
    const { result } = await run(dml(1, 10, sql));
    expect(result).toEqual({ type: 'datasets_execute_dml', affected_rows: affected });
  });

  it('reads the write target as DuckDB does', () => {
    expect(findWriteTarget(`WITH a AS (SELECT '(' AS x) INSERT INTO "a""b".c SELECT * FROM a`).parts).toEqual(
      ['a"b', 'c'],
    );
    expect(findWriteTarget(`INSERT OR IGNORE INTO s.t BY NAME SELECT 1`).parts).toEqual(['s', 't']);
  });
});

describe('merge (dynamic partition overwrite)', () => {
  const mv = (dataset: number, select: string, extra: Record<string, unknown>) =>
    testJob('materialize-view', { dataset_id: dataset, compiled_select: select, ...extra }, { companyId: 1 });

  it('replaces the NULL partition like any other', async () => {
    await run(
      mv(30, `SELECT * FROM (VALUES (1, 'a', 1), (2, NULL, 1), (3, 'b', 1)) t(id, region, gen)`, {
        first_run: true,
      }),
    );
    await run(
      mv(30, `SELECT * FROM (VALUES (4, NULL::VARCHAR, 2)) t(id, region, gen)`, {
        merge: true,
        partitions: [{ field: 'region', fn: 'identity', args: [] }],
      }),
    );
    const rows = await ex.query('SELECT id, region, gen FROM company_1.dataset_30 ORDER BY id');
    expect(rows.map((r) => [r.id, r.region, r.gen])).toEqual([
      [1, 'a', 1],
      [3, 'b', 1],
      [4, null, 2],
    ]);
  });

  it('truncate[W] partitions integers and strings as Iceberg does', async () => {
    await run(
      mv(31, `SELECT * FROM (VALUES (-3, 'apple', 1), (7, 'apricot', 1), (12, 'banana', 1)) t(n, s, gen)`, {
        first_run: true,
      }),
    );
    // truncate[10] of -3 is -10, of 7 is 0: only 7's partition [0, 10) is replaced.
    await run(
      mv(31, `SELECT 5 AS n, 'cherry' AS s, 2 AS gen`, {
        merge: true,
        partitions: [{ field: 'n', fn: 'truncate', args: [10] }],
      }),
    );
    expect((await ex.query('SELECT n FROM company_1.dataset_31 ORDER BY n')).map((r) => r.n)).toEqual([
      -3, 5, 12,
    ]);
    // truncate[2] of strings: 'ap' replaces apple's partition only (not banana's).
    await run(
      mv(31, `SELECT 99 AS n, 'apex' AS s, 3 AS gen`, {
        merge: true,
        partitions: [{ field: 's', fn: 'truncate', args: [2] }],
      }),
    );
    expect((await ex.query('SELECT s FROM company_1.dataset_31 ORDER BY s')).map((r) => r.s)).toEqual([
      'apex',
      'banana',
      'cherry',
    ]);
  });

  it('refuses bucket by name, before writing', async () => {
    const err = await fails(
      mv(31, `SELECT 1 AS n, 'x' AS s, 4 AS gen`, {
        merge: true,
        partitions: [{ field: 'n', fn: 'bucket', args: [16] }],
      }),
    );
    expect(err.code).toBe('INVALID_INPUT');
    expect(err.message).toMatch(/'bucket'.*not supported/);
    expect(await count('company_1.dataset_31')).toBe(3);
  });
});
