/**
 * An in-process stand-in for a remote compute service, and an executor that drives it through the
 * remote-run protocol (`runRemote`). The service is idempotent by token and journals every create,
 * poll and cancel, so tests check what happened remotely, not what the executor says happened.
 * Faults are knobs: cancels that fail, runs that stay CANCELLING, polls that fail.
 */
import type { Checkpoint } from '../../src/contract/index.ts';
import { type Executor, JobError } from '../../src/executor/index.ts';
import { type Intent, runRemote } from '../../src/executor/remote-run.ts';

export type RunState = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLING' | 'CANCELLED';

export interface Run {
  id: string;
  token: string;
  jobId: string;
  state: RunState;
  /** Polls left before a RUNNING run succeeds (Infinity: never on its own). */
  pollsToFinish: number;
  /** Polls a CANCELLING run stays so before it is CANCELLED. */
  cancellingPolls: number;
}

export type JournalEntry = {
  at: number;
  op: 'create' | 'create_dup' | 'poll' | 'cancel' | 'cancel_refused';
  run: string;
  by: string;
  state?: RunState;
};

export class MemoryRemote {
  readonly runs = new Map<string, Run>();
  readonly journal: JournalEntry[] = [];
  /** Cancels to refuse (throttled) before one is accepted. */
  refuseCancels = 0;
  /** Polls a run stays CANCELLING after a cancel. */
  cancellingPolls = 0;
  /** Polls a new run takes to succeed (Infinity: until cancelled). */
  pollsToFinish = Number.POSITIVE_INFINITY;
  /** Fails every call while set (a partition between the operator and the service). */
  down = false;
  private seq = 0;

  private check(): void {
    if (this.down)
      throw new JobError('REMOTE_UNAVAILABLE', 'remote service unavailable', { retryable: true });
  }

  create(token: string, jobId: string, by: string): Run {
    this.check();
    const existing = [...this.runs.values()].find((r) => r.token === token);
    if (existing) {
      this.journal.push({ at: Date.now(), op: 'create_dup', run: existing.id, by });
      return existing;
    }
    const run: Run = {
      id: `run-${++this.seq}`,
      token,
      jobId,
      state: 'RUNNING',
      pollsToFinish: this.pollsToFinish,
      cancellingPolls: this.cancellingPolls,
    };
    this.runs.set(run.id, run);
    this.journal.push({ at: Date.now(), op: 'create', run: run.id, by });
    return run;
  }

  poll(id: string, by: string): Run {
    this.check();
    const run = this.runs.get(id);
    if (!run) throw new JobError('REMOTE_NOT_FOUND', `no run ${id}`, { retryable: false });
    if (run.state === 'RUNNING' && --run.pollsToFinish <= 0) run.state = 'SUCCEEDED';
    else if (run.state === 'CANCELLING' && run.cancellingPolls-- <= 0) run.state = 'CANCELLED';
    this.journal.push({ at: Date.now(), op: 'poll', run: id, by, state: run.state });
    return { ...run };
  }

  cancel(id: string, by: string): void {
    this.check();
    const run = this.runs.get(id);
    if (!run) throw new JobError('REMOTE_NOT_FOUND', `no run ${id}`, { retryable: false });
    if (this.refuseCancels > 0) {
      this.refuseCancels--;
      this.journal.push({ at: Date.now(), op: 'cancel_refused', run: id, by });
      throw new JobError('REMOTE_THROTTLED', 'too many requests', { retryable: true });
    }
    this.journal.push({ at: Date.now(), op: 'cancel', run: id, by });
    if (run.state === 'RUNNING') run.state = run.cancellingPolls > 0 ? 'CANCELLING' : 'CANCELLED';
  }

  /** Runs of one job. */
  runsOf(jobId: string): Run[] {
    return [...this.runs.values()].filter((r) => r.jobId === jobId);
  }
}

interface MemoryIntent extends Intent {
  token: string;
}

/**
 * An executor serving `datasets_truncate_table` on a {@link MemoryRemote}. `by` names the operator
 * in the journal (two daemons in one test process share one service).
 */
export function memoryRemoteExecutor(remote: MemoryRemote, by: string): Executor {
  return {
    name: 'remote',
    jobTypes: ['datasets_truncate_table'],
    async execute(job, ctx) {
      return runRemote<MemoryIntent, string, Run>(
        job,
        ctx,
        {
          what: 'remote run',
          read: (cp: Checkpoint) =>
            typeof cp.token === 'string' && typeof cp.attempt === 'number'
              ? {
                  intent: { token: cp.token, attempt: cp.attempt },
                  handle: typeof cp.run === 'string' ? cp.run : undefined,
                }
              : undefined,
          write: (intent, handle) => ({ ...intent, ...(handle ? { run: handle } : {}) }),
          newIntent: (attempt) => ({ token: `${job.id}-${crypto.randomUUID().slice(0, 8)}`, attempt }),
          submit: async (intent) => remote.create(intent.token, job.id, by).id,
          poll: async (id, signal) => {
            signal.throwIfAborted();
            return remote.poll(id, by);
          },
          phase: (run) =>
            run.state === 'SUCCEEDED'
              ? 'succeeded'
              : run.state === 'RUNNING' || run.state === 'CANCELLING'
                ? 'active'
                : 'ended',
          result: async () => ({ type: 'datasets_truncate_table' }),
          failure: async (id, run) =>
            new JobError('REMOTE_FAILED', `run ${id} ended ${run.state}`, { retryable: false }),
          cancel: async (id) => remote.cancel(id, by),
        },
        { pollMinMs: 5, pollMaxMs: 20, recancelAfterMs: 200 },
      );
    },
  };
}
