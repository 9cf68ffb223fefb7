/** nql-forecast, materialize-view and the access-rules billing job that follows a materialization. */
import { z } from 'zod';
import { BigId, Id, Sql, Timestamp } from './common.ts';

export const NqlForecastInput = z.looseObject({
  nql: z.string().min(1),
  compiled_sql: Sql,
});
export type NqlForecastInput = z.infer<typeof NqlForecastInput>;

export const NqlForecastResult = z.discriminatedUnion('type', [
  z.looseObject({
    type: z.literal('Success'),
    result: z.looseObject({
      columns: z.array(z.string()),
      rows: z.array(z.array(z.unknown())),
    }),
  }),
  z.looseObject({ type: z.literal('Failure'), msg: z.string() }),
]);
export type NqlForecastResult = z.infer<typeof NqlForecastResult>;

/** Iceberg partition transforms. */
export const PartitionSpec = z.looseObject({
  field: z.string().min(1),
  fn: z.enum(['identity', 'year', 'month', 'day', 'hour', 'bucket', 'truncate']),
  args: z.array(z.union([z.number(), z.string()])).default([]),
});

export const ChunkMetadata = z
  .looseObject({
    batch_id: z.uuid(),
    chunk_sequence: z.looseObject({ number: z.number().int().min(1), of: z.number().int().min(1) }),
  })
  .superRefine((c, ctx) => {
    if (c.chunk_sequence.number > c.chunk_sequence.of) {
      ctx.addIssue({
        code: 'custom',
        path: ['chunk_sequence', 'number'],
        message: `chunk ${c.chunk_sequence.number} of ${c.chunk_sequence.of} is out of range`,
      });
    }
  });

export const MaterializeViewInput = z.looseObject({
  nql: z.string().min(1),
  compiled_select: Sql,
  dataset_id: Id,
  stats_enabled: z.boolean().default(false),
  contains_delta_syntax: z.boolean().optional(),
  first_run: z.boolean().optional(),
  merge: z.boolean().optional(),
  partitions: z.array(PartitionSpec).optional(),
  chunk_metadata: ChunkMetadata.optional(),
});
export type MaterializeViewInput = z.infer<typeof MaterializeViewInput>;

export const MaterializeViewResult = z.looseObject({
  dataset_id: Id,
  snapshot_id: BigId,
  recalculation_id: z.uuid(),
  /** Our addition: when the snapshot's rows were written (the billing job filters on it). */
  nio_last_modified_at: Timestamp.optional(),
});
export type MaterializeViewResult = z.infer<typeof MaterializeViewResult>;
