/**
 * The executor interface: everything an executor module may depend on (with `src/lib/` helpers).
 * Executors never import the daemon; the daemon builds a registry of them once at startup.
 */
import type { z } from 'zod';
import type { InputOf, JobType } from '../catalogue/index.ts';
import type { Checkpoint, Progress } from '../contract/index.ts';

/** Why the daemon aborted a job's signal. */
export type AbortReason =
  /** The user asked to cancel: stop the underlying work (and confirm it stopped), then return. */
  | 'cancel'
  /** The lease is gone (expired, claimed by a peer): stop locally, leave remote work running, return. */
  | 'lost'
  /**
   * The job was rescheduled: it starts fresh, so nobody will reattach to the remote work this
   * execution started. Stop that work (bounded: the lease is gone, nothing can be written), then
   * return; nothing is reported.
   */
  | 'rescheduled'
  /** The daemon is shutting down: stop waiting, leave remote work running; the job is released. */
  | 'shutdown'
  /** The job ran past its type's timeout: stop the underlying work, then return. */
  | 'timeout';

/** The value of `signal.reason` when the daemon aborts a job. */
export class JobAbort extends Error {
  readonly reason: AbortReason;
  constructor(reason: AbortReason) {
    super(`job aborted: ${reason}`);
    this.name = 'JobAbort';
    this.reason = reason;
  }
}

/** The abort reason of a signal the daemon aborted, if any. */
export function abortReasonOf(signal: AbortSignal): AbortReason | undefined {
  return signal.aborted && signal.reason instanceof JobAbort ? signal.reason.reason : undefined;
}

/**
 * A failure that carries its retry decision. Executors throw these for anything they understand;
 * everything else is coerced by the daemon (unknown errors are retryable `INTERNAL`).
 * `retryAfterMs` asks the control plane to offer a retryable failure again no sooner than that (a
 * throttled backend asking to be retried later); it replaces the control plane's own backoff.
 * `throttled` says the backend refused for rate or capacity and nothing ran: the control plane gives
 * the attempt back (a bounded number of times), so throttling does not spend the job's attempts.
 */
export class JobError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly details: unknown;
  readonly retryAfterMs: number | undefined;
  readonly throttled: boolean;
  constructor(
    code: string,
    message: string,
    options: {
      retryable: boolean;
      details?: unknown;
      cause?: unknown;
      retryAfterMs?: number;
      throttled?: boolean;
    },
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'JobError';
    this.code = code;
    this.retryable = options.retryable;
    this.details = options.details;
    this.retryAfterMs = options.retryAfterMs;
    this.throttled = options.throttled === true;
  }
}

/** The part of a claimed job an executor sees. `input` has been validated against its type. */
export interface JobHandle<I = unknown> {
  /**
   * The same on every delivery and attempt of the job (a reschedule keeps it): the key of the job's
   * effect. An executor that writes records it (with a part, e.g. a chunk, when a job writes in
   * pieces) with the write itself, atomically, and answers a re-delivery from that record, or
   * passes it as the backend's idempotency key (docs/integrity.md, "Exactly-once effects").
   */
  readonly id: string;
  readonly type: string;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly companyId: number;
  readonly dataPlaneId: string;
  readonly input: I;
}

/** A structured logger for one job: lines go to the daemon's log and to the job's log. */
export interface JobLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface ExecuteContext {
  /** Aborted with a {@link JobAbort} reason; pass it to every external call. */
  readonly signal: AbortSignal;
  /**
   * Aborted (reason `lost` or `shutdown`) when this holder must let go of the job, even after
   * `signal` was aborted for a cancel or a timeout: it ends a cancel confirmation that can no longer
   * finish here (the next holder takes it over from the checkpoint).
   */
  readonly leaseSignal: AbortSignal;
  /**
   * When the job's timeout passes (epoch ms), counted from the job's first start (`started_at`), so
   * a re-claim does not restart the clock. Pass it on as the remote timeout (statement timeout,
   * maximum runtime, execution timeout); the daemon aborts `signal` with `timeout` when it passes.
   */
  readonly deadline: number;
  /**
   * The checkpoint the previous holder saved, or null on a fresh start. When present, reattach to
   * the external work it names (poll the existing run) instead of submitting again.
   */
  readonly checkpoint: Checkpoint | null;
  /**
   * Checkpoints that reschedules cleared while they named remote work that may still run (the job's
   * `stale_checkpoints`): stop that work before starting fresh, then call
   * {@link clearStaleCheckpoints}. Absent or empty when there is none.
   */
  readonly staleCheckpoints?: readonly Checkpoint[];
  /** Tells the control plane the work `staleCheckpoints` names is confirmed stopped. */
  clearStaleCheckpoints?(): Promise<void>;
  /** Durably records external handles; resolves once the control plane has stored them. */
  saveCheckpoint(checkpoint: Checkpoint): Promise<void>;
  /** Records progress; sent with the next lease renewal (cheap, call freely). */
  progress(progress: Progress): void;
  readonly log: JobLogger;
}

