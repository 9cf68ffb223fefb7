/**
 * forecast, forecast-internal (same shapes) and costs.
 * Results also admit `{type: "failure", msg}` — our extension, mirroring nql-forecast's Failure —
 * so a data plane can say why an estimate could not be made without failing the job.
 */
import { z } from 'zod';
import { Count, Id, IsoDuration, MicroCents, Timestamp } from './common.ts';

export const FieldRule = z.looseObject({
  /** Attribute field path, e.g. `unique_id.value`. */
  field: z.string().min(1),
  /** A named filter, e.g. `include_only_if_not_null_filter`; null for none. */
  filter: z.string().min(1).nullable(),
  exported: z.boolean(),
});

export const AttributeRule = z.looseObject({
  attribute_id: Id,
  fields: z.array(FieldRule).min(1),
  optional: z.boolean().optional(),
});

export const TimestampBound = z.looseObject({
  type: z.enum(['inclusive', 'exclusive']),
  value: Timestamp,
});

export const IngestionTimestampFilter = z.looseObject({
  recency: IsoDuration.nullish(),
  from: TimestampBound.nullish(),
  until: TimestampBound.nullish(),
});

export const CompanyConstraint = z.looseObject({
  type: z.enum(['inclusion', 'exclusion']),
  company_ids: z.array(Id),
});

export const SubscriptionDetails = z.looseObject({
  type: z.enum(['marketplace', 'private', 'direct']),
  company_constraint: CompanyConstraint.nullish(),
  data_rules: z.looseObject({
    attributes: z.array(AttributeRule).min(1),
    ingestion_timestamp_filter: IngestionTimestampFilter.nullish(),
  }),
  pricing: MicroCents,
});

export const ForecastInput = z.looseObject({
  as_of: Timestamp.nullable(),
  details: SubscriptionDetails,
  dimensions: z
    .looseObject({
      distinct_counts: z.array(z.string().min(1)).default([]),
      group_by: z.array(z.string().min(1)).nullable().default(null),
    })
    .optional(),
  /** Sample 1 row in N; 1 means unsampled. */
  sample_rate_denominator: z.number().int().min(1).max(1_000_000),
  schedule_unsampled_forecast: z.boolean().default(false),
});
export type ForecastInput = z.infer<typeof ForecastInput>;

export const ScanSource = z.looseObject({
  rows: Count,
  size: Count,
  source: z.looseObject({ type: z.literal('dataset'), dataset_id: Id }),
});
export const ScanCost = z.looseObject({ rows: Count, size: Count, sources: z.array(ScanSource) });

export const EstimateFailure = z.looseObject({ type: z.literal('failure'), msg: z.string() });

export const ForecastSuccess = z.looseObject({
  type: z.literal('success'),
  cost: Count,
  rows: Count,
  datasets: z.array(z.looseObject({ dataset_id: Id, rows: Count, cost: Count })),
  estimator: z.union([
    z.looseObject({ type: z.literal('sample'), rate: z.number().gt(0).max(1) }),
    z.looseObject({ type: z.literal('exact') }),
  ]),
  scan_cost: ScanCost,
});
export const ForecastResult = z.discriminatedUnion('type', [ForecastSuccess, EstimateFailure]);
export type ForecastResult = z.infer<typeof ForecastResult>;

export const CostsInput = z.looseObject({
  as_of: Timestamp.nullable(),
  details: SubscriptionDetails,
});
export type CostsInput = z.infer<typeof CostsInput>;

export const CostsResult = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('success'), cost: ScanCost }),
  EstimateFailure,
]);
export type CostsResult = z.infer<typeof CostsResult>;
