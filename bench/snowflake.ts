/**
 * `npm run bench -- snowflake`: the Snowflake executor against the fake (test/fakes/snowflake.ts,
 * DuckDB behind snowflake-sdk's REST protocol on 127.0.0.1), driven through the real snowflake-sdk.
 * - Statements and scans of the dataset's table per job, for each type (column statistics with 1, 5
 *   and 20 columns: at most 2 scans whatever the number of columns).
 * - The operator's added time per statement: the job's wall time in the executor, minus the fake's
 *   own DuckDB time for its statements, divided by the statements (login excluded: the pool is warm;
 *   status polls at DPO_SNOWFLAKE_POLL_MIN_MS=10, so a statement costs at least one poll interval).
 * Runs from the TypeScript sources (the fake lives with the tests).
 */
import { snowflakeModule } from '../executors/snowflake/index.ts';
import { createTestContext, testJob } from '../src/executor/testing.ts';
import { snowflakeEnv, startFake } from '../test/snowflake/support.ts';
import { summary } from './lib.ts';

const RUNS = 5;
const ROWS = 50_000;

export async function benchSnowflake(): Promise<void> {
  process.stdout.write('\n== Snowflake executor (against the fake, real snowflake-sdk)\n');
  const fake = await startFake();
  const ex = await snowflakeModule.createExecutor(
    snowflakeEnv(fake, { DPO_SNOWFLAKE_POLL_MIN_MS: '10', DPO_SNOWFLAKE_POLL_MAX_MS: '40' }),
  );
  try {
    const cols = Array.from({ length: 20 }, (_, i) => `c${i}`);
    await fake.sql('CREATE SCHEMA IF NOT EXISTS company_56');
    await fake.sql(
      `CREATE TABLE company_56.source AS SELECT i AS id, ${cols.map((c, k) => `CASE WHEN i % ${k + 7} = 0 THEN NULL ELSE (i * ${k + 1}) % 997 / 3.0 END AS ${c}`).join(', ')} FROM range(0, ${ROWS}) t(i)`,
    );
    await fake.sql(
      `CREATE TABLE company_56.training AS SELECT (i % 2) * 5 + (i % 7) AS a, i % 11 AS b, CASE WHEN i % 2 = 0 THEN 'x' ELSE 'y' END AS label FROM range(0, 2000) t(i)`,
    );
    let dataset = 5000;
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
    const stats = (n: number) => (id: number) => ({
      dataset_id: id,
      enabled_column_stats: Object.fromEntries(
        cols.slice(0, n).map((c) => [c, { data_type: 'double', enabled_column_stats: all }]),
      ),
    });
    const jobs: Array<[string, string, (id: number) => unknown]> = [
      [
        'datasets_create_table',
        'create',
        (id) => ({
          dataset_id: id,
          compiled_sql: `CREATE TABLE company_56.dataset_${id} AS SELECT * FROM company_56.source`,
        }),
      ],
      [
        'datasets_execute_dml',
        'dml (DELETE)',
        (id) => ({
          dataset_id: id,
          nql: '-',
          compiled_sql: `DELETE FROM company_56.dataset_${id} WHERE id % 10 = 0`,
          nio_last_modified_at: '2024-01-15T10:30:00Z',
        }),
      ],
      ['datasets_sample', 'sample 1000', (id) => ({ dataset_id: id, sample_size: 1000 })],
      ['datasets_calculate_column_stats', 'stats, 1 column', stats(1)],
      ['datasets_calculate_column_stats', 'stats, 5 columns', stats(5)],
      ['datasets_calculate_column_stats', 'stats, 20 columns', stats(20)],
      [
        'models_train_classifier',
        'train classifier',
        () => ({
          config: {
            model_type: 'classification',
            target_column: 'label',
            feature_columns: ['a', 'b'],
            training_table: 'company_56.training',
            output_model_name: 'bench_model',
          },
        }),
      ],
      ['datasets_truncate_table', 'truncate', (id) => ({ dataset_id: id })],
      [
        'datasets_delete_table',
        'delete',
        (id) => ({ external_id: `company_56.dataset_${id}`, is_narrative_managed: true }),
      ],
    ];
    const rows: string[] = [];
    const perRun = new Map<
      string,
      { statements: number; scans: number; added: number[]; engine: number[] }
    >();
    for (let run = 0; run <= RUNS; run++) {
      const id = dataset++;
      for (const [type, label, input] of jobs) {
        const before = fake.queries.size;
        const t = createTestContext();
        const t0 = performance.now();
        await ex.execute(testJob(type, input(id)), t.ctx);
        const wall = performance.now() - t0;
        const qs = [...fake.queries.values()].slice(before);
        const scanned = new RegExp(
          `FROM "NARRATIVE"\\."COMPANY_56"\\."DATASET_${id}"|FROM company_56\\.dataset_${id}\\b|FROM company_56\\.source|FROM "NARRATIVE"\\."COMPANY_56"\\."TRAINING"`,
          'i',
        );
        const engine = qs.reduce((s, q) => s + (q.engineMs ?? 0), 0);
        if (run === 0) continue; // warm-up (pool, setup statements)
        const r = perRun.get(label) ?? {
          statements: qs.length,
          scans: qs.filter((q) => scanned.test(q.sql)).length,
          added: [],
          engine: [],
        };
        r.added.push((wall - engine) / qs.length);
        r.engine.push(engine / qs.length);
        perRun.set(label, r);
      }
    }
    for (const [label, r] of perRun) {
      rows.push(
        `  ${label.padEnd(20)} ${String(r.statements).padStart(3)} statements, ${String(r.scans).padStart(2)} scans;` +
          ` per statement: operator ${summary(r.added, 1)} ms over the fake's ${summary(r.engine, 1)} ms`,
      );
    }
    process.stdout.write(
      `${ROWS.toLocaleString('en-US')} rows, ${RUNS} runs (median (range)); statements include the operator's own (lookup-free: no crash):\n${rows.join('\n')}\n`,
    );
  } finally {
    await ex.close?.();
    await fake.close();
  }
}
