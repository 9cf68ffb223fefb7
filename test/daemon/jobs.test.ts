import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Job } from '../../src/contract/index.ts';
import { clients, startTestControlPlane, type TestControlPlane, TRUNCATE, waitFor } from '../helpers.ts';
import { startTestDaemon, type TestDaemon } from '../support/daemon.ts';
import { Behaviour } from '../support/test-executor.ts';

let cp: TestControlPlane | undefined;
const daemons: TestDaemon[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop();
  await cp?.close();
  cp = undefined;
});

async function setup(cpOverrides: Parameters<typeof startTestControlPlane>[0] = {}) {
  cp = await startTestControlPlane(cpOverrides);
  const c = clients(cp);
  const d = await startTestDaemon(cp);
  daemons.push(d);
  const terminal = async (id: string, timeoutMs = 10_000) =>
    waitFor(
      async () => {
        const j = (await c.user<Job>('GET', `/v1/jobs/${id}/wait?timeout_ms=1000`)).body;
        return ['completed', 'failed', 'cancelled'].includes(j.state) ? j : undefined;
      },
      { timeoutMs, what: `job ${id} to end` },
    );
  return { c, d, terminal };
}

describe('the daemon runs jobs', () => {
  it('completes a job with its validated result', async () => {
    const { c, terminal } = await setup();
    const job = await c.submit(TRUNCATE, { dataset_id: Behaviour.complete });
    const done = await terminal(job.id);
    expect(done).toMatchObject({ state: 'completed', result: { type: TRUNCATE }, attempt: 1 });
  });

  it('retries a retryable failure and succeeds on the next attempt', async () => {
    const { c, terminal } = await setup({ retryBaseMs: 20 });
    const job = await c.submit(TRUNCATE, { dataset_id: Behaviour.flakyOnce });
    const done = await terminal(job.id);
    expect(done.state).toBe('completed');
    expect(done.attempt).toBe(2);
    expect(done.failures).toMatchObject([{ attempt: 1, code: 'FLAKY', retryable: true }]);
  });

  it('fails a job for good on a non-retryable failure, with code and details', async () => {
    const { c, terminal } = await setup();
    const job = await c.submit(TRUNCATE, { dataset_id: Behaviour.broken });
    const done = await terminal(job.id);
    expect(done.state).toBe('failed');
    expect(done.failures).toMatchObject([{ code: 'BROKEN', retryable: false, details: { hint: 'fix it' } }]);
  });

  it('never sends a result that fails its schema: INVALID_RESULT instead', async () => {
    const { c, terminal } = await setup();
    const job = await c.submit(TRUNCATE, { dataset_id: Behaviour.badResult });
    const done = await terminal(job.id);
    expect(done.state).toBe('failed');
    expect(done.result).toBeNull();
    expect(done.failures[0]).toMatchObject({ code: 'INVALID_RESULT', retryable: false });
  });

  it('coerces an unknown executor error into a retryable INTERNAL failure and keeps running', async () => {
    const { c, d, terminal } = await setup({ retryBaseMs: 10 });
    const job = await c.submit(TRUNCATE, { dataset_id: Behaviour.crash }, { max_attempts: 2 });
    const done = await terminal(job.id);
    expect(done.state).toBe('failed');
    expect(done.failures.map((f) => f.code)).toEqual(['INTERNAL', 'INTERNAL']);
    expect(done.failures[0]!.message).toContain('executor bug');
    expect(d.daemon.state).toBe('running');
    const next = await c.submit(TRUNCATE, { dataset_id: Behaviour.complete });
    expect((await terminal(next.id)).state).toBe('completed');
  });

  it('ships the executor’s log lines and progress to the control plane', async () => {
    const { c, terminal } = await setup();
    const job = await c.submit(TRUNCATE, { dataset_id: Behaviour.chatty });
    await terminal(job.id);
    const logs = await c.user('GET', `/v1/jobs/${job.id}/logs`);
    // The executor's lines, between the daemon's start and outcome lines (test/daemon/job-log.test.ts).
    expect(logs.body.lines.map((l: { level: string; msg: string }) => `${l.level}:${l.msg}`)).toEqual([
      'info:starting: attempt 1 of 3 on executor test',
      'info:step one',
      'warn:step two is slow',
      expect.stringMatching(/^info:job completed after \d+\.\d s$/),
    ]);
  });
});

