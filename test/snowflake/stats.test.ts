/**
 * Column statistics computed by Snowflake SQL (run by the fake's DuckDB) agree with the one
 * definition's reference implementation (src/executor/column-stats.ts) on generated columns:
 * NULLs, NaNs, duplicates, negative and fractional values, empty tables, a single value.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SnowflakeExecutor } from '../../executors/snowflake/executor.ts';
import { snowflakeModule } from '../../executors/snowflake/index.ts';
import type { ColumnStatsValue } from '../../src/executor/column-stats.ts';
import { createTestContext, testJob } from '../../src/executor/testing.ts';
import type { FakeSnowflake } from '../fakes/snowflake.ts';
import { compareColumnStats, referenceColumnStats } from '../support/column-stats.ts';
import { snowflakeEnv, startFake } from './support.ts';

let fake: FakeSnowflake;
let ex: SnowflakeExecutor;
beforeAll(async () => {
  fake = await startFake();
  ex = (await snowflakeModule.createExecutor(snowflakeEnv(fake))) as SnowflakeExecutor;
  await fake.sql('CREATE SCHEMA IF NOT EXISTS company_56');
});
afterAll(async () => {
  await ex?.close();
  await fake?.close();
});

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

const sqlValue = (v: number | null) =>
  v === null ? 'NULL' : Number.isNaN(v) ? "'NaN'::DOUBLE" : `${v}::DOUBLE`;

it('matches the reference implementation on generated double and bigint columns', async () => {
  let dataset = 900;
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.oneof(
          { weight: 6, arbitrary: fc.integer({ min: -1000, max: 1000 }).map((n) => n / 8) },
          { weight: 1, arbitrary: fc.constant(null) },
          { weight: 1, arbitrary: fc.constant(Number.NaN) },
        ),
        { maxLength: 40 },
      ),
      fc.array(fc.option(fc.integer({ min: -50, max: 50 }), { nil: null }), { maxLength: 40 }),
      async (xs, ns) => {
        const id = dataset++;
        const rows = Math.max(xs.length, ns.length);
        const x = Array.from({ length: rows }, (_, i) => (i < xs.length ? (xs[i] as number | null) : null));
        const n = Array.from({ length: rows }, (_, i) => (i < ns.length ? (ns[i] as number | null) : null));
        await fake.sql(`CREATE TABLE company_56.dataset_${id} (x DOUBLE, n BIGINT)`);
        if (rows > 0) {
          await fake.sql(
            `INSERT INTO company_56.dataset_${id} VALUES ${x.map((v, i) => `(${sqlValue(v)}, ${n[i] ?? 'NULL'})`).join(', ')}`,
          );
        }
        const result = (await ex.execute(
          testJob('datasets_calculate_column_stats', {
            dataset_id: id,
            enabled_column_stats: {
              x: { data_type: 'double', enabled_column_stats: all },
              n: { data_type: 'long', enabled_column_stats: all },
            },
          }),
          createTestContext().ctx,
        )) as { columns: Record<string, ColumnStatsValue | undefined> };
        expect(
          compareColumnStats(result.columns.x ?? {}, referenceColumnStats(x, 'floating', all, 10), 'x'),
        ).toEqual([]);
        expect(
          compareColumnStats(result.columns.n ?? {}, referenceColumnStats(n, 'integer', all, 10), 'n'),
        ).toEqual([]);
      },
    ),
    { numRuns: 15, seed: 20261129 },
  );
}, 60_000);
