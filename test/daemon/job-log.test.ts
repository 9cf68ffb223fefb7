/**
 * `jobs logs` shows what happened to every job, whatever its executor: the daemon writes the start
 * (attempt, executor) and the outcome (with the failure code) into the job's own log.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { JobError } from '../../src/executor/index.ts';
import { clients, startTestControlPlane, type TestControlPlane, TRUNCATE, waitFor } from '../helpers.ts';
import { startTestDaemon, type TestDaemon } from '../support/daemon.ts';

let cp: TestControlPlane | undefined;
let d: TestDaemon | undefined;
afterEach(async () => {
  await d?.stop();
  await cp?.close();
  d = cp = undefined;
});

describe("the job's log", () => {
  it('holds the start and the outcome of a job whose executor logs nothing itself', async () => {
    cp = await startTestControlPlane();
    d = await startTestDaemon(cp, {
      executors: [
        {
          name: 'silent',
          jobTypes: [TRUNCATE],
          async execute(job) {
            if ((job.input as { dataset_id: number }).dataset_id === 2) {
              throw new JobError('SILENT_BROKEN', 'broken on purpose', { retryable: false });
            }
            return { type: TRUNCATE };
          },
        },
      ],
      pollWaitMs: 200,
    });
    const { submit, user } = clients(cp);
    const ok = await submit(TRUNCATE, { dataset_id: 1 });
    const bad = await submit(TRUNCATE, { dataset_id: 2 }, { max_attempts: 1 });
    const messages = async (id: string) => {
      const r = await user<{ lines: Array<{ msg: string }> }>('GET', `/v1/jobs/${id}/logs`);
      return (r.body.lines ?? []).map((l) => l.msg);
    };
    const okLog = await waitFor(async () => {
      const m = await messages(ok.id);
      return m.some((x) => x.startsWith('job completed')) ? m : undefined;
    });
    expect(okLog[0]).toBe('starting: attempt 1 of 3 on executor silent');
    expect(okLog.at(-1)).toMatch(/^job completed after \d+\.\d s$/);
    const badLog = await waitFor(async () => {
      const m = await messages(bad.id);
      return m.some((x) => x.startsWith('job fail')) ? m : undefined;
    });
    expect(badLog).toEqual(['starting: attempt 1 of 1 on executor silent', 'job fail: SILENT_BROKEN']);
  });
});
