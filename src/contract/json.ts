/**
 * The contract's 64-bit rule: an integer whose magnitude exceeds 2^53 − 1 (Iceberg snapshot ids,
 * Snowflake NUMBER(38) values, 64-bit ids in general) travels as a decimal string, never as a JSON
 * number, because every JavaScript hop would round it (`5815932129282598819` → `5815932129282599000`).
 *
 * Producers (executors, the Spark runner) write such values as strings. Every boundary that reads
 * JSON from outside (the control plane's request bodies, the client's answers, an executor's result
 * files) parses with {@link parseJsonLossless}, which turns a bare integer literal beyond the safe
 * range into its exact decimal string instead of a rounded double, so a producer that forgot the rule
 * still loses nothing. Schemas that expect a number then refuse such a value rather than store a
 * wrong one; id fields that may be 64-bit (`BigId`) accept both forms.
 */

/** The reviver's third argument (ES2025 JSON.parse source text access; Node ≥ 21). */
interface ReviverContext {
  source?: string;
}

/** A JSON string literal (skipped), or a run of 16 digits outside one. */
const STRING_OR_LONG_DIGITS = /"[^"\\]*(?:\\.[^"\\]*)*"|\d{16}/g;

/**
 * Whether `text` has a run of 16 digits outside its string literals: only then can it hold an integer
 * literal beyond 2^53 − 1. Digits inside strings (a lease token's 32 hex digits, a UUID) do not count.
 */
export function mayHoldLongInteger(text: string): boolean {
  if (!/\d{16}/.test(text)) return false;
  STRING_OR_LONG_DIGITS.lastIndex = 0;
  for (let m = STRING_OR_LONG_DIGITS.exec(text); m !== null; m = STRING_OR_LONG_DIGITS.exec(text)) {
    if (m[0].charCodeAt(0) !== 34 /* " */) return true;
  }
  return false;
}

/** `JSON.parse`, except that integer literals beyond ±(2^53 − 1) become exact decimal strings. */
export function parseJsonLossless(text: string): unknown {
  // An integer beyond 2^53 − 1 has at least 16 digits: without such a run outside the strings, the
  // plain parse is exact (and several times faster than one with a reviver, on every poll and report).
  if (!mayHoldLongInteger(text)) return JSON.parse(text);
  return JSON.parse(text, function (this: unknown, _key: string, value: unknown, context?: ReviverContext) {
    if (typeof value === 'number' && !Number.isSafeInteger(value) && context?.source !== undefined) {
      const source = context.source;
      if (/^-?\d+$/.test(source)) return source.replace(/^(-?)0+(?=\d)/, '$1');
    }
    return value;
  } as (this: unknown, key: string, value: unknown) => unknown);
}
