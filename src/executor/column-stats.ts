/**
 * What each column statistic of `datasets_calculate_column_stats` means: the one definition every
 * executor that computes statistics (local DuckDB, Snowflake, …) implements, and is tested against
 * through `referenceColumnStats` (a plain, exact implementation over an array of values) and
 * `compareColumnStats` (the tolerances an executor's figures must meet), in test/support/column-stats.ts.
 *
 * The definitions (Iceberg's where it defines the statistic):
 * - `value_count`: every row, NULLs and NaNs included.
 * - `null_value_count`: rows whose value IS NULL.
 * - `nan_value_count`: rows whose value is NaN; floating-point columns only, 0 for any other type.
 *   NaN is a value, not a NULL: it counts towards `value_count` and `completeness`.
 * - `lower_bound` / `upper_bound`: the least and greatest value over the non-NULL, non-NaN values,
 *   NULL when there is none. Ordering: numbers by value, strings by the bytes of their UTF-8 form
 *   (binary collation), booleans false < true, dates and timestamps by time. Stored as typed JSON:
 *   integers as numbers while |n| ≤ 2^53 − 1 and as decimal strings beyond (64-bit values stay
 *   exact); decimals (fixed scale) as decimal strings, exact; floating-point as numbers; strings as
 *   strings; booleans as booleans; dates and timestamps as ISO-8601 strings. Composite columns
 *   (STRUCT, LIST, MAP, ARRAY, OBJECT, VARIANT) have no order users can read: their bounds are NULL.
 * - `approx_count_distinct`: the number of distinct non-NULL values (NaN counts as one value), within
 *   {@link DISTINCT_MAX_RELATIVE_ERROR} of the exact count; an executor may count exactly.
 * - `completeness`: the share of rows whose value is not NULL: (value_count − null_value_count) /
 *   value_count, and 1 for an empty table.
 * - `mean`: the arithmetic mean of the non-NULL, non-NaN values of a numeric column (integer, decimal,
 *   floating), as a double; NULL when there is none or the column is not numeric.
 * - `standard_deviation`: the SAMPLE standard deviation (divisor n − 1) over the same values; NULL when
 *   there are fewer than two, or the column is not numeric.
 * - `histogram`: numeric columns only (an empty list otherwise, and when no value qualifies). `bins`
 *   equal-width buckets over [lower_bound, upper_bound] (one bucket when they are equal); a value x
 *   falls in bucket min(bins − 1, floor((x − lower) / width)), so the last bucket includes the upper
 *   bound; bucket i spans [lower + i·width, lower + (i+1)·width), the last ending exactly at upper.
 *   The counts sum to the number of non-NULL, non-NaN values.
 *
 * Doubles (mean, deviation, bucket edges) follow the contract's 64-bit rule: a whole number beyond
 * 2^53 − 1 (every double of that size is one: the mean of 64-bit ids) is its decimal string
 * ({@link contractDouble}). Every executor passes its statistics through {@link finishColumnStats}
 * before it persists anything.
 */
import { type ColumnStat, ColumnStats } from '../catalogue/datasets.ts';
import { JobError } from './index.ts';

/** The largest relative error allowed in `approx_count_distinct` (2 %). */
export const DISTINCT_MAX_RELATIVE_ERROR = 0.02;

/** How a column's values are ordered and stored, from its SQL type. */
export type ColumnKind = 'integer' | 'decimal' | 'floating' | 'string' | 'boolean' | 'temporal' | 'composite';

/**
 * The kind of a SQL type name, in DuckDB's or Snowflake's spelling (`BIGINT`, `NUMBER(38,0)`,
 * `DECIMAL(18,2)`, `DOUBLE`, `FLOAT`, `VARCHAR`, `TIMESTAMP_NTZ`, `STRUCT(a INTEGER)`, `INTEGER[]`…).
 * Unknown types are treated as strings.
 */
export function kindOfSqlType(sqlType: string): ColumnKind {
  const t = sqlType.trim().toUpperCase();
  if (/\[\d*\]$/.test(t) || /^(STRUCT|LIST|MAP|ARRAY|OBJECT|VARIANT|UNION)\b/.test(t)) return 'composite';
  if (
    /^(TINYINT|SMALLINT|INTEGER|INT|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|BYTEINT|INT\d|LONG|SHORT)$/.test(
      t,
    )
  )
    return 'integer';
  const dec = /^(DECIMAL|NUMERIC|NUMBER)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?$/.exec(t);
  if (dec) {
    // No scale given: Snowflake's NUMBER is NUMBER(38,0), DuckDB's DECIMAL is DECIMAL(18,3); a
    // precision alone means scale 0.
    const scale = dec[3] !== undefined ? Number(dec[3]) : dec[2] !== undefined || dec[1] === 'NUMBER' ? 0 : 3;
    return scale > 0 ? 'decimal' : 'integer';
  }
  if (/^(FLOAT\d?|DOUBLE( PRECISION)?|REAL)$/.test(t)) return 'floating';
  if (t === 'BOOLEAN' || t === 'BOOL') return 'boolean';
  if (/^(DATE|TIME|TIMESTAMP|DATETIME)/.test(t)) return 'temporal';
  return 'string';
}