export interface Executor {
  /** The executor's name in config and metrics, e.g. `local`, `snowflake`. */
  readonly name: string;
  /** The job types it serves. */
  readonly jobTypes: readonly string[];
  /** Called once before the daemon claims anything (connect, warm up). */
  start?(): Promise<void>;
  /** Runs one job and resolves with its result (validated by the daemon against the type). */
  execute(job: JobHandle, ctx: ExecuteContext): Promise<unknown>;
  /** Called once when the daemon stops. */
  close?(): Promise<void>;
}

/** Runs one job type: its input is the type's validated input. */
export type JobHandler<I = never> = (job: JobHandle<I>, ctx: ExecuteContext) => Promise<unknown>;

/**
 * One handler per job type of `Types` (an executor's declared list, `executors/<name>/index.ts`),
 * each taking its type's input as the catalogue's schema outputs it. Write an executor's map as
 * `{ ... } satisfies JobHandlers<(typeof MY_JOB_TYPES)[number]>`: the compiler then refuses a
 * missing handler, a handler for a type not in the list, and a handler whose input does not match.
 */
export type JobHandlers<Types extends JobType = JobType> = {
  readonly [T in Types]: JobHandler<InputOf<T>>;
};

/** Runs `job` on its handler; a type without one fails, not retryably (the registry prevents it). */
export function runHandler<T extends JobType>(
  handlers: JobHandlers<T>,
  job: JobHandle,
  ctx: ExecuteContext,
): Promise<unknown> {
  const byType: Readonly<Record<string, JobHandler | undefined>> = handlers;
  const handler = Object.hasOwn(handlers, job.type) ? byType[job.type] : undefined;
  if (handler === undefined) {
    return Promise.reject(
      new JobError('UNKNOWN_JOB_TYPE', `this executor has no handler for '${job.type}'`, {
        retryable: false,
      }),
    );
  }
  return handler(job as JobHandle<never>, ctx);
}

/** What an executor module exports for the daemon to load it by path (`DPO_EXECUTORS`). */
export type ExecutorFactory = (
  env: Readonly<Record<string, string | undefined>>,
) => Executor | Promise<Executor>;

/**
 * What a built-in executor's folder exports (`executors/<name>/index.ts`) for the composition root:
 * its factory plus the description of its configuration, which `config check` and `config print`
 * read without starting anything.
 */
export interface ExecutorModule<Types extends JobType = JobType> {
  /** The name in DPO_EXECUTORS, e.g. `local`, `emr-serverless`. */
  readonly name: string;
  /** One line for humans (`config print`, docs). */
  readonly description: string;
  /**
   * The job types the executor serves, declared once, in its `index.ts` (its handler map is typed
   * from this list, and its instances report the same). The routing is derived from these lists.
   */
  readonly jobTypes: readonly Types[];
  /**
   * Every environment variable the executor reads, as a zod object whose keys are the variable
   * names (parse it with `parseEnvConfig` from `src/lib/config.ts`). Variables the AWS SDK reads on
   * its own (AWS_REGION, AWS_ENDPOINT_URL_*, …) belong here too when the executor relies on them.
   */
  readonly env: z.ZodObject;
  /** Names of variables in `env` whose values are secrets: `config print` redacts them. */
  readonly secretVars?: readonly string[];
  /**
   * Warnings `config check` prints for a valid configuration (a development-only setting, a secret
   * file not mounted here); errors are thrown by `createExecutor` as a ConfigError instead.
   */
  checkWarnings?(env: Readonly<Record<string, string | undefined>>): string[];
  readonly createExecutor: ExecutorFactory;
}
