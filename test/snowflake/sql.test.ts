/**
 * The SQL the operator writes itself: identifiers quoted (Snowflake's upper-case rule for plain
 * names), where tables live (the configured patterns), and the checks of the control plane's
 * compiled SQL (one statement, this dataset's table).
 */
import { describe, expect, it } from 'vitest';
import { loadSnowflakeConfig } from '../../executors/snowflake/config.ts';
import { classifierResult } from '../../executors/snowflake/executor.ts';
import { checkedDml, idempotentCreate, ident, Names, qualified } from '../../executors/snowflake/sql.ts';
import { planHistograms, planStats } from '../../executors/snowflake/stats.ts';

const config = (extra: Record<string, string> = {}) =>
  loadSnowflakeConfig({
    DPO_SNOWFLAKE_ACCOUNT: 'myorg-test',
    DPO_SNOWFLAKE_USER: 'U',
    DPO_SNOWFLAKE_ROLE: 'R',
    DPO_SNOWFLAKE_DATABASE: 'narrative',
    DPO_SNOWFLAKE_WAREHOUSE: 'WH',
    DPO_SNOWFLAKE_PRIVATE_KEY_FILE: '/nonexistent/key.p8',
    ...extra,
  });

describe('identifiers', () => {
  it('upper-cases plain names and quotes everything, doubling quotes', () => {
    expect(ident('company_56')).toBe('"COMPANY_56"');
    expect(ident('we"ird col')).toBe('"we""ird col"');
    expect(ident('Mixed Case')).toBe('"Mixed Case"');
    expect(() => ident('')).toThrow(/not an identifier/);
  });

  it('puts a dataset where the patterns say, in the configured database', () => {
    const n = new Names(config());
    expect(qualified(n.dataset(56, 1234))).toBe('"NARRATIVE"."COMPANY_56"."DATASET_1234"');
    const custom = new Names(
      config({
        DPO_SNOWFLAKE_DATASET_SCHEMA: 'TENANT_{company_id}',
        DPO_SNOWFLAKE_DATASET_TABLE: 'DS_{company_id}_{dataset_id}',
      }),
    );
    expect(qualified(custom.dataset(7, 9))).toBe('"NARRATIVE"."TENANT_7"."DS_7_9"');
    expect(() => n.dataset(56, -1)).toThrow(/non-negative integer/);
  });

  it('keeps a job-named table inside the company schema', () => {
    const n = new Names(config());
    expect(n.companyTable(56, 'company_56.training_data', 't')).toEqual({
      database: 'NARRATIVE',
      schema: 'COMPANY_56',
      table: 'TRAINING_DATA',
    });
    expect(n.companyTable(56, 'training_data', 't').schema).toBe('COMPANY_56');
    expect(() => n.companyTable(56, 'company_57.training_data', 't')).toThrow(/not in company 56/);
    expect(() => n.companyTable(56, 'other_db.company_56.t', 't')).toThrow(/not in company 56/);
    expect(() => n.companyTable(56, 'company_56.t; DROP TABLE x', 't')).toThrow(/plain identifiers/);
  });
});

describe('compiled SQL', () => {
  const t = new Names(config()).dataset(56, 1234);
  it('makes a CREATE TABLE idempotent, only for this dataset, one statement', () => {
    expect(idempotentCreate('CREATE TABLE company_56.dataset_1234 (id STRING) CLUSTER BY (id);', t)).toBe(
      'CREATE TABLE IF NOT EXISTS company_56.dataset_1234 (id STRING) CLUSTER BY (id)',
    );
    expect(
      idempotentCreate('create or replace table "NARRATIVE"."COMPANY_56"."DATASET_1234" (id INT)', t),
    ).toMatch(/^create or replace/);
    expect(() => idempotentCreate('CREATE TABLE company_56.dataset_1 (id INT)', t)).toThrow(
      /CREATE TABLE of COMPANY_56.DATASET_1234/,
    );
    expect(() =>
      idempotentCreate('CREATE TABLE company_56.dataset_1234 (id INT); DROP TABLE company_56.x', t),
    ).toThrow(/exactly one statement/);
    // A semicolon inside a string literal is not a second statement.
    expect(idempotentCreate("CREATE TABLE company_56.dataset_1234 (id STRING DEFAULT 'a;b')", t)).toContain(
      "'a;b'",
    );
  });

  it('accepts DML writing this dataset only', () => {
    expect(
      checkedDml('MERGE INTO company_56.dataset_1234 t USING x ON t.id = x.id WHEN MATCHED THEN DELETE', t),
    ).toMatch(/^MERGE/);
    expect(() => checkedDml('DELETE FROM company_56.dataset_9', t)).toThrow(/must write/);
    expect(() => checkedDml('SELECT 1', t)).toThrow(/INSERT, UPDATE, DELETE or MERGE/);
    expect(() =>
      checkedDml('DELETE FROM company_56.dataset_1234; DELETE FROM company_56.dataset_9', t),
    ).toThrow(/one statement/);
  });
});

describe('column statistics SQL', () => {
  it('one scan for every column, one more for every histogram, values bound', () => {
    const on = { mean: true, histogram: true, nan_value_count: true };
    const plan = planStats(
      {
        dataset_id: 1,
        enabled_column_stats: {
          a: { data_type: 'double', enabled_column_stats: on },
          'b c': { data_type: 'long', enabled_column_stats: on },
        },
      },
      '"T"',
    );
    expect(plan.scan.match(/FROM "T"/g)).toHaveLength(1);
    expect(plan.scan).toContain(`COUNT_IF("A" = 'NaN'::FLOAT)`);
    const h = planHistograms(plan, { C0_LOWER: 0, C0_UPPER: 10, C1_LOWER: '5', C1_UPPER: '5' }, '"T"', 4)!;
    expect(h.sql.match(/FROM "T"/g)).toHaveLength(1);
    expect(h.sql).toContain('GROUPING SETS (("B0"), ("B1"))');
    expect(h.binds).toEqual([3, 0, 2.5]);
    expect(h.columns.map((c) => c.n)).toEqual([4, 1]);
  });
});

describe('the classifier result', () => {
  it('derives accuracy from the confusion matrix and names features as the job did', () => {
    const r = classifierResult(
      'm',
      [
        { CLASS: '"a"', ERROR_METRIC: 'f1', METRIC_VALUE: 0.8 },
        { CLASS: '"b"', ERROR_METRIC: 'f1', METRIC_VALUE: 0.6 },
      ],
      [
        { ACTUAL_CLASS: '"a"', PREDICTED_CLASS: '"a"', COUNT: 8 },
        { ACTUAL_CLASS: '"a"', PREDICTED_CLASS: '"b"', COUNT: 2 },
        { ACTUAL_CLASS: '"b"', PREDICTED_CLASS: '"b"', COUNT: 5 },
        { ACTUAL_CLASS: '"b"', PREDICTED_CLASS: '"a"', COUNT: 5 },
      ],
      [
        { FEATURE: 'PRICE', SCORE: 0.7 },
        { FEATURE: 'BRAND', SCORE: 0.3 },
      ],
      ['price', 'brand'],
    );
    expect(r.accuracy).toBe(13 / 20);
    expect(r.f1_score).toBeCloseTo(0.7, 12);
    expect(r.feature_importance).toEqual({ price: 0.7, brand: 0.3 });
  });
});
