/**
 * One job, one execution, every cancel confirmed: the daemon under the faults that move leases
 * (reschedule, expiry, a peer's claim, a partition) and the paths a cancel takes when its holder
 * goes away. Lease expiry is driven by the control plane's clock and a long TTL (renewals every
 * 15 s), so nothing here depends on timing luck: what is asserted must happen within one poll, or
 * at the fence, long before a renewal could hide a bug.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Job } from '../../src/contract/index.ts';
import type { ControlPlane } from '../../src/daemon/control-plane.ts';
import { abortReasonOf, type Executor, JobError } from '../../src/executor/index.ts';
import { clients, startTestControlPlane, type TestControlPlane, TRUNCATE, waitFor } from '../helpers.ts';
import { startTestDaemon, type TestDaemon } from '../support/daemon.ts';
import { MemoryRemote, memoryRemoteExecutor } from '../support/memory-remote.ts';
import { Partition } from '../support/partition.ts';

let cp: TestControlPlane | undefined;
const daemons: TestDaemon[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop();
  await cp?.close();
  cp = undefined;
});

/** Every execution of every job: when it ran and why it stopped. */
interface Recorded {
  jobId: string;
  attempt: number;
  by: string;
  start: number;
  end?: number;
  reason?: string;
}

function recording(inner: Executor, by: string, log: Recorded[]): Executor {
  return {
    ...inner,
    async execute(job, ctx) {
      const r: Recorded = { jobId: job.id, attempt: job.attempt, by, start: performance.now() };
      log.push(r);
      try {
        return await inner.execute(job, ctx);
      } finally {
        r.end = performance.now();
        r.reason = abortReasonOf(ctx.leaseSignal) ?? abortReasonOf(ctx.signal) ?? 'returned';
      }
    },
  };
}

/** Most executions of one job running at the same moment. */
function maxOverlap(log: Recorded[], jobId: string): number {
  const edges = log
    .filter((r) => r.jobId === jobId)
    .flatMap((r) => [
      { t: r.start, d: 1 },
      { t: r.end ?? Number.POSITIVE_INFINITY, d: -1 },
    ])
    .sort((a, b) => a.t - b.t || a.d - b.d);
  let now = 0;
  let max = 0;
  for (const e of edges) {
    now += e.d;
    max = Math.max(max, now);
  }
  return max;
}

async function setup(opts: { leaseTtlMs?: number; frozenClock?: boolean; realClock?: boolean } = {}) {
  let clock = Date.now();
  cp = await startTestControlPlane({
    leaseTtlMs: opts.leaseTtlMs ?? 60_000,
    ...(opts.realClock ? {} : { now: () => clock }),
  });
  const target = cp;
  const c = clients(target);
  const remote = new MemoryRemote();
  const log: Recorded[] = [];
  const daemon = async (
    name: string,
    extra: { concurrency?: number; partitioned?: boolean; executor?: Executor } = {},
  ) => {
    let partition: Partition | undefined;
    const executor = recording(extra.executor ?? memoryRemoteExecutor(remote, name), name, log);
    const d = await startTestDaemon(target, {
      executors: [executor],
      operatorId: name,
      // A partitioned daemon is full while it holds its one job, so a poll it parked at the control
      // plane before the cut (which the control plane may still answer) claims nothing for it.
      concurrency: extra.concurrency ?? (extra.partitioned ? 1 : 4),
      ...(extra.partitioned
        ? {
            wrapControlPlane: (inner: ControlPlane) => {
              partition = new Partition(inner);
              return partition;
            },
          }
        : {}),
    });
    daemons.push(d);
    return { d, partition };
  };
  const get = async (id: string) => (await c.user<Job>('GET', `/v1/jobs/${id}`)).body;
  return {
    /** The job's run was submitted and its handle checkpointed. */
    started: (id: string) =>
      waitFor(async () => (await get(id)).checkpoint?.run !== undefined, { what: `job ${id}'s run` }),
    c,
    remote,
    log,
    daemon,
    get,
    /** Moves the control plane's clock past every lease and lets it expire them. */
    expireLeases: () => {
      clock += (opts.leaseTtlMs ?? 60_000) + 1;
      target.store.expireLeases();
    },
    advance: (ms: number) => {
      if (!opts.frozenClock) clock += ms;
    },
  };
}

const runningOf = (remote: MemoryRemote, jobId: string) =>
  remote.runsOf(jobId).filter((r) => r.state === 'RUNNING');

