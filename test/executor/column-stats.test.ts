/**
 * The one definition of column statistics (src/executor/column-stats.ts): its reference
 * implementation on values whose statistics are worked out by hand, and the comparison's tolerances.
 * Each executor's own tests compare its figures with the reference (test/local, test/snowflake).
 */
import { describe, expect, it } from 'vitest';
import { COLUMN_STATS } from '../../src/catalogue/datasets.ts';
import { canonicalDecimal, kindOfSqlType, typedBound } from '../../src/executor/column-stats.ts';
import { compareColumnStats, referenceColumnStats } from '../support/column-stats.ts';

const ALL = Object.fromEntries(COLUMN_STATS.map((s) => [s, true]));

describe('the reference statistics', () => {
  it('floating: NaN is a value, not a NULL, and is left out of bounds, mean, deviation and histogram', () => {
    const s = referenceColumnStats([1, 2, Number.NaN, null, 4, 3, null], 'floating', ALL, 3);
    expect(s.value_count).toBe(7);
    expect(s.null_value_count).toBe(2);
    expect(s.nan_value_count).toBe(1);
    expect(s.completeness).toBeCloseTo(5 / 7, 15);
    expect([s.lower_bound, s.upper_bound]).toEqual([1, 4]);
    expect(s.approx_count_distinct).toBe(5); // 1, 2, 3, 4 and NaN
    expect(s.mean).toBe(2.5);
    // Sample deviation of 1..4: sqrt(5/3).
    expect(s.standard_deviation).toBeCloseTo(Math.sqrt(5 / 3), 12);
    // Width 1: [1,2) [2,3) [3,4]; the upper bound lands in the last bucket.
    expect(s.histogram?.map((b) => b.count)).toEqual([1, 1, 2]);
    expect(s.histogram?.at(-1)?.upper).toBe(4);
  });

  it('an empty table: completeness 1, no bounds, no mean, no buckets', () => {
    const s = referenceColumnStats([], 'integer', ALL, 10);
    expect(s).toMatchObject({ value_count: 0, completeness: 1, lower_bound: null, upper_bound: null });
    expect(s.mean).toBeNull();
    expect(s.standard_deviation).toBeNull();
    expect(s.histogram).toEqual([]);
  });

  it('one value: deviation NULL (sample), one bucket', () => {
    const s = referenceColumnStats([7n, 7n], 'integer', ALL, 10);
    expect(s.standard_deviation).toBe(0);
    expect(referenceColumnStats([7], 'integer', ALL, 10).standard_deviation).toBeNull();
    expect(s.histogram).toEqual([{ lower: 7, upper: 7, count: 2 }]);
  });

  it('64-bit integers keep every digit in their bounds', () => {
    const big = 5815932129282598819n;
    const s = referenceColumnStats([big, -big, 3n], 'integer', ALL, 2);
    expect(s.upper_bound).toBe('5815932129282598819');
    expect(s.lower_bound).toBe('-5815932129282598819');
    expect(typedBound(42n, 'integer')).toBe(42);
  });

  it('strings order by UTF-8 bytes; decimals are exact strings; composites have no bounds', () => {
    // U+FF21 (3 bytes in UTF-8) sorts before U+1F600 (4 bytes) in UTF-8, after it in UTF-16 units.
    const s = referenceColumnStats(['\u{1F600}', '\uFF21', 'a'], 'string', ALL, 5);
    expect([s.lower_bound, s.upper_bound]).toEqual(['a', '\u{1F600}']);
    expect(s.mean).toBeNull();
    expect(s.histogram).toEqual([]);
    const d = referenceColumnStats(['10.50', '-0.25', '3'], 'decimal', ALL, 2);
    expect([d.lower_bound, d.upper_bound]).toEqual(['-0.25', '10.5']);
    const c = referenceColumnStats([{ a: 1 }, { a: 1 }, { a: 2 }], 'composite', ALL, 2);
    expect([c.lower_bound, c.upper_bound, c.approx_count_distinct]).toEqual([null, null, 2]);
  });

  it('booleans and timestamps are typed bounds', () => {
    expect(referenceColumnStats([true, false, null], 'boolean', ALL, 2)).toMatchObject({
      lower_bound: false,
      upper_bound: true,
    });
    const t = referenceColumnStats(
      [new Date('2024-02-01T00:00:00Z'), new Date('2023-12-31T23:00:00Z')],
      'temporal',
      ALL,
      2,
    );
    expect([t.lower_bound, t.upper_bound]).toEqual(['2023-12-31T23:00:00.000Z', '2024-02-01T00:00:00.000Z']);
  });
});

describe('SQL type names', () => {
  it.each([
    ['BIGINT', 'integer'],
    ['NUMBER(38,0)', 'integer'],
    ['NUMBER', 'integer'],
    ['DECIMAL(18,2)', 'decimal'],
    ['DECIMAL', 'decimal'],
    ['DOUBLE', 'floating'],
    ['FLOAT', 'floating'],
    ['VARCHAR', 'string'],
    ['TIMESTAMP_NTZ', 'temporal'],
    ['DATE', 'temporal'],
    ['BOOLEAN', 'boolean'],
    ['STRUCT(a INTEGER)', 'composite'],
    ['INTEGER[]', 'composite'],
    ['VARIANT', 'composite'],
  ])('%s is %s', (sql, kind) => {
    expect(kindOfSqlType(sql)).toBe(kind);
  });
});

describe('the comparison', () => {
  const expected = referenceColumnStats([1, 2, 3, 4, 5, null], 'floating', ALL, 2);

  it('accepts the reference itself and a distinct count 2 % off', () => {
    expect(compareColumnStats(expected, expected)).toEqual([]);
    const many = { approx_count_distinct: 1000 };
    expect(compareColumnStats({ approx_count_distinct: 1020 }, many)).toEqual([]);
    expect(compareColumnStats({ approx_count_distinct: 1021 }, many)).toHaveLength(1);
  });

  it('names every statistic that misses', () => {
    const wrong = {
      ...expected,
      null_value_count: 0,
      upper_bound: '5',
      standard_deviation: (expected.standard_deviation as number) * (1 + 1e-6),
      histogram: [],
    };
    const issues = compareColumnStats(wrong, expected, 'x');
    expect(issues.map((i) => i.split(':')[0])).toEqual([
      'x.null_value_count',
      'x.upper_bound',
      'x.standard_deviation',
      'x.histogram',
    ]);
    expect(compareColumnStats({}, { mean: 1 })).toEqual(['column.mean: missing']);
  });

  it('decimal bounds compare by value, not spelling', () => {
    expect(canonicalDecimal('-001.2500')).toBe('-1.25');
    expect(compareColumnStats({ lower_bound: '1.50' }, { lower_bound: '1.5' })).toEqual([]);
    expect(compareColumnStats({ lower_bound: 1.5 }, { lower_bound: '1.5' })).toHaveLength(1);
  });
});
