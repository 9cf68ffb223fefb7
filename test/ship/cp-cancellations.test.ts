/**
 * The bundled control plane counts cancellations on its /metrics (a scrape, as Prometheus does):
 * `requested` when work must be stopped downstream, `cancelled` when a job ends cancelled, nothing for
 * a cancel of a job that had already ended.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { clients, startTestControlPlane, type TestControlPlane, TRUNCATE } from '../helpers.ts';

let cp: TestControlPlane | undefined;
afterEach(async () => {
  await cp?.close();
  cp = undefined;
});

const count = (text: string, outcome: string): number => {
  const line = text
    .split('\n')
    .find((l) => l.startsWith('dpo_cp_cancellations_total{') && l.includes(`outcome="${outcome}"`));
  return line ? Number(line.split(' ').pop()) : 0;
};

describe('dpo_cp_cancellations_total{outcome}', () => {
  it('counts a pending job cancelled at once, a running one requested then confirmed, and skips a terminal one', async () => {
    cp = await startTestControlPlane();
    const c = clients(cp);
    const scrape = async () => (await fetch(`${cp?.url}/metrics`)).text();
    expect(count(await scrape(), 'cancelled')).toBe(0);

    const pending = await c.submit(TRUNCATE, { dataset_id: 1 });
    expect((await c.user('POST', `/v1/jobs/${pending.id}/cancel`, {})).body.outcome).toBe('cancelled');
    let text = await scrape();
    expect(count(text, 'cancelled')).toBe(1);
    expect(count(text, 'requested')).toBe(0);
    expect(text).toMatch(/^# TYPE dpo_cp_cancellations_total counter$/m);

    const running = await c.submit(TRUNCATE, { dataset_id: 2 });
    const claimed = await c.claim(running.id);
    expect((await c.user('POST', `/v1/jobs/${running.id}/cancel`, {})).body.outcome).toBe(
      'cancellation_requested',
    );
    expect(count(await scrape(), 'requested')).toBe(1);
    const confirmed = await c.op('POST', `/v1/jobs/${running.id}/cancelled`, {
      lease_token: claimed.lease?.token,
    });
    expect(confirmed.status).toBe(200);
    text = await scrape();
    expect(count(text, 'cancelled')).toBe(2);
    expect(count(text, 'requested')).toBe(1);

    expect((await c.user('POST', `/v1/jobs/${pending.id}/cancel`, {})).body.outcome).toBe('skipped_terminal');
    expect(count(await scrape(), 'cancelled')).toBe(2);
  });
});
