/** The datasets_* job types: create, delete, truncate, sample, column statistics and DML. */
import { z } from 'zod';
import { Count, Id, Sql, Timestamp } from './common.ts';

const typed = <T extends string>(type: T) => z.looseObject({ type: z.literal(type) });

export const DatasetsCreateTableInput = z.looseObject({ dataset_id: Id, compiled_sql: Sql });
export const DatasetsCreateTableResult = typed('datasets_create_table');

export const DatasetsDeleteTableInput = z.looseObject({
  /** Fully qualified table, e.g. `company_56.dataset_1234`. */
  external_id: z
    .string()
    .min(1)
    .regex(
      /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$/,
      'must be a (schema-qualified) table name',
    ),
  is_narrative_managed: z.boolean(),
});
export const DatasetsDeleteTableResult = typed('datasets_delete_table');

export const DatasetsTruncateTableInput = z.looseObject({ dataset_id: Id });
export const DatasetsTruncateTableResult = typed('datasets_truncate_table');

export const DatasetsSampleInput = z.looseObject({
  dataset_id: Id,
  /** Our addition: rows to keep (the data plane caps it). */
  sample_size: z.number().int().min(1).max(100_000).optional(),
});
export const DatasetsSampleResult = typed('datasets_sample');

export const COLUMN_STATS = [
  'null_value_count',
  'nan_value_count',
  'value_count',
  'lower_bound',
  'upper_bound',
  'approx_count_distinct',
  'completeness',
  'histogram',
  'mean',
  'standard_deviation',
] as const;
export type ColumnStat = (typeof COLUMN_STATS)[number];

export const ColumnDataType = z.enum([
  'string',
  'boolean',
  'int',
  'long',
  'float',
  'double',
  'decimal',
  'date',
  'timestamp',
  'timestamptz',
  'binary',
]);

export const EnabledColumnStats = z.strictObject(
  Object.fromEntries(COLUMN_STATS.map((s) => [s, z.boolean().optional()])) as Record<
    ColumnStat,
    z.ZodOptional<z.ZodBoolean>
  >,
);

export const DatasetsCalculateColumnStatsInput = z.looseObject({
  dataset_id: Id,
  enabled_column_stats: z
    .record(
      z.string().min(1),
      z.looseObject({ data_type: ColumnDataType, enabled_column_stats: EnabledColumnStats }),
    )
    .refine((r) => Object.keys(r).length > 0, 'name at least one column'),
});
export type DatasetsCalculateColumnStatsInput = z.infer<typeof DatasetsCalculateColumnStatsInput>;

const Bound = z.union([z.number(), z.string(), z.boolean(), z.null()]);
/**
 * A double under the contract's 64-bit rule: a whole number beyond 2^53 − 1 (a mean of 64-bit ids)
 * travels as its decimal string, which is also what the lossless parse makes of its JSON literal.
 */
const Real = z.union([z.number(), z.string().regex(/^-?\d+$/)]);
export const ColumnStats = z.looseObject({
  null_value_count: Count.optional(),
  nan_value_count: Count.optional(),
  value_count: Count.optional(),
  lower_bound: Bound.optional(),
  upper_bound: Bound.optional(),
  approx_count_distinct: Count.optional(),
  completeness: z.number().min(0).max(1).optional(),
  histogram: z.array(z.looseObject({ lower: Real, upper: Real, count: Count })).optional(),
  mean: Real.nullable().optional(),
  standard_deviation: Real.nullable().optional(),
});

export const DatasetsCalculateColumnStatsResult = z.looseObject({
  type: z.literal('datasets_calculate_column_stats'),
  /** Our addition: the statistics computed, per column. */
  columns: z.record(z.string(), ColumnStats).optional(),
});

export const DatasetsExecuteDmlInput = z.looseObject({
  dataset_id: Id,
  nql: z.string().min(1),
  compiled_sql: Sql,
  nio_last_modified_at: Timestamp,
});
export const DatasetsExecuteDmlResult = z.looseObject({
  type: z.literal('datasets_execute_dml'),
  affected_rows: Count,
});

/**
 * A dataset's table as the control plane writes it into the SQL it compiles (`company_56.dataset_1234`):
 * the schema is the company's, the table the dataset's. Built from integers only.
 */
export function compiledTableName(companyId: number, datasetId: number): string {
  return `company_${Math.trunc(companyId)}.dataset_${Math.trunc(datasetId)}`;
}
