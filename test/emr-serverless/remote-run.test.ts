/**
 * The EMR executor on the remote-run protocol, driven directly with the executor test kit through
 * the real AWS SDK against the fakes: a cancel is reported only once EMR says the run ended (asked
 * again when it lingers, retried when CancelJobRun is throttled, for as long as the lease is held),
 * a new holder's cancel stops the run it reattaches to, and the submission carries the job's
 * deadline as EMR's execution timeout.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { clientToken, EmrCheckpoint } from '../../executors/emr-serverless/executor.ts';
import { JobAbort } from '../../src/executor/index.ts';
import { createTestContext, testJob } from '../../src/executor/testing.ts';
import type { FakeRun } from '../fakes/emr-serverless.ts';
import { waitFor } from '../helpers.ts';
import { type EmrFakes, fixture, startEmrFakes } from './support.ts';

let f: EmrFakes | undefined;
afterEach(async () => {
  await f?.stop();
  f = undefined;
});

/** A promise whose settling the test can observe without awaiting it. */
function track<T>(promise: Promise<T>) {
  const t = { settled: false, promise };
  promise.then(
    () => {
      t.settled = true;
    },
    () => {
      t.settled = true;
    },
  );
  return t;
}

const aborted = (reason: string) => ({ name: 'JobAbort', reason });

/** Starts a `costs` job and waits until its run is RUNNING and checkpointed. */
async function running(fakes: EmrFakes, t = createTestContext()) {
  const job = testJob('costs', fixture('costs.input'));
  const exec = track(fakes.executor.execute(job, t.ctx));
  const run = await waitFor(() => fakes.emr.runs.values().next().value, { what: 'the job run' });
  fakes.emr.setState(run.id, 'RUNNING');
  await waitFor(() => t.checkpoint?.job_run_id === run.id, { what: 'the checkpointed run id' });
  return { job, t, exec, run };
}

/** A holder that submitted the run and lost its lease: the run keeps going, the checkpoint names it. */
async function leftRunning(fakes: EmrFakes) {
  const { job, t, exec, run } = await running(fakes);
  t.abort('lost');
  await expect(exec.promise).rejects.toMatchObject(aborted('lost'));
  expect(run.state).toBe('RUNNING');
  return { job, run, checkpoint: t.checkpoint };
}

describe('a cancel is reported only once the run ended', () => {
  it('(a) a run still CANCELLING after DPO_EMR_CANCEL_WAIT_MS is asked again; no return before CANCELLED', async () => {
    f = await startEmrFakes({ mode: 'manual' }, { DPO_EMR_CANCEL_WAIT_MS: '150' });
    const fakes = f;
    const { t, exec, run } = await running(fakes);
    t.abort('cancel');
    await waitFor(() => run.cancels.length >= 2, { what: 'CancelJobRun asked again' });
    expect(run.state).toBe('CANCELLING');
    expect(run.cancels.every((g) => g === 30)).toBe(true);
    expect(exec.settled).toBe(false);
    fakes.emr.setState(run.id, 'CANCELLED');
    await expect(exec.promise).rejects.toBeInstanceOf(JobAbort);
    await expect(exec.promise).rejects.toMatchObject(aborted('cancel'));
    expect(fakes.emr.runs.size).toBe(1);
  });

  it('(b) CancelJobRun throttled beyond the SDK’s attempts is retried with backoff until the run ended', async () => {
    f = await startEmrFakes({ mode: 'manual' });
    const fakes = f;
    const { t, exec, run } = await running(fakes);
    // DPO_EMR_MAX_ATTEMPTS is 3: two whole calls fail, the third call's first attempt gets through.
    fakes.emr.failNext(
      'CancelJobRun',
      { status: 429, type: 'ThrottlingException', message: 'Rate exceeded' },
      6,
    );
    t.abort('cancel');
    await waitFor(() => run.cancels.length === 1, {
      what: 'a CancelJobRun that got through',
      timeoutMs: 20_000,
    });
    expect(fakes.emr.calls.CancelJobRun).toBe(7);
    expect(run.state).toBe('CANCELLING');
    expect(t.lines.some((l) => l.level === 'warn' && /could not confirm/.test(l.msg))).toBe(true);
    // Polled while CANCELLING: still not reported.
    const polls = fakes.emr.calls.GetJobRun;
    await waitFor(() => fakes.emr.calls.GetJobRun >= polls + 2, { what: 'polls while cancelling' });
    expect(exec.settled).toBe(false);
    fakes.emr.setState(run.id, 'CANCELLED');
    await expect(exec.promise).rejects.toMatchObject(aborted('cancel'));
  });

  it('(b) a lease lost while CancelJobRun is throttled ends the confirmation: rethrown, the run left alone', async () => {
    f = await startEmrFakes({ mode: 'manual' });
    const fakes = f;
    const { t, exec, run } = await running(fakes);
    fakes.emr.failNext('CancelJobRun', { status: 429, type: 'ThrottlingException' }, 1_000);
    t.abort('cancel');
    await waitFor(() => fakes.emr.calls.CancelJobRun > 3, {
      what: 'CancelJobRun retried past one SDK call',
      timeoutMs: 20_000,
    });
    expect(exec.settled).toBe(false);
    t.abort('lost');
    await expect(exec.promise).rejects.toMatchObject(aborted('lost'));
    expect(run.cancels).toEqual([]);
    expect(run.state).toBe('RUNNING');
    // The next holder finishes the cancel from the checkpoint.
    expect(t.checkpoint).toMatchObject({ job_run_id: run.id });
  });
});

