/**
 * The benchmark's executor, loaded by path into a daemon child process. It serves
 * `datasets_truncate_table` and does nothing, measuring as it goes:
 * - `dataset_id: 0`: return at once; the result carries `started_at_ms` (hi-res epoch) so the
 *   benchmark computes pickup latency from the time it sent the submit.
 * - `dataset_id: 1`: hold until aborted; logs `aborted_at_ms` (hi-res epoch) for cancel latency,
 *   and appends it with the abort reason to BENCH_ABORT_LOG (reschedule and fencing latency).
 */
import { appendFileSync } from 'node:fs';
import type { Executor, ExecutorFactory } from '../src/executor/index.ts';

const nowMs = () => performance.timeOrigin + performance.now();
/** When set, every abort is appended here as `<job id> <reason> <epoch ms>`. */
const ABORT_LOG = process.env.BENCH_ABORT_LOG;

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
            const at = nowMs();
            ctx.log.info(`aborted_at_ms=${at}`);
            // A lost lease cannot ship log lines any more: abort times also go to a file.
            const reason = (ctx.signal.reason as { reason?: string } | undefined)?.reason ?? 'unknown';
            if (ABORT_LOG) appendFileSync(ABORT_LOG, `${job.id} ${reason} ${at}\n`);
            reject(ctx.signal.reason);
          },
          { once: true },
        );
      });
    }
    return { type: 'datasets_truncate_table', started_at_ms: startedAt };
  },
});
