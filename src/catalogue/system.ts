/** The access-rules billing job, enqueued by the control plane after a materialize-view. */
import { z } from 'zod';
import { Count, Id, MicroCents, Sql, Timestamp } from './common.ts';

export const BillingInput = z.looseObject({
  dataset_id: Id,
  nio_last_modified_at: Timestamp,
  compiled_query: Sql,
  refresh_job_id: z.uuid(),
});
export type BillingInput = z.infer<typeof BillingInput>;

export const BillingResult = z.looseObject({
  type: z.literal('materialized_views_collect_access_rules_billing_data'),
  sources: z.array(z.looseObject({ access_rule_id: Id, rows: Count, price_per_row: MicroCents })),
});
export type BillingResult = z.infer<typeof BillingResult>;
