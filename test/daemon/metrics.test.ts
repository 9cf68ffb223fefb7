/** The daemon's event-loop lag metric reads what an operator means by lag. */
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/daemon/metrics.ts';
import { waitFor } from '../helpers.ts';

function lagOf(text: string, quantile: string): number {
  const m = new RegExp(`^dpo_event_loop_lag_seconds\\{quantile="${quantile}"\\} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`no dpo_event_loop_lag_seconds{quantile="${quantile}"} in the metrics`);
  return Number(m[1]);
}

describe('event-loop lag', () => {
  it('reads near zero for an idle loop (not the sampling interval), and the length of a block', async () => {
    // Sampled every 20 ms here, to see the correction quickly (the daemon samples once a second).
    const metrics = createMetrics({ lagResolutionMs: 20 });
    // Let a few samples accumulate (each sampling timer fires every 20 ms).
    let scraped = '';
    await waitFor(
      async () => {
        scraped = await metrics.registry.metrics();
        return /dpo_event_loop_lag_seconds\{quantile="0.5"\}/.test(scraped);
      },
      { intervalMs: 50 },
    );
    // The sampling interval is 20 ms: the uncorrected median of an idle loop reads about that.
    expect(lagOf(scraped, '0.5')).toBeLessThan(0.01);
    // A scrape resets the histogram, and the first sample after a reset only re-arms it.
    await new Promise((r) => setTimeout(r, 30));
    const blockedFor = 60;
    const until = performance.now() + blockedFor;
    while (performance.now() < until) {
      // block the event loop
    }
    await new Promise((r) => setTimeout(r, 30));
    const after = await metrics.registry.metrics();
    // At least the block less one sampling interval (a block that starts just after a sample).
    expect(lagOf(after, '1')).toBeGreaterThanOrEqual((blockedFor - 20 - 5) / 1000);
    expect(after).toMatch(/dpo_nodejs_eventloop_lag_p50_seconds/);
  });

  it('samples every 20 ms while the daemon holds jobs (a short block is seen), once a second otherwise', async () => {
    const metrics = createMetrics(); // the daemon's defaults: 1 s idle, 20 ms busy
    expect(metrics.eventLoopLag?.dense).toBe(false);
    metrics.held.set(2);
    expect(metrics.eventLoopLag?.dense).toBe(true);
    // Let dense samples accumulate, then scrape (which resets the histograms).
    await waitFor(
      async () => /dpo_event_loop_lag_seconds\{quantile="0.5"\}/.test(await metrics.registry.metrics()),
      {
        intervalMs: 50,
      },
    );
    await new Promise((r) => setTimeout(r, 30));
    const blockedFor = 60;
    const until = performance.now() + blockedFor;
    while (performance.now() < until) {
      // block the event loop
    }
    await new Promise((r) => setTimeout(r, 30));
    // Sampled once a second only, a 60 ms block would be seen about one time in seventeen.
    expect(lagOf(await metrics.registry.metrics(), '1')).toBeGreaterThanOrEqual((blockedFor - 20 - 5) / 1000);
    metrics.held.set(0);
    expect(metrics.eventLoopLag?.dense).toBe(false);
  });
});
