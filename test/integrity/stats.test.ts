/**
 * The local data plane's column statistics against the shared definitions
 * (`src/executor/column-stats.ts`): every statistic of every column type, compared with the
 * reference implementation over the same values read back from the warehouse. The data has a few
 * thousand distinct values (where DuckDB's HyperLogLog was 35 % off), 64-bit integers beyond 2^53,
 * NaN, NULLs, unicode strings, decimals and composite columns.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalExecutor } from '../../executors/local/executor.ts';
import { type ColumnStatsValue, type EnabledStats, kindOfSqlType } from '../../src/executor/column-stats.ts';
import { createTestContext, testJob } from '../../src/executor/testing.ts';
import { localConfig } from '../local/support.ts';
import { compareColumnStats, referenceColumnStats } from '../support/column-stats.ts';

const BINS = 7;
const ALL: EnabledStats = {
  value_count: true,
  null_value_count: true,
  nan_value_count: true,
  lower_bound: true,
  upper_bound: true,
  approx_count_distinct: true,
  completeness: true,
  mean: true,
  standard_deviation: true,
  histogram: true,
};
/** Column → [DuckDB type, SQL expression over i in 0..ROWS-1, how the test reads values back]. */
const COLUMNS: Record<string, [string, string, string]> = {
  small_int: ['INTEGER', `CASE WHEN i % 11 = 0 THEN NULL ELSE (i * 7919) % 3001 - 1500 END`, 'v::VARCHAR'],
  big_int: [
    'BIGINT',
    `CASE WHEN i % 13 = 0 THEN NULL ELSE 5815932129282598819 - (i % 2500) * 1000003 END`,
    'v::VARCHAR',
  ],
  price: ['DECIMAL(18,2)', `((i * 37) % 4000 - 2000) / 100`, 'v::VARCHAR'],
  ratio: [
    'DOUBLE',
    `CASE WHEN i % 97 = 0 THEN 'NaN'::DOUBLE WHEN i % 89 = 0 THEN NULL ELSE (i % 3500) / 7.0 END`,
    'v',
  ],
  label: [
    'VARCHAR',
    `CASE WHEN i % 5 = 0 THEN NULL ELSE 'é' || (i % 2900)::VARCHAR || CASE WHEN i % 3 = 0 THEN '日本' ELSE 'z' END END`,
    'v',
  ],
  flag: ['BOOLEAN', `i % 3 = 0`, 'v'],
  day: ['DATE', `DATE '2026-01-01' + (i % 400)::INTEGER`, `strftime(v, '%Y-%m-%d')`],
  happened: [
    'TIMESTAMPTZ',
    `TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(i * 61)`,
    `strftime(timezone('UTC', v), '%Y-%m-%dT%H:%M:%S.%fZ')`,
  ],
  payload: ['STRUCT(a INTEGER, b VARCHAR)', `{'a': i % 50, 'b': 'x'}`, 'v'],
  tags: ['INTEGER[]', `[i % 10, i % 7]`, 'v'],
  props: ['MAP(VARCHAR, INTEGER)', `MAP {'k': i % 20}`, 'v'],
};
const ROWS = 6_000;

let dir: string;
let ex: LocalExecutor;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dpo-stats-'));
  ex = new LocalExecutor(localConfig(dir, { threads: 1, histogramBins: BINS }));
  const cols = Object.entries(COLUMNS).map(([name, [type]]) => `${name} ${type}`);
  await ex.execute(
    testJob('datasets_create_table', {
      dataset_id: 500,
      compiled_sql: `CREATE TABLE company_56.dataset_500 (${cols.join(', ')})`,
    }),
    createTestContext().ctx,
  );
  const exprs = Object.values(COLUMNS).map(([type, expr]) => `(${expr})::${type}`);
  await ex.query(`INSERT INTO company_56.dataset_500 SELECT ${exprs.join(', ')} FROM range(${ROWS}) t(i)`);
  // An empty table too: completeness 1, no bounds, no histogram.
  await ex.execute(
    testJob('datasets_create_table', {
      dataset_id: 501,
      compiled_sql: 'CREATE TABLE company_56.dataset_501 (x DOUBLE, s VARCHAR)',
    }),
    createTestContext().ctx,
  );
});
afterAll(async () => {
  await ex?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function computed(dataset: number, columns: string[]) {
  const job = testJob('datasets_calculate_column_stats', {
    dataset_id: dataset,
    enabled_column_stats: Object.fromEntries(
      columns.map((c) => [c, { data_type: 'any', enabled_column_stats: ALL }]),
    ),
  });
  return (await ex.execute(job, createTestContext().ctx)) as {
    rows: number;
    columns: Record<string, ColumnStatsValue>;
  };
}

describe('statistics against the shared definitions', () => {
  it.each(Object.keys(COLUMNS))('%s conforms', async (column) => {
    const [type, , read] = COLUMNS[column] as [string, string, string];
    const result = await computed(500, [column]);
    const values = (
      await ex.query(`SELECT ${read} AS v FROM (SELECT ${column} AS v FROM company_56.dataset_500)`)
    ).map((r) => r.v);
    const expected = referenceColumnStats(values, kindOfSqlType(type), ALL, BINS);
    const actual = result.columns[column] as ColumnStatsValue;
    expect(compareColumnStats(actual, expected, column)).toEqual([]);
    // Stricter than the 2 % the definition allows: the local count is exact.
    expect(actual.approx_count_distinct).toBe(expected.approx_count_distinct);
    // Typed bounds: never an object's string form, and the stored copy is the same.
    expect(JSON.stringify(actual)).not.toContain('[object Object]');
    const stored = await ex.query(
      `SELECT stats::VARCHAR AS s FROM _dpo.column_stats WHERE dataset_id = 500 AND column_name = '${column}'`,
    );
    expect(JSON.parse(String(stored[0]?.s))).toEqual(actual);
  });

  it('bounds have the stated types', async () => {
    const { columns } = await computed(500, Object.keys(COLUMNS));
    const b = (c: string) => [columns[c]?.lower_bound, columns[c]?.upper_bound];
    expect(b('small_int').map((x) => typeof x)).toEqual(['number', 'number']);
    expect(b('big_int')).toEqual(['5815932126783591322', '5815932129282598819']);
    expect(b('price')).toEqual(['-20', '19.99']);
    expect(b('flag')).toEqual([false, true]);
    expect(b('day')).toEqual(['2026-01-01', '2027-02-04']);
    expect(b('payload')).toEqual([null, null]);
    expect(b('tags')).toEqual([null, null]);
    expect(b('props')).toEqual([null, null]);
    expect(columns.payload?.approx_count_distinct).toBe(50);
  });

  it('an empty table: completeness 1, no bounds, no histogram', async () => {
    const { rows, columns } = await computed(501, ['x', 's']);
    expect(rows).toBe(0);
    for (const [c, type] of [
      ['x', 'DOUBLE'],
      ['s', 'VARCHAR'],
    ] as const) {
      const expected = referenceColumnStats([], kindOfSqlType(type), ALL, BINS);
      expect(compareColumnStats(columns[c] as ColumnStatsValue, expected, c)).toEqual([]);
    }
  });
});
