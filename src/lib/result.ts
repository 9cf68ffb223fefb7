/**
 * Results that report a failure inside a completed job: nql-forecast's `{type: "Failure", msg}` (the
 * seed's `nql-forecast.result.failure.json`) and the forecasting types' `{type: "failure", msg}`. The
 * job itself is completed (the query ran and answered); metrics, `jobs wait` and `jobs list` show it
 * as a failure all the same.
 */
export function resultFailure(result: unknown): string | undefined {
  if (typeof result !== 'object' || result === null || Array.isArray(result)) return undefined;
  const r = result as { type?: unknown; msg?: unknown };
  if (typeof r.type !== 'string' || r.type.toLowerCase() !== 'failure') return undefined;
  return typeof r.msg === 'string' ? r.msg : '';
}
