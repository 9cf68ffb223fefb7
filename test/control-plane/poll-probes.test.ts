/**
 * The poll skips its revocation and expiry probes when the store knows nothing can be pending
 * (issue 27). What must still hold: a revocation written before a restart is delivered after it; a
 * lease granted at an earlier clock reading than the last probe saw still expires; a revocation
 * taken by a poll whose transaction rolled back is delivered by the next poll.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { JobStore } from '../../src/control-plane/store.ts';
import { TRUNCATE, truncateInput } from '../helpers.ts';

const TTL = 10_000;
let clock = 1_900_000_000_000;
const stores: JobStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

function open(path = ':memory:'): JobStore {
  const s = new JobStore({
    path,
    leaseTtlMs: TTL,
    retryBaseMs: 10,
    retryMaxMs: 10,
    defaultMaxAttempts: 3,
    now: () => clock,
  });
  stores.push(s);
  return s;
}

const submit = (s: JobStore, n: number) =>
  s.submit(
    { type: TRUNCATE, company_id: 3, data_plane_id: 'dp-p', input: truncateInput(n) },
    { type: 'api_user' },
  ).job;
const poll = (s: JobStore, executor: string, capacity = 1) =>
  s.poll({ executor, dataPlaneId: 'dp-p', jobTypes: [TRUNCATE], capacity, held: [] });

describe('poll probes', () => {
  it('delivers a revocation written before a restart', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'dpo-probes-')), 'cp.db');
    const first = open(path);
    const job = submit(first, 1);
    expect(poll(first, 'a').claimed.map((j) => j.id)).toEqual([job.id]);
    first.reschedule(job.id, false);
    first.close();
    const second = open(path);
    const out = poll(second, 'a', 0);
    expect(out.lost).toEqual([job.id]);
    expect(out.lostReasons).toEqual({ [job.id]: 'rescheduled' });
    // Delivered once.
    expect(poll(second, 'a', 0).lost).toEqual([]);
  });

  it('expires a lease granted at an earlier clock reading than the last probe', () => {
    const s = open();
    submit(s, 2);
    submit(s, 3);
    const later = clock + 5_000;
    const t0 = clock;
    clock = later;
    const first = poll(s, 'a').claimed[0]!; // probes, then grants until later + TTL
    clock = t0; // the clock reads earlier (another host's, a test's): the next grant ends sooner
    const second = poll(s, 'b').claimed[0]!;
    expect(Date.parse(second.lease!.expires_at)).toBe(t0 + TTL);
    clock = t0 + TTL + 1;
    const out = poll(s, 'b', 0);
    expect(out.lost).toEqual([second.id]);
    expect(s.get(second.id).state).toBe('pending');
    expect(s.get(first.id).state).toBe('running');
  });

  it('delivers again a revocation whose taking poll was rolled back', async () => {
    const s = open();
    const job = submit(s, 4);
    poll(s, 'a');
    s.reschedule(job.id, false);
    const rolledBack = s.grouped(() => {
      expect(poll(s, 'a', 0).lost).toEqual([job.id]);
      throw new Error('after the poll, before the commit');
    });
    await expect(rolledBack).rejects.toThrow('after the poll');
    expect(poll(s, 'a', 0).lost).toEqual([job.id]);
  });
});
