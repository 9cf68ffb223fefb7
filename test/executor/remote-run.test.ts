/**
 * The remote-run protocol (src/executor/remote-run.ts), driven directly with the executor test kit
 * against an in-process remote service that journals what really happened.
 */
import { describe, expect, it } from 'vitest';
import { JobAbort, JobError } from '../../src/executor/index.ts';
import { createTestContext, testJob } from '../../src/executor/testing.ts';
import { waitFor } from '../helpers.ts';
import { MemoryRemote, memoryRemoteExecutor } from '../support/memory-remote.ts';

const TYPE = 'datasets_truncate_table';
const setup = () => {
  const remote = new MemoryRemote();
  return { remote, executor: memoryRemoteExecutor(remote, 'op-1') };
};

describe('submitting', () => {
  it('checkpoints the intent before submitting and the handle right after, then returns the result', async () => {
    const { remote, executor } = setup();
    remote.pollsToFinish = 2;
    const t = createTestContext({
      onSaveCheckpoint: (cp) => {
        // The intent is saved while nothing exists remotely; the handle once the run does.
        expect(remote.runs.size).toBe(cp.run === undefined ? 0 : 1);
      },
    });
    const result = await executor.execute(testJob(TYPE, { dataset_id: 1 }), t.ctx);
    expect(result).toEqual({ type: TYPE });
    expect(t.checkpoints).toHaveLength(2);
    expect(t.checkpoints[0]).not.toHaveProperty('run');
    expect(t.checkpoints[1]).toMatchObject({ token: t.checkpoints[0]!.token, run: 'run-1' });
    expect(remote.journal.filter((e) => e.op === 'create')).toHaveLength(1);
  });

  it('reattaches to the run a checkpoint names and never submits again', async () => {
    const { remote, executor } = setup();
    const job = testJob(TYPE, { dataset_id: 1 });
    const run = remote.create(`${job.id}-x`, job.id, 'previous-holder');
    run.pollsToFinish = 2;
    const t = createTestContext({ checkpoint: { token: run.token, attempt: 1, run: run.id } });
    await executor.execute(job, t.ctx);
    expect(remote.journal.filter((e) => e.op.startsWith('create') && e.by === 'op-1')).toEqual([]);
    expect(t.checkpoints).toEqual([]);
  });

  it('resolves an intent saved without a handle by submitting the same token again (idempotent)', async () => {
    const { remote, executor } = setup();
    const job = testJob(TYPE, { dataset_id: 1 });
    // The previous holder died between StartRun and saving its handle.
    const run = remote.create(`${job.id}-crash`, job.id, 'dead-holder');
    run.pollsToFinish = 1;
    const t = createTestContext({ checkpoint: { token: run.token, attempt: 1 } });
    await executor.execute({ ...job, attempt: 2 }, t.ctx);
    expect(remote.runs.size).toBe(1);
    expect(remote.journal.map((e) => e.op)).toContain('create_dup');
    expect(t.checkpoint).toMatchObject({ token: run.token, run: run.id });
  });

  it('submits anew when the run of an earlier attempt ended badly', async () => {
    const { remote, executor } = setup();
    const job = testJob(TYPE, { dataset_id: 1 }, { attempt: 2 });
    const failed = remote.create(`${job.id}-a1`, job.id, 'holder-1');
    failed.state = 'FAILED';
    remote.pollsToFinish = 1;
    const t = createTestContext({ checkpoint: { token: failed.token, attempt: 1, run: failed.id } });
    await executor.execute(job, t.ctx);
    expect(remote.runs.size).toBe(2);
    expect(t.checkpoint).toMatchObject({ attempt: 2 });
    expect(t.checkpoint?.token).not.toBe(failed.token);
  });
});

