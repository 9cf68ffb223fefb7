/**
 * Group commit (issue 27): the polls and reports of one event-loop turn share one transaction, each
 * in its own savepoint. What must hold: one that throws is rolled back alone (its writes and its
 * events), the others commit and are answered after the commit; a poll that parks after its group
 * committed still sees the wake-ups emitted between its statements and its park.
 */
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { JobStore } from '../../src/control-plane/store.ts';
import { Waiters } from '../../src/control-plane/waiters.ts';
import { TRUNCATE, truncateInput } from '../helpers.ts';

const stores: JobStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

function newStore(): JobStore {
  const s = new JobStore({
    path: ':memory:',
    leaseTtlMs: 60_000,
    retryBaseMs: 10,
    retryMaxMs: 10,
    defaultMaxAttempts: 3,
  });
  stores.push(s);
  return s;
}

const submit = (s: JobStore, dataset: number) =>
  s.submit(
    { type: TRUNCATE, company_id: 7, data_plane_id: 'dp-g', input: truncateInput(dataset) },
    {
      type: 'api_user',
    },
  ).job;

/** A response stand-in for parkPoll: it only listens for 'close'. */
const fakeRes = () => ({ on() {}, off() {} }) as unknown as ServerResponse;

describe('group commit', () => {
  it('runs the calls of one turn together; one that throws is rolled back alone, the others commit', async () => {
    const s = newStore();
    const terminal: string[] = [];
    s.subscribe({ claimable() {}, holderAttention() {}, terminal: (id) => terminal.push(id) });
    const [a, b, c] = [submit(s, 1), submit(s, 2), submit(s, 3)];
    const claimed = s.poll({
      executor: 'e',
      dataPlaneId: 'dp-g',
      jobTypes: [TRUNCATE],
      capacity: 3,
      held: [],
    });
    const token = new Map(claimed.claimed.map((j) => [j.id, j.lease!.token]));
    const report = (id: string) =>
      s.grouped(() =>
        s.report('dp-g', [
          { id, lease_token: token.get(id)!, outcome: 'complete', result: { type: TRUNCATE } },
        ]),
      );
    const first = report(a.id);
    // Completes b, then throws: b's completion and its terminal event must be undone.
    const failing = s.grouped(() => {
      s.report('dp-g', [
        { id: b.id, lease_token: token.get(b.id)!, outcome: 'complete', result: { type: TRUNCATE } },
      ]);
      throw new Error('boom');
    });
    const third = report(c.id);
    // Nothing ran yet: the group flushes after this turn.
    expect(s.get(a.id).state).toBe('running');
    await expect(first).resolves.toEqual([{ status: 'ok' }]);
    await expect(failing).rejects.toThrow('boom');
    await expect(third).resolves.toEqual([{ status: 'ok' }]);
    expect(s.get(a.id).state).toBe('completed');
    expect(s.get(b.id).state).toBe('running');
    expect(s.get(c.id).state).toBe('completed');
    expect(terminal.sort()).toEqual([a.id, c.id].sort());
  });

  it('writes the event-log rows of a transaction together: seqs in order, as told to listeners; none of a rolled-back entry', async () => {
    const s = newStore();
    const told: Array<{ seq: number; job_id: string; kind: string }> = [];
    s.subscribe({
      claimable() {},
      holderAttention() {},
      terminal() {},
      changed: (e) => told.push({ seq: e.seq, job_id: e.job_id, kind: e.kind }),
    });
    const jobs = [submit(s, 21), submit(s, 22), submit(s, 23)];
    const claimed = s.poll({
      executor: 'e',
      dataPlaneId: 'dp-g',
      jobTypes: [TRUNCATE],
      capacity: 3,
      held: [],
    });
    const token = new Map(claimed.claimed.map((j) => [j.id, j.lease!.token]));
    const [a, b, c] = jobs.map((j) => j.id) as [string, string, string];
    const outcomes = await s.grouped(() =>
      s.report('dp-g', [
        { id: a, lease_token: token.get(a)!, outcome: 'complete', result: { type: TRUNCATE } },
        { id: b, lease_token: token.get(b)!, outcome: 'complete', result: { wrong: true } },
        { id: c, lease_token: token.get(c)!, outcome: 'complete', result: { type: TRUNCATE } },
      ]),
    );
    expect(outcomes.map((o) => o.status)).toEqual(['ok', 'invalid', 'ok']);
    const logged = s.events(0, 100).map((e) => ({ seq: e.seq, job_id: e.job_id, kind: e.kind }));
    expect(logged.map((e) => e.kind)).toEqual([
      'created',
      'created',
      'created',
      'claimed',
      'claimed',
      'claimed',
      'completed',
      'completed',
    ]);
    expect(logged.slice(-2).map((e) => e.job_id)).toEqual([a, c]);
    expect(told).toEqual(logged);
    expect(new Set(logged.map((e) => e.seq)).size).toBe(logged.length);
  });

  it('delivers to a late park the wake-ups emitted after its poll ran', async () => {
    const s = newStore();
    const waiters = new Waiters(s);
    const since = waiters.generation;
    // A job becomes claimable after the poll ran, before it parked (another call of its group).
    submit(s, 4);
    expect(waiters.generation).toBe(since + 1);
    const parked = waiters.parkPoll(
      {
        dataPlaneId: 'dp-g',
        executor: 'e',
        jobTypes: new Set([TRUNCATE]),
        heldIds: new Set(),
        wantsClaims: true,
      },
      3_600_000,
      fakeRes(),
      since,
    );
    // Woken at once (not gone), not after the hour.
    await expect(parked).resolves.toBe(false);
    expect(waiters.parkedPolls).toBe(0);
  });

  it('does not wake a late park for a wake-up it would not have woken for', async () => {
    const s = newStore();
    const waiters = new Waiters(s);
    const since = waiters.generation;
    submit(s, 5);
    let settled = false;
    const parked = waiters
      .parkPoll(
        {
          dataPlaneId: 'dp-g',
          executor: 'e',
          jobTypes: new Set(['forecast']),
          heldIds: new Set(),
          wantsClaims: true,
        },
        3_600_000,
        fakeRes(),
        since,
      )
      .then((gone) => {
        settled = true;
        return gone;
      });
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    expect(waiters.parkedPolls).toBe(1);
    waiters.closeAll();
    await expect(parked).resolves.toBe(false);
  });
});
