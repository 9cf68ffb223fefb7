/**
 * The job object of the control-plane contract (v1), as zod schemas. TypeScript types are inferred
 * from these schemas and never written twice; the control plane and every client share this module.
 */
import { z } from 'zod';

/** Lifecycle states. `completed`, `cancelled` and `failed` are terminal. */
export const JOB_STATES = [
  'pending',
  'running',
  'pending_cancellation',
  'completed',
  'cancelled',
  'failed',
] as const;
export const JobState = z.enum(JOB_STATES);
export type JobState = z.infer<typeof JobState>;

export const TERMINAL_STATES: ReadonlySet<JobState> = new Set(['completed', 'cancelled', 'failed']);
/** States in which a job is held under a lease by one executor. */
export const LEASED_STATES: ReadonlySet<JobState> = new Set(['running', 'pending_cancellation']);

export function isTerminal(state: JobState): boolean {
  return TERMINAL_STATES.has(state);
}

/** RFC 3339 / ISO 8601 timestamp with an offset, as every timestamp of the contract is written. */
export const Timestamp = z.iso.datetime({ offset: true });

/** A JSON object whose keys the contract does not constrain (checkpoint, details, request source). */
export const JsonObject = z.record(z.string(), z.unknown());
export type JsonObject = z.infer<typeof JsonObject>;

/** Machine-readable failure code, e.g. `INVALID_INPUT`, `LEASE_EXPIRED`, `TIMEOUT`. */
export const FailureCode = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Z][A-Z0-9_]*$/, 'failure codes are UPPER_SNAKE_CASE');

/** What an operator sends when a job fails (the control plane adds attempt, executor and timestamp). */
export const FailureReport = z.object({
  code: FailureCode,
  message: z.string().max(16_384),
  retryable: z.boolean(),
  details: z.unknown().optional(),
  /**
   * How long the control plane should wait before offering a retryable failure again (a throttled
   * backend asking to be retried later). Replaces the control plane's own backoff for that retry.
   */
  retry_after_ms: z.number().int().min(0).max(86_400_000).optional(),
  /**
   * The backend refused for rate or capacity (throttled, a busy model server) and the work did not
   * run: a retryable failure that gives its attempt back, so throttling does not spend the job's
   * attempts. Bounded: once a job has been throttled `DPO_CP_MAX_THROTTLED_RETRIES` times (default 20)
   * further throttled failures count as ordinary ones.
   */
  throttled: z.boolean().optional(),
});
export type FailureReport = z.infer<typeof FailureReport>;

/** One entry of a job's failure history. */
export const FailureRecord = z.object({
  attempt: z.number().int().nonnegative(),
  executor: z.string().nullable(),
  code: FailureCode,
  message: z.string(),
  retryable: z.boolean(),
  details: z.unknown().nullable(),
  timestamp: Timestamp,
  /** A throttled failure whose attempt was given back (see FailureReport.throttled). */
  throttled: z.boolean().optional(),
});
export type FailureRecord = z.infer<typeof FailureRecord>;

/**
 * Progress as the operator last reported it. `fraction` (0..1) and `message` are what the CLI shows;
 * executors may add fields (EMR state, dashboard links, rows scanned).
 */
export const Progress = z.looseObject({
  fraction: z.number().min(0).max(1).optional(),
  message: z.string().max(4096).optional(),
});
export type Progress = z.infer<typeof Progress>;

/** A checkpoint names durable external handles (EMR job run id, Snowflake query id, …). */
export const Checkpoint = JsonObject;
export type Checkpoint = z.infer<typeof Checkpoint>;

export const Lease = z.object({
  token: z.string().min(1),
  expires_at: Timestamp,
});
export type Lease = z.infer<typeof Lease>;

/** Who or what caused a job: a user through the API, or another job (internal follow-ups). */
export const RequestSource = z.union([
  z.looseObject({ type: z.literal('api_user'), token_name: z.string().optional() }),
  z.looseObject({ type: z.literal('job'), job_id: z.uuid(), job_type: z.string() }),
]);
export type RequestSource = z.infer<typeof RequestSource>;

/** Identifier of a data plane, e.g. `dp-local`, `dp-snowflake-123` or a uuid. */
export const DataPlaneId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, 'letters, digits and . _ : - only');

/** Identifier of one operator process (executor), e.g. `dpo-host-1234-ab12`. */
export const ExecutorId = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:@/-]*$/, 'letters, digits and . _ : @ / - only');

export const CompanyId = z.number().int().nonnegative();
export const JobTypeName = z.string().min(1).max(100);

export const Job = z.object({
  id: z.uuid(),
  type: JobTypeName,
  state: JobState,
  company_id: CompanyId,
  /** Null until claimed when the job was submitted for any data plane. */
  data_plane_id: DataPlaneId.nullable(),
  request_source: RequestSource,
  input: z.unknown(),
  result: z.unknown().nullable(),
  executor: z.string().nullable(),
  idempotency_key: z.string().nullable(),
  /** Claims that started an attempt; a claim increments it, a release gives it back. */
  attempt: z.number().int().nonnegative(),
  max_attempts: z.number().int().positive(),
  lease: Lease.nullable(),
  checkpoint: Checkpoint.nullable(),
  /**
   * Checkpoints a reschedule cleared while they named remote work that may still run: the next
   * holder stops that work first (and clears them) before it starts fresh. Empty otherwise; absent
   * from control planes older than this field.
   */
  stale_checkpoints: z.array(Checkpoint).default([]),
  progress: Progress.nullable(),
  failures: z.array(FailureRecord),
  cancellation_reason: z.string().nullable(),
  /** Earliest time the job can be claimed again after a retryable failure (null: at once). */
  not_before: Timestamp.nullable(),
  created_at: Timestamp,
  updated_at: Timestamp,
  started_at: Timestamp.nullable(),
  ended_at: Timestamp.nullable(),
});
export type Job = z.infer<typeof Job>;

export const LogLevel = z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
export type LogLevel = z.infer<typeof LogLevel>;

/** A log line as an operator sends it. */
export const LogLine = z.object({
  ts: Timestamp,
  level: LogLevel,
  msg: z.string().max(16_384),
});
export type LogLine = z.infer<typeof LogLine>;

/** A log line as the control plane stores and returns it. */
export const StoredLogLine = LogLine.extend({
  seq: z.number().int().positive(),
  attempt: z.number().int().nonnegative(),
  executor: z.string().nullable(),
});
export type StoredLogLine = z.infer<typeof StoredLogLine>;
