/**
 * The test side of the column statistics' one definition (src/executor/column-stats.ts):
 * {@link referenceColumnStats}, a plain, exact implementation over an array of values, and
 * {@link compareColumnStats}, the tolerances an executor's figures must meet. Test-only code: no
 * production module imports it.
 */
import {
  type Bound,
  type ColumnKind,
  type ColumnStatsValue,
  canonicalDecimal,
  DISTINCT_MAX_RELATIVE_ERROR,
  type EnabledStats,
  type HistogramBucket,
  histogramOf,
  isNumericKind,
  type Real,
  typedBound,
} from '../../src/executor/column-stats.ts';

function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function decimalCompare(a: string, b: string): number {
  const d = Number(a) - Number(b);
  if (d !== 0 && Number.isFinite(d)) return d;
  // Equal as doubles: compare exactly (same sign assumed equal magnitudes differ only far right).
  const [ca, cb] = [canonicalDecimal(a), canonicalDecimal(b)];
  if (ca === cb) return 0;
  const neg = ca.startsWith('-');
  const [ia = '', fa = ''] = ca.replace('-', '').split('.');
  const [ib = '', fb = ''] = cb.replace('-', '').split('.');
  const len = Math.max(fa.length, fb.length);
  const x = BigInt(ia + fa.padEnd(len, '0'));
  const y = BigInt(ib + fb.padEnd(len, '0'));
  const c = x < y ? -1 : x > y ? 1 : 0;
  return neg ? -c : c;
}

/**
 * The exact statistics of `values` (one per row; `null` is SQL NULL, `NaN` a floating NaN; integers
 * may be bigints, decimals strings, temporals ISO strings or Dates), as the module defines them.
 */
export function referenceColumnStats(
  values: readonly unknown[],
  kind: ColumnKind,
  enabled: EnabledStats,
  bins: number,
): ColumnStatsValue {
  const total = values.length;
  const nonNull = values.filter((v) => v !== null && v !== undefined);
  const isNaNValue = (v: unknown) => kind === 'floating' && typeof v === 'number' && Number.isNaN(v);
  const valid = nonNull.filter((v) => !isNaNValue(v));
  const out: ColumnStatsValue = {};
  const nulls = total - nonNull.length;
  if (enabled.value_count) out.value_count = total;
  if (enabled.null_value_count) out.null_value_count = nulls;
  if (enabled.nan_value_count) out.nan_value_count = nonNull.filter(isNaNValue).length;
  if (enabled.completeness) out.completeness = total === 0 ? 1 : (total - nulls) / total;

  const typed = valid.map((v) => typedBound(v, kind));
  const cmp = (a: Bound, b: Bound): number => {
    if (kind === 'integer' || kind === 'decimal') return decimalCompare(String(a), String(b));
    if (kind === 'floating') return (a as number) - (b as number);
    if (kind === 'boolean') return Number(a) - Number(b);
    if (kind === 'temporal')
      return Date.parse(String(a)) - Date.parse(String(b)) || utf8Compare(String(a), String(b));
    return utf8Compare(String(a), String(b));
  };
  let lo: Bound = null;
  let hi: Bound = null;
  if (kind !== 'composite') {
    for (const t of typed) {
      if (lo === null || cmp(t, lo) < 0) lo = t;
      if (hi === null || cmp(t, hi) > 0) hi = t;
    }
  }
  if (enabled.lower_bound) out.lower_bound = lo;
  if (enabled.upper_bound) out.upper_bound = hi;

  if (enabled.approx_count_distinct) {
    const key = (v: unknown) =>
      isNaNValue(v)
        ? 'NaN'
        : kind === 'composite'
          ? JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x))
          : String(typedBound(v, kind === 'floating' ? 'floating' : kind));
    out.approx_count_distinct = new Set(nonNull.map(key)).size;
  }

  const numeric = isNumericKind(kind);
  const nums = numeric ? valid.map((v) => Number(typeof v === 'bigint' ? v.toString() : v)) : [];
  if (enabled.mean) out.mean = nums.length === 0 ? null : kahanSum(nums) / nums.length;
  if (enabled.standard_deviation) {
    if (nums.length < 2) out.standard_deviation = null;
    else {
      const mean = kahanSum(nums) / nums.length;
      out.standard_deviation = Math.sqrt(kahanSum(nums.map((x) => (x - mean) ** 2)) / (nums.length - 1));
    }
  }
  if (enabled.histogram) {
    out.histogram =
      numeric && nums.length > 0 ? histogramOf(nums, Math.min(...nums), Math.max(...nums), bins) : [];
  }
  return out;
}

