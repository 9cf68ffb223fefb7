/**
 * Running one job: runs one claimed job on its executor and turns whatever happened into exactly one
 * outcome for the control plane. The daemon, not the executors, decides complete / fail / cancelled /
 * release, so every executor means the same by them. Input is validated before dispatch and the
 * result after; nothing a job carries can throw out of here.
 *
 * Why the job stopped decides the outcome: the lease signal first (`lost`: report nothing;
 * `shutdown`: release, checkpoint kept — even in the middle of a cancel confirmation, which the next
 * holder finishes), then the job signal (`cancel`: cancelled, which executors reach only once the
 * remote work is confirmed stopped, unless they throw a JobError saying they could not stop it;
 * `timeout`: a non-retryable TIMEOUT).
 */
import { validateInput, validateResult } from '../catalogue/index.ts';
import type { FailureReport, Job } from '../contract/index.ts';
import { abortReasonOf, type ExecuteContext, type Executor, JobError } from '../executor/index.ts';
import type { JobSignals } from '../executor/signals.ts';
import { redactSecrets } from '../lib/secrets.ts';

export type Outcome =
  | { kind: 'complete'; result: unknown }
  | { kind: 'fail'; failure: FailureReport }
  | { kind: 'cancelled' }
  | { kind: 'release'; reason: string }
  /** The lease is gone: report nothing. */
  | { kind: 'forget' };

/** Everything unknown becomes a failure with a code and a retry decision, in this one place. */
export function coerceError(err: unknown): FailureReport {
  if (err instanceof JobError) {
    return {
      code: /^[A-Z][A-Z0-9_]*$/.test(err.code) ? err.code : 'EXECUTOR_ERROR',
      message: truncate(err.message),
      retryable: err.retryable,
      ...(err.details === undefined ? {} : { details: safeDetails(err.details) }),
      ...(err.retryable && err.retryAfterMs !== undefined
        ? { retry_after_ms: Math.min(86_400_000, Math.max(0, Math.round(err.retryAfterMs))) }
        : {}),
      ...(err.retryable && err.throttled ? { throttled: true } : {}),
    };
  }
  if (err instanceof Error) {
    // An executor bug or an unexpected library error: worth one more try on a fresh attempt.
    return { code: 'INTERNAL', message: truncate(`${err.name}: ${err.message}`), retryable: true };
  }
  return { code: 'INTERNAL', message: truncate(`non-error thrown: ${String(err)}`), retryable: true };
}

/** Secrets redacted first (a cut must not leave half of one), then cut to `max`. */
function truncate(raw: string, max = 4_000): string {
  const s = redactSecrets(raw);
  return s.length > max ? `${s.slice(0, max)}… (${s.length - max} more characters)` : s;
}

/** Details must survive JSON; anything that does not is replaced by its string form. Secrets redacted. */
function safeDetails(details: unknown): unknown {
  try {
    const json = JSON.stringify(details);
    const text = json === undefined ? undefined : redactSecrets(json);
    return text === undefined
      ? null
      : text.length > 16_384
        ? { truncated: text.slice(0, 16_384) }
        : JSON.parse(text);
  } catch {
    return { unserialisable: redactSecrets(String(details)) };
  }
}

export interface RunOptions {
  executor: Executor;
  /** Owned by the daemon, aborted with a JobAbort reason. */
  signals: JobSignals;
  /**
   * Per-type timeout, counted from the job's first start (`started_at`), so a re-claim does not
   * restart the clock; the daemon aborts with `timeout` when it passes.
   */
  timeoutMs: number;
  context: Omit<ExecuteContext, 'signal' | 'leaseSignal' | 'checkpoint' | 'deadline'>;
  now?: () => number;
}

/** When the job's timeout passes (epoch ms): from its first start, or from now if it has none. */
export function deadlineOf(job: Job, timeoutMs: number, now: number): number {
  const started = job.started_at === null ? Number.NaN : Date.parse(job.started_at);
  return (Number.isFinite(started) ? started : now) + timeoutMs;
}

/** The outcome of a job that stopped because it was aborted, by why. */
export function abortedOutcome(signals: JobSignals, timeoutMs: number): Outcome | undefined {
  switch (abortReasonOf(signals.leaseSignal) ?? abortReasonOf(signals.signal)) {
    case 'lost':
    case 'rescheduled':
      return { kind: 'forget' };
    case 'shutdown':
      return { kind: 'release', reason: 'operator shutting down' };
    case 'cancel':
      return { kind: 'cancelled' };
    case 'timeout':
      return {
        kind: 'fail',
        failure: { code: 'TIMEOUT', message: `job exceeded its ${timeoutMs} ms timeout`, retryable: false },
      };
    default:
      return undefined;
  }
}

export async function runJob(job: Job, opts: RunOptions): Promise<Outcome> {
  const { signals } = opts;
  const input = validateInput(job.type, job.input);
  if (!input.ok) {
    return {
      kind: 'fail',
      failure: {
        code: 'INVALID_INPUT',
        message: `input does not match the schema of '${job.type}': ${input.issues
          .slice(0, 5)
          .map((i) => `${i.path || '(root)'}: ${i.message}`)
          .join('; ')}`,
        retryable: false,
        details: { issues: input.issues },
      },
    };
  }
  const now = (opts.now ?? Date.now)();
  const deadline = deadlineOf(job, opts.timeoutMs, now);
  // setTimeout fires at once beyond 2^31-1 ms; such a deadline is never reached anyway.
  const timer = setTimeout(
    () => signals.abort('timeout'),
    Math.min(Math.max(0, deadline - now), 2 ** 31 - 1),
  );
  timer.unref();
  try {
    const result = await opts.executor.execute(
      {
        id: job.id,
        type: job.type,
        attempt: job.attempt,
        maxAttempts: job.max_attempts,
        companyId: job.company_id,
        dataPlaneId: job.data_plane_id ?? '',
        input: input.value,
      },
      {
        ...opts.context,
        signal: signals.signal,
        leaseSignal: signals.leaseSignal,
        checkpoint: job.checkpoint,
        staleCheckpoints: job.stale_checkpoints,
        deadline,
      },
    );
    // The work finished; an abort that raced with it does not undo it, except a lost lease.
    const lostAs = abortReasonOf(signals.leaseSignal) ?? abortReasonOf(signals.signal);
    if (lostAs === 'lost' || lostAs === 'rescheduled') return { kind: 'forget' };
    const checked = validateResult(job.type, result);
    if (!checked.ok) {
      return {
        kind: 'fail',
        failure: {
          code: 'INVALID_RESULT',
          message: `the ${opts.executor.name} executor returned a result that does not match '${job.type}'`,
          retryable: false,
          details: { issues: checked.issues.slice(0, 20) },
        },
      };
    }
    return { kind: 'complete', result: checked.value };
  } catch (err) {
    // A JobError after a cancel is the executor saying it could NOT stop the work (its service is
    // unreachable, say): a failure, so the job stays pending_cancellation for another try, never
    // `cancelled` unconfirmed. Anything else thrown after a cancel is the abort taking effect.
    if (
      err instanceof JobError &&
      abortReasonOf(signals.signal) === 'cancel' &&
      abortReasonOf(signals.leaseSignal) === undefined
    ) {
      return { kind: 'fail', failure: coerceError(err) };
    }
    return abortedOutcome(signals, opts.timeoutMs) ?? { kind: 'fail', failure: coerceError(err) };
  } finally {
    clearTimeout(timer);
  }
}
