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

/** `JSON.parse`, except that integer literals beyond ±(2^53 − 1) become exact decimal strings. */
export function parseJsonLossless(text: string): unknown {
  // An integer beyond 2^53 − 1 has at least 16 digits: without such a run, the plain parse is exact
  // (and several times faster than one with a reviver, on every poll and report body).
  if (!/\d{16}/.test(text)) return JSON.parse(text);
  return JSON.parse(text, function (this: unknown, _key: string, value: unknown, context?: ReviverContext) {
    if (typeof value === 'number' && !Number.isSafeInteger(value) && context?.source !== undefined) {
      const source = context.source;
      if (/^-?\d+$/.test(source)) return source.replace(/^(-?)0+(?=\d)/, '$1');
    }
    return value;
  } as (this: unknown, key: string, value: unknown) => unknown);
}