function kahanSum(xs: readonly number[]): number {
  let sum = 0;
  let c = 0;
  for (const x of xs) {
    const y = x - c;
    const t = sum + y;
    c = t - sum - y;
    sum = t;
  }
  return sum;
}

const REL = 1e-9;
function close(ra: Real, rb: Real): boolean {
  const a = Number(ra);
  const b = Number(rb);
  return a === b || Math.abs(a - b) <= REL * Math.max(1, Math.abs(a), Math.abs(b));
}

/**
 * The ways an executor's statistics for one column miss the definition: counts, bounds and histogram
 * counts must be exact; mean, deviation, completeness and bucket edges agree to 1e-9 relative;
 * distinct counts to {@link DISTINCT_MAX_RELATIVE_ERROR}. An empty list means they conform.
 */
export function compareColumnStats(
  actual: ColumnStatsValue,
  expected: ColumnStatsValue,
  column = 'column',
): string[] {
  const issues: string[] = [];
  const say = (stat: string, why: string) => issues.push(`${column}.${stat}: ${why}`);
  for (const stat of Object.keys(expected) as (keyof ColumnStatsValue)[]) {
    const a = actual[stat];
    const e = expected[stat];
    if (!(stat in actual)) {
      say(stat, 'missing');
      continue;
    }
    switch (stat) {
      case 'approx_count_distinct': {
        const err = Math.abs((a as number) - (e as number)) / Math.max(1, e as number);
        if (!(err <= DISTINCT_MAX_RELATIVE_ERROR))
          say(stat, `${a} vs exact ${e} (${(err * 100).toFixed(2)} % off)`);
        break;
      }
      case 'mean':
      case 'standard_deviation':
      case 'completeness':
        if (a === null || e === null ? a !== e : !close(a as Real, e as Real)) say(stat, `${a} vs ${e}`);
        break;
      case 'histogram': {
        const ah = a as HistogramBucket[];
        const eh = e as HistogramBucket[];
        if (!Array.isArray(ah) || ah.length !== eh.length) {
          say(stat, `${Array.isArray(ah) ? ah.length : typeof ah} buckets vs ${eh.length}`);
          break;
        }
        eh.forEach((b, i) => {
          const x = ah[i] as HistogramBucket;
          if (x.count !== b.count || !close(x.lower, b.lower) || !close(x.upper, b.upper)) {
            say(stat, `bucket ${i} ${JSON.stringify(x)} vs ${JSON.stringify(b)}`);
          }
        });
        break;
      }
      case 'lower_bound':
      case 'upper_bound':
        if (!sameBound(a as Bound, e as Bound)) {
          say(stat, `${JSON.stringify(a)} (${typeof a}) vs ${JSON.stringify(e)} (${typeof e})`);
        }
        break;
      default:
        if (a !== e) say(stat, `${a} vs ${e}`);
    }
  }
  return issues;
}

function sameBound(a: Bound, e: Bound): boolean {
  if (a === e) return true;
  if (typeof a !== 'string' || typeof e !== 'string') return false;
  const decimal = /^-?\d+(\.\d+)?$/;
  return decimal.test(a) && decimal.test(e) && canonicalDecimal(a) === canonicalDecimal(e);
}
