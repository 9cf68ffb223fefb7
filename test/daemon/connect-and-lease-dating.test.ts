/**
 * Connecting, and dating leases (issues 21, 22, 25):
 * - the first poll of a run asks for no wait, so an idle control plane answers it at once and the
 *   daemon is ready without waiting out a long poll;
 * - "daemon running" is logged only once the control plane has accepted the token;
 * - after an outage the daemon logs "reconnected after N failed polls (for T s)";
 * - a lease claimed at the end of a long parked poll is dated from when it was granted (the poll's
 *   send time plus the `parked_ms` the control plane answers), not from when the poll was sent: with
 *   a short TTL the daemon would otherwise fence its fresh claim at once. Driven on one manual clock
 *   shared by the store and the daemon.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { OperatorClient } from '../../src/client/operator-client.ts';
import type { PollRequest } from '../../src/contract/index.ts';
import type { ControlPlane } from '../../src/daemon/control-plane.ts';
import { abortReasonOf, type Executor } from '../../src/executor/index.ts';
import { clients, startTestControlPlane, type TestControlPlane, TRUNCATE, waitFor } from '../helpers.ts';
import { startTestDaemon, type TestDaemon } from '../support/daemon.ts';
import { Partition } from '../support/partition.ts';

let cp: TestControlPlane | undefined;
let d: TestDaemon | undefined;
afterEach(async () => {
  await d?.stop();
  await cp?.close();
  d = cp = undefined;
});

/** A pino logger whose lines the test reads. */
function capturedLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines, msgs: () => lines.map((l) => String(l.msg)) };
}

/** Records every poll request the daemon sends (and how many were answered). */
function recordPolls(inner: ControlPlane) {
  const sent: PollRequest[] = [];
  let answered = 0;
  const link: ControlPlane = {
    poll: async (req, opts) => {
      sent.push(req);
      const res = await inner.poll(req, opts);
      answered++;
      return res;
    },
    report: (req, opts) => inner.report(req, opts),
    checkpoint: (id, body, opts) => inner.checkpoint(id, body, opts),
    appendLogs: (req, opts) => inner.appendLogs(req, opts),
  };
  return { link, sent, answered: () => answered };
}

describe('connecting', () => {
  it('asks for no wait on its first poll, so it is running and ready at once against an idle control plane', async () => {
    cp = await startTestControlPlane();
    const log = capturedLogger();
    let polls: ReturnType<typeof recordPolls> | undefined;
    d = await startTestDaemon(cp, {
      pollWaitMs: 60_000,
      logger: log.logger,
      wrapControlPlane: (inner) => {
        polls = recordPolls(inner);
        return polls.link;
      },
    });
    // Well inside the 60 s long poll: a daemon whose first poll parks stays `starting`, unready.
    await waitFor(() => d!.daemon.state === 'running' && d!.daemon.lastPollAt > 0, {
      what: 'running and connected',
    });
    expect(polls!.sent[0]).toMatchObject({ wait_ms: 0 });
    // Then it parks as usual.
    await waitFor(() => polls!.sent.length >= 2, { what: 'the second poll' });
    expect(polls!.sent[1]).toMatchObject({ wait_ms: 60_000 });
    expect(log.msgs().filter((m) => m === 'daemon running')).toHaveLength(1);
  });

  it('logs "daemon running" only once the control plane accepted the token: never with a refused one', async () => {
    cp = await startTestControlPlane();
    const log = capturedLogger();
    const refused = new OperatorClient({ url: cp.url, token: 'not-a-token', retryBaseMs: 10 });
    d = await startTestDaemon(cp, { controlPlane: refused, logger: log.logger });
    const reason = await d.daemon.stopped;
    await refused.close();
    expect(reason.kind).toBe('fatal');
    expect(log.msgs()).not.toContain('daemon running');
    expect(log.lines.filter((l) => l.msg === 'daemon stopped')).toMatchObject([{ from: 'starting' }]);
  });

  it('stays starting while the control plane is unreachable, then logs one reconnected line with the failed polls and the outage', async () => {
    cp = await startTestControlPlane();
    const log = capturedLogger();
    let partition: Partition | undefined;
    d = await startTestDaemon(cp, {
      pollWaitMs: 200,
      logger: log.logger,
      wrapControlPlane: (inner) => {
        partition = new Partition(inner);
        partition.cutNow('reset');
        return partition;
      },
    });
    const failures = () => log.lines.filter((l) => l.msg === 'poll failed; retrying');
    await waitFor(() => failures().length >= 2, { what: 'two failed polls' });
    expect(d.daemon.state).toBe('starting');
    expect(log.msgs()).not.toContain('daemon running');
    partition!.heal();
    const line = await waitFor(() => log.lines.find((l) => String(l.msg).startsWith('reconnected after')), {
      what: 'the reconnected line',
    });
    const n = failures().length;
    expect(line.msg).toMatch(new RegExp(`^reconnected after ${n} failed polls \\(for \\d+\\.\\d s\\)$`));
    expect(line).toMatchObject({ failed_polls: n });
    expect(line.outage_ms as number).toBeGreaterThan(0);
    expect(d.daemon.state).toBe('running');
    // "running" comes after the control plane answered, so after the reconnection.
    const msgs = log.msgs();
    expect(msgs.indexOf('daemon running')).toBeGreaterThan(
      msgs.findIndex((m) => m.startsWith('reconnected')),
    );

    // A second outage is counted afresh.
    partition!.cutNow('reset');
    await waitFor(() => failures().length >= n + 1, { what: 'a failed poll in the second outage' });
    partition!.heal();
    await waitFor(() => log.lines.filter((l) => String(l.msg).startsWith('reconnected after')).length === 2, {
      what: 'the second reconnected line',
    });
    const second = log.lines.filter((l) => String(l.msg).startsWith('reconnected after'))[1]!;
    expect(second.failed_polls).toBe(failures().length - n);
  });
});

