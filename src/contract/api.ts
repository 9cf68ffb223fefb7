/**
 * Requests and responses of every endpoint of the control-plane contract (v1); the README's contract section is its prose.
 * Bodies are JSON, snake_case. Request schemas are strict about what the server relies on and
 * tolerate added fields, so newer clients can talk to older servers.
 */
import { z } from 'zod';
import {
  Checkpoint,
  CompanyId,
  DataPlaneId,
  ExecutorId,
  FailureReport,
  Job,
  JobState,
  JobTypeName,
  LogLine,
  Progress,
  StoredLogLine,
} from './job.ts';

export const API_PREFIX = '/v1';

/** Longest a client may ask the server to hold a long poll (`wait_ms`, `timeout_ms`). */
export const MAX_WAIT_MS = 60_000;
/** Most jobs one poll may claim. */
export const MAX_CAPACITY = 1_000;
/** Most entries one batched report, one held list or one log append may carry. */
export const MAX_BATCH = 10_000;

// ---------------------------------------------------------------------------------------------
// Errors

export const ERROR_CODES = [
  'bad_request',
  'unauthorized',
  'forbidden',
  'not_found',
  'method_not_allowed',
  'gone',
  'payload_too_large',
  'unsupported_media_type',
  'validation_failed',
  'internal',
  'unavailable',
] as const;
export const ErrorCode = z.enum(ERROR_CODES);
export type ErrorCode = z.infer<typeof ErrorCode>;

/** Every non-2xx answer carries this body. */
export const ErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.unknown().optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

// ---------------------------------------------------------------------------------------------
// User side

export const SubmitJobRequest = z.object({
  type: JobTypeName,
  company_id: CompanyId,
  data_plane_id: DataPlaneId.nullish(),
  input: z.unknown(),
  idempotency_key: z.string().min(1).max(512).nullish(),
  max_attempts: z.number().int().min(1).max(100).nullish(),
});
export type SubmitJobRequest = z.infer<typeof SubmitJobRequest>;

/** `state` and `type` accept one value or a comma-separated list. */
export const ListJobsQuery = z.object({
  state: z
    .string()
    .transform((s) => s.split(',').filter(Boolean))
    .pipe(z.array(JobState))
    .optional(),
  type: z
    .string()
    .transform((s) => s.split(',').filter(Boolean))
    .pipe(z.array(JobTypeName))
    .optional(),
  data_plane_id: DataPlaneId.optional(),
  company_id: z.coerce.number().pipe(CompanyId).optional(),
  per_page: z.coerce.number().int().min(1).max(1000).default(50),
  cursor: z.string().max(200).optional(),
});
export type ListJobsQuery = z.infer<typeof ListJobsQuery>;

export const ListJobsResponse = z.object({
  jobs: z.array(Job),
  next_cursor: z.string().nullable(),
});
export type ListJobsResponse = z.infer<typeof ListJobsResponse>;

export const CancelJobRequest = z.object({ reason: z.string().max(4096).nullish() });
export type CancelJobRequest = z.infer<typeof CancelJobRequest>;
export const CancelOutcome = z.enum(['cancelled', 'cancellation_requested', 'skipped_terminal']);
export const CancelJobResponse = z.object({ outcome: CancelOutcome, job: Job });
export type CancelJobResponse = z.infer<typeof CancelJobResponse>;

export const RescheduleJobRequest = z.object({ force: z.boolean().nullish() });
export type RescheduleJobRequest = z.infer<typeof RescheduleJobRequest>;
export const RescheduleOutcome = z.enum(['rescheduled', 'skipped_terminal']);
export const RescheduleJobResponse = z.object({ outcome: RescheduleOutcome, job: Job });
export type RescheduleJobResponse = z.infer<typeof RescheduleJobResponse>;

export const WaitQuery = z.object({
  timeout_ms: z.coerce.number().int().min(0).max(MAX_WAIT_MS).default(30_000),
});

export const LogsQuery = z.object({
  /** Only lines with a larger `seq` (for tailing). */
  after: z.coerce.number().int().nonnegative().optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
});
export const LogsResponse = z.object({
  lines: z.array(StoredLogLine),
  /** The last `seq` returned, to pass as `after` next time (null when no line came back). */
  last_seq: z.number().int().nullable(),
});
export type LogsResponse = z.infer<typeof LogsResponse>;

// ---------------------------------------------------------------------------------------------
// Operator side

export const HeldJob = z.object({
  id: z.uuid(),
  lease_token: z.string().min(1).max(200),
  progress: Progress.nullish(),
});
export type HeldJob = z.infer<typeof HeldJob>;

export const PollRequest = z.object({
  executor: ExecutorId,
  data_plane_id: DataPlaneId,
  job_types: z.array(JobTypeName).max(100),
  capacity: z.number().int().min(0).max(MAX_CAPACITY),
  wait_ms: z.number().int().min(0).max(MAX_WAIT_MS).default(0),
  held: z.array(HeldJob).max(MAX_BATCH).default([]),
});
export type PollRequest = z.input<typeof PollRequest>;

