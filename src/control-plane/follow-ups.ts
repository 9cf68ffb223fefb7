/**
 * The control plane's product workflow: which completed job enqueues which internal job. These are
 * the only jobs the control plane creates itself, and users cannot submit their types.
 *
 * - A completed `forecast` with `schedule_unsampled_forecast: true` enqueues a `forecast-internal`
 *   with the same input (the exact, unsampled run).
 * - A completed `materialize-view` enqueues `materialized_views_collect_access_rules_billing_data`
 *   for its dataset, with the query that bills the rows the refresh wrote and `refresh_job_id` set.
 *
 * Idempotency keys derived from the parent make a forced re-run of the parent never enqueue a
 * second follow-up. They live in a namespace no user can write ({@link INTERNAL_KEY_PREFIX}: the
 * store refuses a user's key there with 422), so no submission can take a follow-up's key first and
 * suppress it (a billing job, say). The store submits what this returns inside the parent's
 * completion, and refuses a follow-up whose key is outside the namespace.
 */
import { compiledTableName, type JobType } from '../catalogue/index.ts';
import type { Job, SubmitJobRequest } from '../contract/index.ts';

/** The types of the jobs {@link followUpsOf} creates (`dev` lists them to find follow-ups). */
export const FOLLOW_UP_TYPES: readonly JobType[] = [
  'forecast-internal',
  'materialized_views_collect_access_rules_billing_data',
];

/** Idempotency keys starting with this are the control plane's own: users cannot submit them. */
export const INTERNAL_KEY_PREFIX = 'dpo-internal:';

/** The submissions a job's completion causes (usually none). */
export function followUpsOf(parent: Job, now: Date): SubmitJobRequest[] {
  const base = { company_id: parent.company_id, data_plane_id: parent.data_plane_id };
  if (parent.type === 'forecast') {
    const input = parent.input as { schedule_unsampled_forecast?: boolean };
    if (input.schedule_unsampled_forecast !== true) return [];
    return [
      {
        ...base,
        type: 'forecast-internal',
        input: parent.input,
        idempotency_key: `${INTERNAL_KEY_PREFIX}forecast-internal:${parent.id}`,
      },
    ];
  }
  if (parent.type === 'materialize-view') {
    const input = parent.input as { dataset_id: number };
    const result = parent.result as { nio_last_modified_at?: string };
    const modifiedAt = result.nio_last_modified_at ?? now.toISOString();
    const table = compiledTableName(parent.company_id, input.dataset_id);
    return [
      {
        ...base,
        type: 'materialized_views_collect_access_rules_billing_data',
        input: {
          dataset_id: input.dataset_id,
          nio_last_modified_at: modifiedAt,
          compiled_query:
            `SELECT _nio_access_rule_id, COUNT(*) AS rows, _nio_price_per_row FROM ${table} ` +
            `WHERE _nio_last_modified_at = '${modifiedAt}' GROUP BY _nio_access_rule_id, _nio_price_per_row`,
          refresh_job_id: parent.id,
        },
        idempotency_key: `${INTERNAL_KEY_PREFIX}billing:${parent.id}`,
      },
    ];
  }
  return [];
}