describe('one execution per job, lease loss seen within one poll', () => {
  it('a reschedule between renewals aborts the old execution (rescheduled), which stops its run, before the job runs again here', async () => {
    const s = await setup();
    await s.daemon('op-a');
    const job = await s.c.submit(TRUNCATE, { dataset_id: 1 });
    await waitFor(() => s.remote.runsOf(job.id).length === 1 && s.log.length === 1, {
      what: 'the first run',
    });
    await s.c.user('POST', `/v1/jobs/${job.id}/reschedule`);
    // The daemon claims the job back (a fresh start: a new run) only after the old one settled.
    await waitFor(() => s.remote.runsOf(job.id).length === 2, { what: 'the second run', timeoutMs: 5_000 });
    const [first, second] = s.log.filter((r) => r.jobId === job.id);
    expect(first?.reason).toBe('rescheduled');
    expect(first?.end).toBeLessThanOrEqual(second!.start);
    expect(maxOverlap(s.log, job.id)).toBe(1);
    // A reschedule starts fresh, so nobody would reattach to the first run: the old execution
    // stopped it, confirmed, before it settled (and so before the second run was created).
    const [run1, run2] = s.remote.runsOf(job.id);
    expect(run1!.state).toBe('CANCELLED');
    const cancelledAt = s.remote.journal.find((e) => e.op === 'cancel' && e.run === run1!.id)?.at;
    const createdAt = s.remote.journal.find((e) => e.op === 'create' && e.run === run2!.id)?.at;
    expect(cancelledAt).toBeDefined();
    expect(cancelledAt!).toBeLessThanOrEqual(createdAt!);
    expect(s.remote.journal.filter((e) => e.op === 'cancel' && e.run === run2!.id)).toEqual([]);
  });

  it('an expiry the holder did not see is answered lost, and the re-claim reattaches only after the old stopped', async () => {
    const s = await setup();
    await s.daemon('op-a');
    const job = await s.c.submit(TRUNCATE, { dataset_id: 1 });
    await waitFor(() => s.log.length === 1 && s.remote.runsOf(job.id).length === 1, { what: 'the run' });
    s.expireLeases();
    await waitFor(() => s.log.length === 2, { what: 'the re-claim', timeoutMs: 5_000 });
    const [first, second] = s.log;
    expect(first?.reason).toBe('lost');
    expect(second?.attempt).toBe(2);
    expect(first?.end).toBeLessThanOrEqual(second!.start);
    // The new execution reattached to the same run (checkpoint kept), never submitted again.
    expect(s.remote.runsOf(job.id)).toHaveLength(1);
    expect(maxOverlap(s.log, job.id)).toBe(1);
  });

  it('a peer’s claim after an expiry stops the old holder within one poll', async () => {
    const s = await setup();
    // Full: the holder cannot claim the job back, so the peer does.
    await s.daemon('op-a', { concurrency: 1 });
    const job = await s.c.submit(TRUNCATE, { dataset_id: 1 });
    await waitFor(() => s.remote.runsOf(job.id).length === 1, { what: 'the run' });
    s.expireLeases();
    const peer = await s.c.poll({ executor: 'op-peer', capacity: 1 });
    expect(peer.body.claimed.map((j) => j.id)).toEqual([job.id]);
    await waitFor(() => s.log[0]?.reason === 'lost', { what: 'the old holder to stop', timeoutMs: 5_000 });
    const now = await s.get(job.id);
    expect(now).toMatchObject({ state: 'running', executor: 'op-peer', attempt: 2 });
  });

  it('a partitioned holder fences itself before its lease can move', async () => {
    const s = await setup({ leaseTtlMs: 1_200, frozenClock: true });
    const { partition } = await s.daemon('op-a', { partitioned: true });
    const job = await s.c.submit(TRUNCATE, { dataset_id: 1 });
    await s.started(job.id);
    const held = await s.get(job.id);
    partition!.cutNow();
    const cutAt = performance.now();
    await waitFor(() => s.log[0]?.end !== undefined, { what: 'the fence', timeoutMs: 5_000 });
    process.stdout.write(
      `partitioned holder fenced itself after ${(s.log[0]!.end! - cutAt).toFixed(0)} ms (TTL 1200 ms)\n`,
    );
    expect(s.log[0]!.reason).toBe('lost');
    // The control plane (its clock stopped) still gives the lease to this holder: the fence came first.
    const now = await s.get(job.id);
    expect(now).toMatchObject({ state: 'running', executor: 'op-a', lease: { token: held.lease!.token } });
    // Lost is not cancel: the remote work runs on for the next holder.
    expect(runningOf(s.remote, job.id)).toHaveLength(1);
  });
});