export const PollResponse = z.object({
  claimed: z.array(Job),
  /** Held jobs whose cancellation was requested: stop the work, then report `cancelled`. */
  cancel: z.array(z.uuid()),
  /**
   * Jobs this executor no longer owns, listed in `held` or not: stop, report nothing, leave remote
   * work running, except after a reschedule (see `lost_reasons`).
   */
  lost: z.array(z.uuid()),
  /**
   * Why each job in `lost` was lost: `rescheduled` (the job starts fresh: the holder stops the remote
   * work it started), `expired` (the lease ran out), `claimed` (another lease holds it now). Added in
   * 2026-12; an older control plane leaves it out, and a reason this client does not know is taken
   * as `expired`.
   */
  lost_reasons: z.record(z.uuid(), z.string()).default({}),
  lease_ttl_ms: z.number().int().positive(),
  /**
   * How long the control plane held this poll (on its clock) before it renewed the listed leases and
   * claimed what it answers: a lease in this answer was granted no earlier than the poll was sent
   * plus this. Added in 2026-12; 0 when absent.
   */
  parked_ms: z.number().int().nonnegative().default(0),
});
export type PollResponse = z.infer<typeof PollResponse>;

const LeaseToken = z.string().min(1).max(200);

export const CheckpointRequest = z.object({
  lease_token: LeaseToken,
  checkpoint: Checkpoint.nullish(),
  progress: Progress.nullish(),
  /** The holder confirmed the work named by the job's `stale_checkpoints` stopped: clear them. */
  clear_stale: z.boolean().nullish(),
});
export type CheckpointRequest = z.infer<typeof CheckpointRequest>;

export const CompleteRequest = z.object({ lease_token: LeaseToken, result: z.unknown() });
export type CompleteRequest = z.infer<typeof CompleteRequest>;

export const FailRequest = z.object({ lease_token: LeaseToken, failure: FailureReport });
export type FailRequest = z.infer<typeof FailRequest>;

export const CancelledRequest = z.object({ lease_token: LeaseToken });
export type CancelledRequest = z.infer<typeof CancelledRequest>;

export const ReleaseRequest = z.object({ lease_token: LeaseToken, reason: z.string().min(1).max(4096) });
export type ReleaseRequest = z.infer<typeof ReleaseRequest>;

export const AppendLogsRequest = z.object({
  lease_token: LeaseToken,
  lines: z.array(LogLine).max(MAX_BATCH),
});
export type AppendLogsRequest = z.infer<typeof AppendLogsRequest>;

export const ReportStatus = z.enum(['ok', 'lost', 'invalid']);
export type ReportStatus = z.infer<typeof ReportStatus>;

/**
 * Log lines of many held jobs in one request (the daemon ships every job's lines once per
 * interval). Each entry is fenced by its lease like the single-job append.
 */
export const AppendLogsBatchRequest = z.object({
  executor: ExecutorId,
  entries: z
    .array(z.object({ id: z.uuid(), lease_token: LeaseToken, lines: z.array(LogLine).min(1).max(MAX_BATCH) }))
    .max(MAX_BATCH),
});
export type AppendLogsBatchRequest = z.infer<typeof AppendLogsBatchRequest>;
export const AppendLogsBatchResponse = z.object({
  results: z.array(
    z.object({ id: z.uuid(), status: ReportStatus, appended: z.number().int().nonnegative() }),
  ),
});
export type AppendLogsBatchResponse = z.infer<typeof AppendLogsBatchResponse>;

/** Answer of every single-job operator write. */
export const JobResponse = z.object({ job: Job });
export type JobResponse = z.infer<typeof JobResponse>;

export const ReportEntry = z.discriminatedUnion('outcome', [
  z.object({ id: z.uuid(), lease_token: LeaseToken, outcome: z.literal('complete'), result: z.unknown() }),
  z.object({ id: z.uuid(), lease_token: LeaseToken, outcome: z.literal('fail'), failure: FailureReport }),
  z.object({ id: z.uuid(), lease_token: LeaseToken, outcome: z.literal('cancelled') }),
  z.object({
    id: z.uuid(),
    lease_token: LeaseToken,
    outcome: z.literal('release'),
    reason: z.string().min(1).max(4096),
  }),
]);
export type ReportEntry = z.infer<typeof ReportEntry>;

export const ReportRequest = z.object({
  executor: ExecutorId,
  reports: z.array(ReportEntry).max(MAX_BATCH),
});
export type ReportRequest = z.infer<typeof ReportRequest>;

export const ReportResult = z.object({
  id: z.uuid(),
  status: ReportStatus,
  error: ErrorBody.shape.error.optional(),
});
export type ReportResult = z.infer<typeof ReportResult>;
export const ReportResponse = z.object({ results: z.array(ReportResult) });
export type ReportResponse = z.infer<typeof ReportResponse>;

/** Health of the control plane itself. */
export const HealthResponse = z.object({ status: z.literal('ok'), version: z.string() });
