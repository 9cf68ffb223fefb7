/**
 * `complete` as one `UPDATE … WHERE id AND lease_token AND data plane AND state AND expiry`
 * (issue 27): each refusal the two-statement version gave must still come out, with the same
 * status, and a refused result must leave the job as it was. The clock is the store's own.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { JobStore, StoreError } from '../../src/control-plane/store.ts';
import { TRUNCATE, truncateInput } from '../helpers.ts';

const TTL = 10_000;
let clock = 1_800_000_000_000;
const stores: JobStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

function setup(dataPlaneId: string | null = 'dp-c') {
  const s = new JobStore({
    path: ':memory:',
    leaseTtlMs: TTL,
    retryBaseMs: 10,
    retryMaxMs: 10,
    defaultMaxAttempts: 3,
    now: () => clock,
  });
  stores.push(s);
  const { job } = s.submit(
    { type: TRUNCATE, company_id: 7, data_plane_id: dataPlaneId, input: truncateInput(11) },
    { type: 'api_user' },
  );
  const claimed = s.poll({ executor: 'e', dataPlaneId: 'dp-c', jobTypes: [TRUNCATE], capacity: 1, held: [] })
    .claimed[0]!;
  expect(claimed.id).toBe(job.id);
  return { s, id: job.id, token: claimed.lease!.token };
}

function refusal(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (err) {
    if (err instanceof StoreError) return err;
    throw err;
  }
  throw new Error('not refused');
}

describe('complete in one statement', () => {
  it('completes at expires_at exactly (the lease ends after it), and records the transition', () => {
    const { s, id, token } = setup();
    clock += TTL;
    const job = s.complete(id, token, 'dp-c', { type: TRUNCATE });
    expect(job).toMatchObject({ state: 'completed', lease: null, result: { type: TRUNCATE } });
    expect(s.events(0, 100, id).map((e) => e.kind)).toEqual(['created', 'claimed', 'completed']);
  });

  it('refuses 1 ms after expires_at with 410 expired, before any sweep, and leaves the job running', () => {
    const { s, id, token } = setup();
    clock += TTL + 1;
    const err = refusal(() => s.complete(id, token, 'dp-c', { type: TRUNCATE }));
    expect(err).toMatchObject({ status: 410, code: 'gone', details: { reason: 'expired' } });
    expect(s.get(id)).toMatchObject({ state: 'running', result: null });
  });

  it('refuses a stale token with 410, another data plane with 403, an unknown job with 404', () => {
    const { s, id, token } = setup();
    expect(
      refusal(() => s.complete(id, `${token.slice(0, -1)}${token.endsWith('0') ? '1' : '0'}`, 'dp-c', {}))
        .status,
    ).toBe(410);
    expect(refusal(() => s.complete(id, token, 'dp-other', { type: TRUNCATE })).status).toBe(403);
    expect(
      refusal(() => s.complete('00000000-0000-4000-8000-000000000000', token, 'dp-c', { type: TRUNCATE }))
        .status,
    ).toBe(404);
    expect(s.get(id).state).toBe('running');
  });

  it('undoes the write when the result does not match the schema (422; in a report, invalid)', () => {
    const { s, id, token } = setup();
    expect(refusal(() => s.complete(id, token, 'dp-c', { type: 'forecast' })).status).toBe(422);
    expect(s.get(id)).toMatchObject({ state: 'running', result: null, lease: { token } });
    const [out] = s.report('dp-c', [{ id, lease_token: token, outcome: 'complete', result: { nope: 1 } }]);
    expect(out).toMatchObject({ status: 'invalid', error: { status: 422 } });
    expect(s.get(id)).toMatchObject({ state: 'running', result: null, lease: { token } });
    expect(s.events(0, 100, id).map((e) => e.kind)).toEqual(['created', 'claimed']);
  });

  it('completes a job submitted without a data plane, claimed by any', () => {
    const { s, id, token } = setup(null);
    expect(s.complete(id, token, 'dp-c', { type: TRUNCATE }).state).toBe('completed');
  });
});