describe('a cancel is confirmed downstream, whatever happens to the holder', () => {
  it('a cancel whose holder vanished stays pending_cancellation until another operator stops the run', async () => {
    const s = await setup();
    const { partition } = await s.daemon('op-a', { partitioned: true });
    const job = await s.c.submit(TRUNCATE, { dataset_id: 1 });
    await s.started(job.id);
    partition!.cutNow();
    await s.c.user('POST', `/v1/jobs/${job.id}/cancel`, { reason: 'stop it' });
    s.expireLeases();
    expect(await s.get(job.id)).toMatchObject({ state: 'pending_cancellation', lease: null });
    expect(runningOf(s.remote, job.id)).toHaveLength(1);
    await s.daemon('op-b');
    const done = await waitFor(
      async () => {
        const j = await s.get(job.id);
        return j.state === 'cancelled' ? j : undefined;
      },
      { what: 'the cancel to be confirmed' },
    );
    expect(done.cancellation_reason).toBe('stop it');
    expect(s.remote.runsOf(job.id).map((r) => r.state)).toEqual(['CANCELLED']);
    expect(s.remote.journal.filter((e) => e.op === 'cancel').map((e) => e.by)).toEqual(['op-b']);
  });

  it('a job released with live remote work and then cancelled is stopped by the next operator', async () => {
    const s = await setup();
    const { d } = await s.daemon('op-a');
    const job = await s.c.submit(TRUNCATE, { dataset_id: 1 });
    await s.started(job.id);
    await d.daemon.drain(50); // the run does not end by itself: released with its checkpoint
    expect(await s.get(job.id)).toMatchObject({ state: 'pending', checkpoint: { run: 'run-1' } });
    const r = await s.c.user('POST', `/v1/jobs/${job.id}/cancel`);
    expect(r.body.outcome).toBe('cancellation_requested');
    expect(runningOf(s.remote, job.id)).toHaveLength(1);
    await s.daemon('op-b');
    await waitFor(async () => (await s.get(job.id)).state === 'cancelled', { what: 'cancelled' });
    expect(s.remote.runsOf(job.id).map((r) => r.state)).toEqual(['CANCELLED']);
  });

  it('a holder that must let go mid-cancel releases the job still pending_cancellation; the next one confirms', async () => {
    const s = await setup();
    const { d } = await s.daemon('op-a');
    const job = await s.c.submit(TRUNCATE, { dataset_id: 1 });
    await s.started(job.id);
    const run = s.remote.runsOf(job.id)[0]!;
    run.cancellingPolls = Number.POSITIVE_INFINITY; // the service never confirms while op-a waits
    await s.c.user('POST', `/v1/jobs/${job.id}/cancel`);
    await waitFor(() => run.state === 'CANCELLING', { what: 'the cancel request' });
    await d.daemon.drain(50);
    expect(await s.get(job.id)).toMatchObject({ state: 'pending_cancellation', lease: null });
    run.cancellingPolls = 2;
    await s.daemon('op-b');
    await waitFor(async () => (await s.get(job.id)).state === 'cancelled', { what: 'cancelled' });
    expect(run.state).toBe('CANCELLED');
  });

  it('a pending job whose lease expired with live remote work is cancelled only through an operator', async () => {
    const s = await setup();
    const { partition } = await s.daemon('op-a', { partitioned: true });
    const job = await s.c.submit(TRUNCATE, { dataset_id: 1 });
    await s.started(job.id);
    partition!.cutNow();
    s.expireLeases();
    expect(await s.get(job.id)).toMatchObject({ state: 'pending', checkpoint: { run: 'run-1' } });
    const r = await s.c.user('POST', `/v1/jobs/${job.id}/cancel`);
    expect(r.body.outcome).toBe('cancellation_requested');
    await s.daemon('op-b');
    await waitFor(async () => (await s.get(job.id)).state === 'cancelled', { what: 'cancelled' });
    expect(s.remote.runsOf(job.id).map((r) => r.state)).toEqual(['CANCELLED']);
  });

  it('a last attempt whose lease expired with live remote work is stopped by another operator, then fails', async () => {
    const s = await setup();
    const { partition } = await s.daemon('op-a', { partitioned: true });
    const job = await s.c.submit(TRUNCATE, { dataset_id: 1 }, { max_attempts: 1 });
    await s.started(job.id);
    partition!.cutNow();
    s.expireLeases();
    expect(await s.get(job.id)).toMatchObject({
      state: 'pending_cancellation',
      checkpoint: { run: 'run-1' },
    });
    await s.daemon('op-b');
    const done = await waitFor(
      async () => {
        const j = await s.get(job.id);
        return j.state === 'failed' ? j : undefined;
      },
      { what: 'failed' },
    );
    expect(done.failures.map((f) => f.code)).toEqual(['LEASE_EXPIRED']);
    expect(s.remote.runsOf(job.id).map((r) => r.state)).toEqual(['CANCELLED']);
  });

  it('a rescheduled job whose holder is cut off has its old run stopped by the next holder before it starts afresh', async () => {
    const s = await setup();
    const { partition } = await s.daemon('op-a', { partitioned: true });
    const job = await s.c.submit(TRUNCATE, { dataset_id: 1 });
    await s.started(job.id);
    partition!.cutNow();
    await s.c.user('POST', `/v1/jobs/${job.id}/reschedule`);
    expect(await s.get(job.id)).toMatchObject({ state: 'pending', stale_checkpoints: [{ run: 'run-1' }] });
    await s.daemon('op-b');
    await waitFor(() => s.remote.runsOf(job.id).length === 2, { what: 'the fresh run' });
    const [old, fresh] = s.remote.runsOf(job.id);
    expect(old!.state).toBe('CANCELLED');
    const stoppedAt = s.remote.journal.find(
      (e) => e.op === 'cancel' && e.run === old!.id && e.by === 'op-b',
    )?.at;
    const createdAt = s.remote.journal.find((e) => e.op === 'create' && e.run === fresh!.id)?.at;
    expect(stoppedAt).toBeDefined();
    expect(stoppedAt!).toBeLessThanOrEqual(createdAt!);
    await waitFor(async () => (await s.get(job.id)).stale_checkpoints.length === 0, {
      what: 'the stale checkpoint cleared',
    });
  });

  it('an executor that cannot stop the work fails the job, which stays pending_cancellation for another try', async () => {
    const s = await setup({ realClock: true });
    const stops: Array<'failed' | 'stopped'> = [];
    const stubborn: Executor = {
      name: 'remote',
      jobTypes: [TRUNCATE],
      async execute(job, ctx) {
        if (ctx.checkpoint === null) await ctx.saveCheckpoint({ work: job.id });
        if (!ctx.signal.aborted) {
          await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
        }
        if (stops.length === 0) {
          stops.push('failed');
          throw new JobError('REMOTE_UNREACHABLE', 'cannot reach the service to stop the work', {
            retryable: true,
          });
        }
        stops.push('stopped');
        throw ctx.signal.reason;
      },
    };
    await s.daemon('op-a', { executor: stubborn });
    const job = await s.c.submit(TRUNCATE, { dataset_id: 1 });
    await waitFor(async () => (await s.get(job.id)).checkpoint !== null, { what: 'the checkpoint' });
    await s.c.user('POST', `/v1/jobs/${job.id}/cancel`);
    const done = await waitFor(
      async () => {
        const j = await s.get(job.id);
        return j.state === 'cancelled' ? j : undefined;
      },
      { what: 'the second try to confirm' },
    );
    expect(stops).toEqual(['failed', 'stopped']);
    expect(done.failures.map((f) => f.code)).toEqual(['REMOTE_UNREACHABLE']);
    // The second execution was a claim to cancel: same attempt.
    expect(s.log.map((r) => r.attempt)).toEqual([1, 1]);
  });

  it('a cancel is not reported while the service has not confirmed it', async () => {
    const s = await setup();
    await s.daemon('op-a');
    const job = await s.c.submit(TRUNCATE, { dataset_id: 1 });
    await s.started(job.id);
    s.remote.refuseCancels = 5; // throttled: the SDK would have given up long before
    await s.c.user('POST', `/v1/jobs/${job.id}/cancel`);
    await waitFor(() => s.remote.journal.filter((e) => e.op === 'cancel_refused').length === 5, {
      what: 'the refused cancels',
    });
    const done = await waitFor(
      async () => {
        const j = await s.get(job.id);
        return j.state === 'cancelled' ? j : undefined;
      },
      { what: 'cancelled' },
    );
    expect(done.state).toBe('cancelled');
    expect(s.remote.runsOf(job.id).map((r) => r.state)).toEqual(['CANCELLED']);
  });
});