describe('cancel and timeout are confirmed downstream', () => {
  it('cancels the run and returns only once the service says it ended', async () => {
    const { remote, executor } = setup();
    remote.cancellingPolls = 5;
    const t = createTestContext();
    const running = executor.execute(testJob(TYPE, { dataset_id: 1 }), t.ctx);
    await waitFor(() => remote.runs.size === 1 && t.checkpoints.length === 2);
    t.abort('cancel');
    await expect(running).rejects.toMatchObject({ reason: 'cancel' });
    expect([...remote.runs.values()][0]!.state).toBe('CANCELLED');
  });

  it('retries a refused (throttled) cancel with backoff instead of giving up', async () => {
    const { remote, executor } = setup();
    remote.refuseCancels = 3;
    const t = createTestContext();
    const running = executor.execute(testJob(TYPE, { dataset_id: 1 }), t.ctx);
    await waitFor(() => t.checkpoints.length === 2);
    t.abort('timeout');
    await expect(running).rejects.toBeInstanceOf(JobAbort);
    expect(remote.journal.filter((e) => e.op === 'cancel_refused')).toHaveLength(3);
    expect([...remote.runs.values()][0]!.state).toBe('CANCELLED');
  });

  it('keeps confirming while the service is unreachable, and lets go when the lease goes', async () => {
    const { remote, executor } = setup();
    const t = createTestContext();
    const running = executor.execute(testJob(TYPE, { dataset_id: 1 }), t.ctx);
    await waitFor(() => t.checkpoints.length === 2);
    remote.down = true;
    t.abort('cancel');
    await waitFor(() => t.lines.some((l) => l.msg.startsWith('could not confirm')));
    let settled = false;
    void running.catch(() => {
      settled = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    t.abort('shutdown');
    // The lease signal's reason: the daemon releases the job (still pending_cancellation).
    await expect(running).rejects.toMatchObject({ reason: 'shutdown' });
    // Left for the next holder: the run was never stopped.
    expect([...remote.runs.values()][0]!.state).toBe('RUNNING');
  });

  it('cancels the run a checkpoint names when the cancel arrives before the reattach polled it', async () => {
    const { remote, executor } = setup();
    const job = testJob(TYPE, { dataset_id: 1 });
    const run = remote.create(`${job.id}-x`, job.id, 'previous-holder');
    const t = createTestContext({ checkpoint: { token: run.token, attempt: 1, run: run.id } });
    t.abort('cancel'); // a claim to cancel: the signal is aborted before execute starts
    await expect(executor.execute(job, t.ctx)).rejects.toMatchObject({ reason: 'cancel' });
    expect(run.state).toBe('CANCELLED');
    expect(remote.journal.filter((e) => e.op === 'cancel')).toHaveLength(1);
  });

  it('asks nothing of a run that already failed when told to cancel it', async () => {
    const { remote, executor } = setup();
    const job = testJob(TYPE, { dataset_id: 1 });
    const run = remote.create(`${job.id}-x`, job.id, 'previous-holder');
    run.state = 'FAILED';
    const t = createTestContext({ checkpoint: { token: run.token, attempt: 1, run: run.id } });
    t.abort('cancel');
    await expect(executor.execute(job, t.ctx)).rejects.toMatchObject({ reason: 'cancel' });
    expect(remote.journal.filter((e) => e.op === 'cancel')).toEqual([]);
  });

  it('returns the result of a run that succeeded before the cancel could stop it', async () => {
    const { remote, executor } = setup();
    const job = testJob(TYPE, { dataset_id: 1 });
    const run = remote.create(`${job.id}-x`, job.id, 'previous-holder');
    run.state = 'SUCCEEDED';
    const t = createTestContext({ checkpoint: { token: run.token, attempt: 1, run: run.id } });
    t.abort('cancel');
    // Finished work is not undone: the daemon reports it complete.
    await expect(executor.execute(job, t.ctx)).resolves.toEqual({ type: TYPE });
    expect(remote.journal.filter((e) => e.op === 'cancel')).toEqual([]);
  });

  it('submits nothing for a fresh job cancelled before it started', async () => {
    const { remote, executor } = setup();
    const t = createTestContext();
    t.abort('cancel');
    await expect(executor.execute(testJob(TYPE, { dataset_id: 1 }), t.ctx)).rejects.toMatchObject({
      reason: 'cancel',
    });
    expect(remote.runs.size).toBe(0);
    expect(t.checkpoints).toEqual([]);
  });
});

describe('a failure that ends the job for good', () => {
  it('stops the run on the last attempt, and leaves it for the next attempt otherwise', async () => {
    for (const [attempt, expected] of [
      [3, 'CANCELLED'],
      [1, 'RUNNING'],
    ] as const) {
      const { remote, executor } = setup();
      const t = createTestContext();
      const running = executor.execute(testJob(TYPE, { dataset_id: 1 }, { attempt, maxAttempts: 3 }), t.ctx);
      await waitFor(() => t.checkpoints.length === 2);
      // The service answers polls with an error the executor does not retry past.
      const run = [...remote.runs.values()][0]!;
      const poll = remote.poll.bind(remote);
      let failed = false;
      remote.poll = (id, by) => {
        if (!failed) {
          failed = true;
          throw new JobError('REMOTE_UNAVAILABLE', 'the service is flaky', { retryable: true });
        }
        return poll(id, by);
      };
      await expect(running).rejects.toMatchObject({ code: 'REMOTE_UNAVAILABLE' });
      expect(run.state).toBe(expected);
    }
  });
});

describe('lost and shutdown leave the remote work alone', () => {
  for (const reason of ['lost', 'shutdown'] as const) {
    it(`on ${reason}: stops polling, never cancels`, async () => {
      const { remote, executor } = setup();
      const t = createTestContext();
      const running = executor.execute(testJob(TYPE, { dataset_id: 1 }), t.ctx);
      await waitFor(() => t.checkpoints.length === 2);
      t.abort(reason);
      await expect(running).rejects.toMatchObject({ reason });
      expect(remote.journal.filter((e) => e.op.startsWith('cancel'))).toEqual([]);
      expect([...remote.runs.values()][0]!.state).toBe('RUNNING');
    });
  }
});

describe('a throttled failure is never final', () => {
  it('leaves the run alone on the last attempt when the status read is throttled (the control plane gives the attempt back)', async () => {
    const { remote, executor } = setup();
    const t = createTestContext();
    const running = executor.execute(testJob(TYPE, { dataset_id: 1 }, { attempt: 1, maxAttempts: 1 }), t.ctx);
    await waitFor(() => t.checkpoints.length === 2);
    const run = [...remote.runs.values()][0]!;
    // One status read throttled after the SDK's own tries (issue 22's repro), then the service
    // answers again: a stop routine would now find the run and stop it.
    const poll = remote.poll.bind(remote);
    let throttled = false;
    remote.poll = (id, by) => {
      if (!throttled) {
        throttled = true;
        throw new JobError('REMOTE_THROTTLED', 'Rate exceeded', { retryable: true, throttled: true });
      }
      return poll(id, by);
    };
    await expect(running).rejects.toMatchObject({ code: 'REMOTE_THROTTLED', throttled: true });
    expect(run.state).toBe('RUNNING');
    expect(remote.journal.filter((e) => e.op.startsWith('cancel'))).toEqual([]);
  });
});

describe('stopping does not depend on reading the status', () => {
  it('sends the stop when the status read fails for good, and says the stop is unconfirmed, with the run, in the failure', async () => {
    const { remote, executor } = setup();
    const t = createTestContext();
    const running = executor.execute(testJob(TYPE, { dataset_id: 1 }), t.ctx);
    await waitFor(() => t.checkpoints.length === 2);
    const run = [...remote.runs.values()][0]!;
    remote.poll = () => {
      throw new JobError('REMOTE_ACCESS_DENIED', 'not authorized to describe', { retryable: false });
    };
    const err = await running.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(JobError);
    expect(err).toMatchObject({
      code: 'REMOTE_ACCESS_DENIED',
      retryable: false,
      details: { remote_work: 'unconfirmed', checkpoint: { run: run.id, token: run.token } },
    });
    // The stop was sent although no status could be read.
    expect(remote.journal.filter((e) => e.op === 'cancel' && e.run === run.id).length).toBeGreaterThan(0);
    expect(run.state).toBe('CANCELLED');
  });

  it('reports no unconfirmed stop when the status confirms it', async () => {
    const { remote, executor } = setup();
    const t = createTestContext();
    const running = executor.execute(testJob(TYPE, { dataset_id: 1 }), t.ctx);
    await waitFor(() => t.checkpoints.length === 2);
    const poll = remote.poll.bind(remote);
    let failed = false;
    remote.poll = (id, by) => {
      if (!failed) {
        failed = true;
        throw new JobError('REMOTE_BAD_INPUT', 'the run was refused', { retryable: false });
      }
      return poll(id, by);
    };
    const err = await running.then(
      () => undefined,
      (e: unknown) => e as JobError,
    );
    expect(err).toMatchObject({ code: 'REMOTE_BAD_INPUT' });
    expect(err?.details).toBeUndefined();
    expect([...remote.runs.values()][0]!.state).toBe('CANCELLED');
  });
});

describe('a reschedule leaves no remote work behind', () => {
  it('on rescheduled: stops the run this execution started and confirms it before settling', async () => {
    const { remote, executor } = setup();
    remote.cancellingPolls = 2;
    const t = createTestContext();
    const running = executor.execute(testJob(TYPE, { dataset_id: 1 }), t.ctx);
    await waitFor(() => t.checkpoints.length === 2);
    t.abort('rescheduled');
    await expect(running).rejects.toMatchObject({ reason: 'rescheduled' });
    // Settled only once the service said the run ended.
    expect([...remote.runs.values()][0]!.state).toBe('CANCELLED');
    // Nothing could be written: the lease is gone.
    expect(t.checkpoints).toHaveLength(2);
  });

  it('the next holder stops the work stale checkpoints name (by run, or by intent) before it submits afresh, then clears them', async () => {
    const { remote, executor } = setup();
    const job = testJob(TYPE, { dataset_id: 1 });
    const byRun = remote.create(`${job.id}-old1`, job.id, 'old-holder');
    const byIntent = remote.create(`${job.id}-old2`, job.id, 'old-holder');
    const t = createTestContext();
    let cleared = 0;
    const ctx = {
      ...t.ctx,
      staleCheckpoints: [
        { token: byRun.token, attempt: 1, run: byRun.id },
        // Saved before the old holder learned the run id: found by submitting the token again.
        { token: byIntent.token, attempt: 1 },
      ],
      clearStaleCheckpoints: async () => {
        expect(remote.runsOf(job.id).every((r) => r.state !== 'RUNNING')).toBe(true);
        cleared++;
      },
    };
    remote.pollsToFinish = 2;
    expect(await executor.execute(job, ctx)).toEqual({ type: TYPE });
    expect(cleared).toBe(1);
    expect(byRun.state).toBe('CANCELLED');
    expect(byIntent.state).toBe('CANCELLED');
    const fresh = remote.runsOf(job.id).filter((r) => r.id !== byRun.id && r.id !== byIntent.id);
    expect(fresh).toHaveLength(1);
    expect(fresh[0]!.state).toBe('SUCCEEDED');
    const createdFresh = remote.journal.find((e) => e.op === 'create' && e.run === fresh[0]!.id)!.at;
    for (const old of [byRun, byIntent]) {
      const cancelled = remote.journal.find((e) => e.op === 'cancel' && e.run === old.id)!.at;
      expect(cancelled).toBeLessThanOrEqual(createdFresh);
    }
  });

  it('a cancel of a job whose only remote work is stale stops that work and confirms the cancel', async () => {
    const { remote, executor } = setup();
    const job = testJob(TYPE, { dataset_id: 1 });
    const old = remote.create(`${job.id}-old`, job.id, 'old-holder');
    const t = createTestContext();
    t.abort('cancel');
    let cleared = 0;
    await expect(
      executor.execute(job, {
        ...t.ctx,
        staleCheckpoints: [{ token: old.token, attempt: 1, run: old.id }],
        clearStaleCheckpoints: async () => {
          cleared++;
        },
      }),
    ).rejects.toMatchObject({ reason: 'cancel' });
    expect(old.state).toBe('CANCELLED');
    expect(cleared).toBe(1);
    expect(remote.runsOf(job.id)).toHaveLength(1);
  });
});