describe('cancellation', () => {
  it('cancels a pending job without the daemon running it', async () => {
    const { c } = await setup();
    // A type the test executor does not serve stays pending.
    const job = await c.submit('datasets_sample', { dataset_id: 1 });
    const r = await c.user('POST', `/v1/jobs/${job.id}/cancel`);
    expect(r.body.outcome).toBe('cancelled');
  });

  it('aborts a running job’s signal with reason cancel and reports cancelled', async () => {
    const { c, d, terminal } = await setup();
    const job = await c.submit(TRUNCATE, { dataset_id: Behaviour.hold });
    await waitFor(() => existsSync(join(d.dir, `${job.id}.started`)), { what: 'the job to start' });
    const t0 = performance.now();
    await c.user('POST', `/v1/jobs/${job.id}/cancel`, { reason: 'test' });
    await waitFor(() => existsSync(join(d.dir, `${job.id}.aborted`)), { what: 'the abort' });
    const latency = performance.now() - t0;
    expect(JSON.parse(readFileSync(join(d.dir, `${job.id}.aborted`), 'utf8'))).toEqual({ reason: 'cancel' });
    const done = await terminal(job.id);
    expect(done).toMatchObject({ state: 'cancelled', cancellation_reason: 'test' });
    process.stdout.write(`cancel request → executor signal aborted: ${latency.toFixed(1)} ms\n`);
  });

  it('fails a job that runs past its type’s timeout with TIMEOUT', async () => {
    cp = await startTestControlPlane();
    const c = clients(cp);
    const d = await startTestDaemon(cp, { jobTimeoutsMs: { [TRUNCATE]: 150 } });
    daemons.push(d);
    const job = await c.submit(TRUNCATE, { dataset_id: Behaviour.hold });
    const done = await waitFor(async () => {
      const j = (await c.user<Job>('GET', `/v1/jobs/${job.id}`)).body;
      return j.state === 'failed' ? j : undefined;
    });
    expect(done.failures[0]).toMatchObject({ code: 'TIMEOUT', retryable: false });
    expect(JSON.parse(readFileSync(join(d.dir, `${job.id}.aborted`), 'utf8'))).toEqual({ reason: 'timeout' });
  });
});

describe('lost leases', () => {
  it('stops a rescheduled job locally without reporting, and a second daemon finishes it', async () => {
    const { c, d, terminal } = await setup();
    const job = await c.submit(TRUNCATE, { dataset_id: Behaviour.hold });
    await waitFor(() => existsSync(join(d.dir, `${job.id}.started`)));
    await c.user('POST', `/v1/jobs/${job.id}/reschedule`);
    await waitFor(() => existsSync(join(d.dir, `${job.id}.aborted`)), { what: 'the lost abort' });
    expect(JSON.parse(readFileSync(join(d.dir, `${job.id}.aborted`), 'utf8'))).toEqual({
      reason: 'rescheduled',
    });
    expect((await d.metrics.leasesLost.get()).values[0]?.value).toBe(1);
    // The first daemon goes away (releasing the job if it already claimed it again) …
    await daemons.shift()!.stop();
    // … and a second one, with its own work directory, finishes it.
    const second = await startTestDaemon(cp!);
    daemons.push(second);
    await waitFor(() => existsSync(join(second.dir, `${job.id}.started`)), {
      what: 'the second daemon to start it',
    });
    writeFileSync(join(second.dir, `${job.id}.release`), '');
    const done = await terminal(job.id);
    expect(done.state).toBe('completed');
    expect(done.failures).toEqual([]);
  });
});