/** True for the kinds whose mean, deviation and histogram are defined. */
export function isNumericKind(kind: ColumnKind): boolean {
  return kind === 'integer' || kind === 'decimal' || kind === 'floating';
}

/** A bound as the result stores it (see the module's definitions). */
export type Bound = number | string | boolean | null;

/**
 * A bound in its stored form. `raw` is what a driver returns: a number, a bigint, a decimal's string
 * (or an object with a `toString` giving it), a Date, a boolean, a string.
 */
export function typedBound(raw: unknown, kind: ColumnKind): Bound {
  if (raw === null || raw === undefined || kind === 'composite') return null;
  switch (kind) {
    case 'integer': {
      const s = typeof raw === 'bigint' ? raw.toString() : String(raw).trim();
      if (!/^-?\d+$/.test(s)) return typeof raw === 'number' ? raw : s;
      const n = Number(s);
      return Number.isSafeInteger(n) ? n : canonicalDecimal(s);
    }
    case 'decimal':
      return canonicalDecimal(typeof raw === 'number' ? String(raw) : String(raw));
    case 'floating':
      return Number(raw);
    case 'boolean':
      return typeof raw === 'boolean' ? raw : /^(true|1)$/i.test(String(raw));
    case 'temporal':
      return raw instanceof Date ? raw.toISOString() : String(raw);
    default:
      return String(raw);
  }
}

/** `-001.2500` → `-1.25`, `3.000` → `3`, `-0` → `0`: one spelling per decimal value. */
export function canonicalDecimal(s: string): string {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(s.trim());
  if (!m) return s;
  const int = (m[2] ?? '').replace(/^0+(?=\d)/, '') || '0';
  const frac = (m[3] ?? '').replace(/0+$/, '');
  const body = frac ? `${int}.${frac}` : int;
  return m[1] === '-' && body !== '0' ? `-${body}` : body;
}

/** A double as results carry it: a number, or (a whole number beyond 2^53 − 1) its decimal string. */
export type Real = number | string;

/**
 * `x` under the contract's 64-bit rule: a whole number beyond 2^53 − 1 becomes its decimal string,
 * the same digits JSON would write and the lossless parse would read back (shortest round trip);
 * anything else stays a number. From 1e21 on JSON writes an exponent, which parses as a number.
 */
export function contractDouble(x: number): Real {
  return Number.isInteger(x) && !Number.isSafeInteger(x) && Math.abs(x) < 1e21 ? String(x) : x;
}

export interface HistogramBucket {
  lower: Real;
  upper: Real;
  count: number;
}

/**
 * The statistics of each column as the result carries them: doubles under the 64-bit rule, then
 * validated against the catalogue's result schema. Throws `INVALID_RESULT` (not retryable) on a
 * statistic the schema refuses: call it before anything is persisted, so a refused result writes
 * nothing.
 */
export function finishColumnStats(
  columns: Record<string, Record<string, unknown>>,
): Record<string, ColumnStatsValue> {
  const real = (v: unknown) => (typeof v === 'number' ? contractDouble(v) : v);
  const out: Record<string, ColumnStatsValue> = {};
  for (const [column, stats] of Object.entries(columns)) {
    const s: Record<string, unknown> = { ...stats };
    if ('mean' in s) s.mean = real(s.mean);
    if ('standard_deviation' in s) s.standard_deviation = real(s.standard_deviation);
    if (Array.isArray(s.histogram)) {
      s.histogram = s.histogram.map((b: { lower: unknown; upper: unknown; count: unknown }) => ({
        lower: real(b.lower),
        upper: real(b.upper),
        count: b.count,
      }));
    }
    const checked = ColumnStats.safeParse(s);
    if (!checked.success) {
      throw new JobError(
        'INVALID_RESULT',
        `the statistics of column ${column} do not match the result schema`,
        {
          retryable: false,
          details: {
            column,
            issues: checked.error.issues.slice(0, 10).map((i) => `${i.path.join('.')}: ${i.message}`),
          },
        },
      );
    }
    out[column] = s as ColumnStatsValue;
  }
  return out;
}

/** The statistics of one column, as the job's result and the statistics table hold them. */
export interface ColumnStatsValue {
  value_count?: number;
  null_value_count?: number;
  nan_value_count?: number;
  lower_bound?: Bound;
  upper_bound?: Bound;
  approx_count_distinct?: number;
  completeness?: number;
  mean?: Real | null;
  standard_deviation?: Real | null;
  histogram?: HistogramBucket[];
}

export type EnabledStats = Partial<Record<ColumnStat, boolean>>;

/** Equal-width buckets per the module's definition. */
export function histogramOf(
  values: readonly number[],
  lower: number,
  upper: number,
  bins: number,
): HistogramBucket[] {
  if (values.length === 0) return [];
  const n = lower === upper ? 1 : bins;
  const width = (upper - lower) / n;
  const counts = new Array<number>(n).fill(0);
  for (const x of values) {
    const b = n === 1 ? 0 : Math.min(n - 1, Math.floor((x - lower) / width));
    counts[b] = (counts[b] ?? 0) + 1;
  }
  return counts.map((count, i) => ({
    lower: lower + i * width,
    upper: i === n - 1 ? upper : lower + (i + 1) * width,
    count,
  }));
}
