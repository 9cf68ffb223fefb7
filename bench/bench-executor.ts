/**
 * The benchmark's executor, loaded by path into a daemon child process. It serves
 * `datasets_truncate_table` and does nothing, measuring as it goes:
 * - `dataset_id: 0`: return at once; the result carries `started_at_ms` (hi-res epoch) so the
 *   benchmark computes pickup latency from the time it sent the submit.
 * - `dataset_id: 1`: hold until aborted; logs `aborted_at_ms` (hi-res epoch) for cancel latency.
 */
import type { Executor, ExecutorFactory } from '../src/executor/index.ts';

const nowMs = () => performance.timeOrigin + performance.now();

export const createExecutor: ExecutorFactory = (): Executor => ({
  name: 'bench',
  jobTypes: ['datasets_truncate_table'],
  async execute(job, ctx) {
    const startedAt = nowMs();
    const input = job.input as { dataset_id: number };
    if (input.dataset_id === 1) {
      await new Promise<void>((_, reject) => {
        ctx.signal.addEventListener(
          'abort',
          () => {
            ctx.log.info(`aborted_at_ms=${nowMs()}`);
            reject(ctx.signal.reason);
          },
          { once: true },
        );
      });
    }
    return { type: 'datasets_truncate_table', started_at_ms: startedAt };
  },
});