describe('a new holder’s cancel stops the run it reattaches to', () => {
  it('(c) a cancel claim (aborted before execute) on a checkpoint naming a running run cancels it and confirms', async () => {
    f = await startEmrFakes({ mode: 'manual', autoCancel: true });
    const fakes = f;
    const { job, run, checkpoint } = await leftRunning(fakes);
    const t = createTestContext({ checkpoint });
    t.abort('cancel');
    await expect(fakes.executor.execute(job, t.ctx)).rejects.toMatchObject(aborted('cancel'));
    expect(run.cancels).toEqual([30]);
    expect(run.state).toBe('CANCELLED');
    expect(fakes.emr.calls.StartJobRun).toBe(1);
    expect(t.checkpoints).toEqual([]);
  });

  it('(c) a cancel that arrives while the reattaching holder’s first GetJobRun is in flight cancels and confirms', async () => {
    let onGetJobRun: (() => void) | undefined;
    f = await startEmrFakes({
      mode: 'manual',
      autoCancel: true,
      beforeAnswer: (op) => {
        if (op !== 'GetJobRun' || onGetJobRun === undefined) return;
        const act = onGetJobRun;
        onGetJobRun = undefined;
        act();
      },
    });
    const fakes = f;
    const { job, run, checkpoint } = await leftRunning(fakes);
    const t = createTestContext({ checkpoint });
    const pollsBefore = fakes.emr.calls.GetJobRun;
    onGetJobRun = () => t.abort('cancel');
    await expect(fakes.executor.execute(job, t.ctx)).rejects.toMatchObject(aborted('cancel'));
    expect(onGetJobRun).toBeUndefined();
    expect(fakes.emr.calls.GetJobRun).toBeGreaterThan(pollsBefore + 1);
    expect(run.cancels).toEqual([30]);
    expect(run.state).toBe('CANCELLED');
    expect(fakes.emr.calls.StartJobRun).toBe(1);
  });

  it('a cancel claim on a checkpoint naming a run that ended returns at once, without CancelJobRun', async () => {
    f = await startEmrFakes({ mode: 'manual' });
    const fakes = f;
    const { job, run, checkpoint } = await leftRunning(fakes);
    fakes.emr.setState(run.id, 'FAILED', 'Job failed, please check complete logs. ExitCode: 1.');
    const t = createTestContext({ checkpoint });
    t.abort('cancel');
    await expect(fakes.executor.execute(job, t.ctx)).rejects.toMatchObject(aborted('cancel'));
    expect(fakes.emr.calls.CancelJobRun).toBe(0);
    expect(fakes.emr.calls.StartJobRun).toBe(1);
    expect(run.state).toBe('FAILED');
    expect(t.checkpoints).toEqual([]);
  });
});

describe('submission and tracking', () => {
  it('sends the time left until ctx.deadline as executionTimeoutMinutes (at least one minute, at most the EMR cap)', async () => {
    f = await startEmrFakes({}, { DPO_EMR_TIMEOUTS_MS: 'costs=1800000' });
    const fakes = f;
    const runs = async (type: string, deadline: number): Promise<FakeRun> => {
      const job = testJob(type, fixture(`${type}.input`));
      const t = createTestContext({ deadline });
      await expect(fakes.executor.execute(job, t.ctx)).resolves.toEqual(fixture(`${type}.result`));
      // Intent before StartJobRun, the run id right after: the checkpoint's shape is the contract.
      expect(t.checkpoints).toHaveLength(2);
      const [intent, withRun] = t.checkpoints.map((c) => EmrCheckpoint.strict().parse(c));
      expect(intent).toEqual({ nonce: expect.stringMatching(/^[0-9a-f]{8}$/), submission: 1, attempt: 1 });
      const run = [...fakes.emr.runs.values()].find((r) => r.request.tags.dpo_job_id === job.id) as FakeRun;
      expect(withRun).toEqual({ ...intent, job_run_id: run.id });
      expect(run.clientToken).toBe(clientToken(job.id, intent?.nonce as string, 1));
      return run;
    };
    const now = Date.now();
    expect((await runs('datasets_sample', now + 90 * 60_000)).request.executionTimeoutMinutes).toBe(90);
    expect((await runs('datasets_sample', now + 5_000)).request.executionTimeoutMinutes).toBe(1);
    // DPO_EMR_TIMEOUTS_MS caps it.
    expect((await runs('costs', now + 90 * 60_000)).request.executionTimeoutMinutes).toBe(30);
  });

  it('reports EMR’s state as progress and asks for the dashboard link once per run', async () => {
    f = await startEmrFakes({ mode: 'manual' });
    const fakes = f;
    const { t, exec, run } = await running(fakes);
    const polls = fakes.emr.calls.GetJobRun;
    await waitFor(() => fakes.emr.calls.GetJobRun >= polls + 4, { what: 'polls while RUNNING' });
    fakes.emr.setState(run.id, 'SUCCESS');
    await expect(exec.promise).resolves.toEqual(fixture('costs.result'));
    expect(fakes.emr.calls.GetDashboardForJobRun).toBe(1);
    expect(t.progress.at(-2)).toMatchObject({
      message: 'EMR RUNNING',
      emr_state: 'RUNNING',
      job_run_id: run.id,
      dashboard_url: expect.stringMatching(/^https:\/\/p-/),
    });
    expect(t.progress.at(-1)).toMatchObject({ emr_state: 'SUCCESS', job_run_id: run.id });
  });
});
