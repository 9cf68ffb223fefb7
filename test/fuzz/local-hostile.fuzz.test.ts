/**
 * Hostile strings (SQL-shaped text, quotes and comments, unicode, control characters, deep JSON,
 * huge strings) in every field the local data plane reads, through the executor (fast-check, seeded
 * by FUZZ_SEED). Each job must end with a result or a JobError (never another error, never a hang),
 * and another company's table and the warehouse's catalogue must be exactly as they were.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalExecutor } from '../../executors/local/executor.ts';
import { JobError } from '../../src/executor/index.ts';
import { createTestContext, testJob } from '../../src/executor/testing.ts';
import { localConfig } from '../local/support.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_129);
let dir: string;
let ex: LocalExecutor;

const TOKENS = [
  'INSERT INTO',
  'UPDATE',
  'DELETE FROM',
  'MERGE INTO',
  'WITH x AS (SELECT 1)',
  'SELECT',
  'FROM',
  'WHERE',
  'SET',
  'company_1.dataset_10',
  'company_2.dataset_20',
  '_dpo.datasets',
  '_dpo.job_effects',
  '"company_2"."dataset_20"',
  'warehouse.company_2.dataset_20',
  'dataset_10',
  "'x'",
  "'",
  '"',
  '--',
  '/*',
  '*/',
  ';',
  '(',
  ')',
  '$$',
  "E'\\''",
  'VALUES (1, 2)',
  'v = 1',
  "read_csv('/etc/passwd')",
  "COPY company_2.dataset_20 TO '/tmp/x'",
  "ATTACH '/tmp/y.db'",
  'SET enable_external_access = true',
  "nextval('_dpo.snapshot_ids')",
  'DROP TABLE company_2.dataset_20',
  'PRAGMA',
  'CALL',
];
const sqlShaped = fc
  .array(fc.constantFrom(...TOKENS), { minLength: 1, maxLength: 12 })
  .map((t) => t.join(' '));
const hostile = fc.oneof(
  sqlShaped,
  sqlShaped,
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.integer({ min: 1, max: 3000 }).map((d) => `${'['.repeat(d)}${']'.repeat(d)}`),
  fc.constantFrom('\u0000', '\uD800', '𝕏'.repeat(5000), 'x'.repeat(300_000), '', ' ', '\n;\n'),
);

async function outcome(type: string, input: unknown, companyId = 1): Promise<'ok' | 'refused'> {
  const t = createTestContext();
  const timer = setTimeout(() => t.abort('timeout'), 10_000);
  try {
    await ex.execute(testJob(type, input, { companyId }), t.ctx);
    return 'ok';
  } catch (err) {
    if (err instanceof JobError) return 'refused';
    throw new Error(`${type} threw a ${(err as Error)?.name}: ${String(err)}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

const snapshot = async () => ({
  theirs: await ex.query('SELECT * FROM company_2.dataset_20 ORDER BY id'),
  catalogue: await ex.query(
    'SELECT dataset_id, company_id, schema_name, table_name FROM _dpo.datasets WHERE company_id <> 1 ORDER BY 1',
  ),
  access: await ex.query("SELECT current_setting('enable_external_access') AS v"),
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dpo-hostile-'));
  ex = new LocalExecutor(localConfig(dir, { threads: 1, queryTimeoutMs: 2_000 }));
  for (const [c, d] of [
    [1, 10],
    [2, 20],
  ] as const) {
    await outcome(
      'datasets_create_table',
      { dataset_id: d, compiled_sql: `CREATE TABLE company_${c}.dataset_${d} (id INTEGER, v VARCHAR)` },
      c,
    );
  }
  await ex.query(`INSERT INTO company_2.dataset_20 VALUES (1, 'theirs'), (2, 'theirs')`);
});
afterAll(async () => {
  await ex?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const fields: Array<[string, (s: string) => [string, unknown]]> = [
  [
    'DML compiled_sql',
    (s) => [
      'datasets_execute_dml',
      { dataset_id: 10, compiled_sql: s, nio_last_modified_at: '2026-11-29T00:00:00Z' },
    ],
  ],
  ['create compiled_sql', (s) => ['datasets_create_table', { dataset_id: 11, compiled_sql: s }]],
  ['delete external_id', (s) => ['datasets_delete_table', { external_id: s, is_narrative_managed: true }]],
  [
    'stats column name',
    (s) => [
      'datasets_calculate_column_stats',
      {
        dataset_id: 10,
        enabled_column_stats: { [s]: { data_type: 'string', enabled_column_stats: { value_count: true } } },
      },
    ],
  ],
  ['nql-forecast compiled_sql', (s) => ['nql-forecast', { nql: s, compiled_sql: s }]],
  ['materialize compiled_select', (s) => ['materialize-view', { dataset_id: 12, compiled_select: s }]],
  [
    'materialize partition field',
    (s) => [
      'materialize-view',
      {
        dataset_id: 12,
        compiled_select: 'SELECT 1 AS id',
        merge: true,
        partitions: [{ field: s, fn: 'truncate', args: [s] }],
      },
    ],
  ],
  [
    'billing compiled_query',
    (s) => ['materialized_views_collect_access_rules_billing_data', { dataset_id: 10, compiled_query: s }],
  ],
];

describe('hostile strings in every field the local data plane reads', () => {
  it.each(fields)(
    '%s: a result or a JobError, and nothing of another company changes',
    async (_what, build) => {
      const before = await snapshot();
      await fc.assert(
        fc.asyncProperty(hostile, async (s) => {
          const [type, input] = build(s);
          await outcome(type, input);
        }),
        { seed: SEED, numRuns: 30 },
      );
      expect(await snapshot()).toEqual(before);
      // The warehouse still works for the job's own company.
      expect(
        await outcome('datasets_execute_dml', {
          dataset_id: 10,
          compiled_sql: `INSERT INTO company_1.dataset_10 VALUES (1, 'still fine')`,
          nio_last_modified_at: '2026-11-29T00:00:00Z',
        }),
      ).toBe('ok');
    },
    60_000,
  );
});
