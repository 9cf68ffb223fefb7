/**
 * A test executor whose work a test can hold and release, in this process or in a daemon started
 * as a child process. It serves `datasets_truncate_table` and `datasets_delete_table`; what a job
 * does is chosen by its `dataset_id`, and it talks to the test through files in a directory
 * (TEST_EXECUTOR_DIR): `<job id>.started` when a job starts (its JSON says attempt and checkpoint),
 * `<job id>.release` from the test lets a held job finish, `<job id>.aborted` records an abort.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Executor, type ExecutorFactory, JobError } from '../../src/executor/index.ts';

export const Behaviour = {
  /** Complete at once. */
  complete: 0,
  /** Save a checkpoint, then hold until released (or aborted). */
  hold: 1,
  /** Fail retryably on attempt 1; complete afterwards. */
  flakyOnce: 2,
  /** Fail, not retryably. */
  broken: 3,
  /** Return a result that does not match the type. */
  badResult: 4,
  /** Throw a plain error (an executor bug). */
  crash: 5,
  /** Log lines and progress, then complete. */
  chatty: 6,
} as const;

function waitForFileOrAbort(file: string, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (signal.aborted) {
        clearInterval(timer);
        reject(signal.reason);
      } else if (existsSync(file)) {
        clearInterval(timer);
        resolve();
      }
    };
    const timer = setInterval(check, 10);
    signal.addEventListener('abort', check, { once: true });
    check();
  });
}

export function createTestExecutor(dir: string): Executor {
  mkdirSync(dir, { recursive: true });
  return {
    name: 'test',
    jobTypes: ['datasets_truncate_table', 'datasets_delete_table'],
    async execute(job, ctx) {
      const type = job.type;
      const input = job.input as { dataset_id?: number };
      const behaviour = input.dataset_id ?? Behaviour.complete;
      const started = { attempt: job.attempt, checkpoint: ctx.checkpoint, pid: process.pid };
      const result = { type };
      switch (behaviour) {
        case Behaviour.complete:
          return result;
        case Behaviour.hold: {
          if (ctx.checkpoint === null) await ctx.saveCheckpoint({ run: `run-${job.id}-${job.attempt}` });
          writeFileSync(join(dir, `${job.id}.started`), JSON.stringify(started));
          ctx.progress({ fraction: 0.5, message: 'holding' });
          try {
            await waitForFileOrAbort(join(dir, `${job.id}.release`), ctx.signal);
          } catch (err) {
            writeFileSync(
              join(dir, `${job.id}.aborted`),
              JSON.stringify({ reason: (err as { reason?: string }).reason }),
            );
            throw err;
          }
          return result;
        }
        case Behaviour.flakyOnce:
          if (job.attempt === 1) throw new JobError('FLAKY', 'first attempt fails', { retryable: true });
          return result;
        case Behaviour.broken:
          throw new JobError('BROKEN', 'this job cannot succeed', {
            retryable: false,
            details: { hint: 'fix it' },
          });
        case Behaviour.badResult:
          return { type: 'not-this-type' };
        case Behaviour.crash:
          throw new TypeError('executor bug');
        case Behaviour.chatty:
          ctx.log.info('step one');
          ctx.progress({ fraction: 0.5 });
          ctx.log.warn('step two is slow', { rows: 10 });
          return result;
        default:
          throw new JobError('UNKNOWN_BEHAVIOUR', `no behaviour ${behaviour}`, { retryable: false });
      }
    },
  };
}

/** Loaded by path from a child-process daemon: `DPO_EXECUTORS=test/support/test-executor.ts`. */
export const createExecutor: ExecutorFactory = (env) => {
  const dir = env.TEST_EXECUTOR_DIR;
  if (!dir) throw new Error('TEST_EXECUTOR_DIR is required by the test executor');
  return createTestExecutor(dir);
};
