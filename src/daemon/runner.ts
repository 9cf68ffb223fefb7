/**
 * The job runner: runs one claimed job on its executor and turns whatever happened into exactly one
 * outcome for the control plane (STYLE 3: the runner, not the executors, decides complete / fail /
 * cancelled / release). Input is validated before dispatch and the result after; nothing a job
 * carries can throw out of here.
 */
import { validateInput, validateResult } from '../catalogue/index.ts';
import type { FailureReport, Job } from '../contract/index.ts';
import { abortReasonOf, type ExecuteContext, type Executor, JobAbort, JobError } from '../executor/index.ts';

export type Outcome =
  | { kind: 'complete'; result: unknown }
  | { kind: 'fail'; failure: FailureReport }
  | { kind: 'cancelled' }
  | { kind: 'release'; reason: string }
  /** The lease is gone: report nothing. */
  | { kind: 'forget' };

/** Everything unknown becomes a failure with a code and a retry decision (STYLE 8). */
export function coerceError(err: unknown): FailureReport {
  if (err instanceof JobError) {
    return {
      code: /^[A-Z][A-Z0-9_]*$/.test(err.code) ? err.code : 'EXECUTOR_ERROR',
      message: truncate(err.message),
      retryable: err.retryable,
      ...(err.details === undefined ? {} : { details: safeDetails(err.details) }),
    };
  }
  if (err instanceof Error) {
    // An executor bug or an unexpected library error: worth one more try on a fresh attempt.
    return { code: 'INTERNAL', message: truncate(`${err.name}: ${err.message}`), retryable: true };
  }
  return { code: 'INTERNAL', message: truncate(`non-error thrown: ${String(err)}`), retryable: true };
}

function truncate(s: string, max = 4_000): string {
  return s.length > max ? `${s.slice(0, max)}… (${s.length - max} more characters)` : s;
}

/** Details must survive JSON; anything that does not is replaced by its string form. */
function safeDetails(details: unknown): unknown {
  try {
    const text = JSON.stringify(details);
    return text === undefined
      ? null
      : text.length > 16_384
        ? { truncated: text.slice(0, 16_384) }
        : JSON.parse(text);
  } catch {
    return { unserialisable: String(details) };
  }
}

export interface RunOptions {
  executor: Executor;
  /** Owned by the daemon, aborted with a JobAbort reason. */
  controller: AbortController;
  /** Per-type timeout; the runner aborts with `timeout` when it passes. */
  timeoutMs: number;
  context: Omit<ExecuteContext, 'signal' | 'checkpoint'>;
}

export async function runJob(job: Job, opts: RunOptions): Promise<Outcome> {
  const { controller } = opts;
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
  const timer = setTimeout(() => controller.abort(new JobAbort('timeout')), opts.timeoutMs);
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
      { ...opts.context, signal: controller.signal, checkpoint: job.checkpoint },
    );
    // The work finished; an abort that raced with it does not undo it, except a lost lease.
    if (abortReasonOf(controller.signal) === 'lost') return { kind: 'forget' };
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
    switch (abortReasonOf(controller.signal)) {
      case 'lost':
        return { kind: 'forget' };
      case 'cancel':
        return { kind: 'cancelled' };
      case 'shutdown':
        return { kind: 'release', reason: 'operator shutting down' };
      case 'timeout':
        return {
          kind: 'fail',
          failure: {
            code: 'TIMEOUT',
            message: `job exceeded its ${opts.timeoutMs} ms timeout`,
            retryable: false,
          },
        };
      default:
        return { kind: 'fail', failure: coerceError(err) };
    }
  } finally {
    clearTimeout(timer);
  }
}