describe('a lease is dated from when it was granted', () => {
  it('does not fence a job claimed at the end of a 19 s parked poll with a 5 s TTL (issue 21: TTL 5 s, DPO_POLL_WAIT_MS=20000)', async () => {
    let clock = Date.now();
    cp = await startTestControlPlane({ now: () => clock, leaseTtlMs: 5_000 });
    let release: () => void = () => undefined;
    const released = new Promise<void>((r) => {
      release = r;
    });
    const aborts: string[] = [];
    let started = false;
    const holding: Executor = {
      name: 'holding',
      jobTypes: [TRUNCATE],
      async execute(_job, ctx) {
        started = true;
        await new Promise<void>((resolve) => {
          void released.then(resolve);
          ctx.signal.addEventListener('abort', () => {
            aborts.push(abortReasonOf(ctx.signal) ?? 'unknown');
            resolve();
          });
        });
        return { type: TRUNCATE };
      },
    };
    let polls: ReturnType<typeof recordPolls> | undefined;
    d = await startTestDaemon(cp, {
      executors: [holding],
      now: () => clock,
      pollWaitMs: 20_000,
      wrapControlPlane: (inner) => {
        polls = recordPolls(inner);
        return polls.link;
      },
    });
    // The first poll answered at once; the second parks for up to 20 s.
    await waitFor(() => polls!.sent.length >= 2 && cp!.parkedPolls() === 1, { what: 'a parked poll' });
    clock += 19_000;
    const c = clients(cp);
    const job = await c.submit(TRUNCATE, { dataset_id: 2101 });
    await waitFor(() => started, { what: 'the job to start' });
    // Let the daemon go round a few more polls (each bounded by its progress interval), which spans
    // several of its fence checks (every TTL/20 = 250 ms): a job dated from the send time would have
    // been fenced by now (19 s unrenewed against a 3.75 s fence).
    const after = polls!.answered();
    await waitFor(() => polls!.answered() >= after + 4, { what: 'four more polls', timeoutMs: 15_000 });
    expect(aborts).toEqual([]);
    release();
    const done = await waitFor(
      async () => {
        const j = (await c.user('GET', `/v1/jobs/${job.id}`)).body;
        return j.state === 'completed' ? j : undefined;
      },
      { what: 'completed' },
    );
    expect(done).toMatchObject({ attempt: 1, failures: [] });
  });
});
