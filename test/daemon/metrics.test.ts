/**
 * The daemon's event-loop lag, read by a scrape as Prometheus would: a histogram (not a gauge with
 * quantile labels) of how late each sampling timer fired, which reads ~0 for an idle loop, the length
 * of a block when the loop is blocked, and never counts idle spells between busy phases as lag. The
 * default `nodejs_eventloop_lag_*` series, which read the sampling interval (1 s) when idle, are not
 * exported.
 */
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/daemon/metrics.ts';
import { waitFor } from '../helpers.ts';

/** `dpo_event_loop_lag_seconds_count`, `_sum` and the bucket `le` counts of one scrape. */
function lag(text: string) {
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? Number.NaN);
  return {
    count: num(/^dpo_event_loop_lag_seconds_count (\S+)$/m),
    sum: num(/^dpo_event_loop_lag_seconds_sum (\S+)$/m),
    atMost: (le: string) =>
      num(new RegExp(`^dpo_event_loop_lag_seconds_bucket\\{le="${le}"\\} (\\S+)$`, 'm')),
    max: num(/^dpo_event_loop_lag_max_seconds (\S+)$/m),
  };
}

function block(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // block the event loop
  }
}

describe('event-loop lag', () => {
  it('is a histogram; an idle loop reads ~0, a blocked one the length of the block', async () => {
    const metrics = createMetrics({ lagResolutionMs: 20 });
    try {
      await waitFor(async () => lag(await metrics.registry.metrics()).count >= 5, { intervalMs: 20 });
      const idle = await metrics.registry.metrics();
      expect(idle).toMatch(/^# TYPE dpo_event_loop_lag_seconds histogram$/m);
      expect(idle).not.toMatch(/quantile=/);
      // Samples of an idle loop: well under the 1 s the default series read when idle (a loaded test
      // machine may delay a timer by tens of milliseconds).
      expect(lag(idle).atMost('0.5')).toBe(lag(idle).count);
      const before = lag(idle).count;
      block(300);
      // The scrape that first sees the late sample also reads its maximum (a scrape resets it).
      let text = '';
      await waitFor(
        async () => {
          text = await metrics.registry.metrics();
          return lag(text).count > before;
        },
        { intervalMs: 10 },
      );
      const after = lag(text);
      expect(after.count - after.atMost('0.25')).toBeGreaterThanOrEqual(1);
      expect(after.max).toBeGreaterThanOrEqual(0.25);
    } finally {
      metrics.eventLoopLag?.stop();
    }
  });

  it('idle spells between busy phases are not lag (switching the interval keeps no stale timestamp)', async () => {
    // Idle every 200 ms, busy every 5 ms: the old histogram, disabled between busy phases and enabled
    // again, measured its first busy sample from the previous phase and read the idle spell as lag.
    const metrics = createMetrics({ lagResolutionMs: 200, lagBusyResolutionMs: 5 });
    try {
      for (let phase = 0; phase < 3; phase++) {
        metrics.held.set(1);
        expect(metrics.eventLoopLag?.dense).toBe(true);
        let seen = lag(await metrics.registry.metrics()).count;
        await waitFor(async () => lag(await metrics.registry.metrics()).count >= seen + 5, { intervalMs: 5 });
        metrics.held.set(0);
        // Idle long enough for two sparse samples (~400 ms), waited for by condition, not by a sleep.
        seen = lag(await metrics.registry.metrics()).count;
        await waitFor(async () => lag(await metrics.registry.metrics()).count >= seen + 2, {
          intervalMs: 50,
        });
      }
      const text = await metrics.registry.metrics();
      const l = lag(text);
      // Every sample under 0.5 s late: the idle spells (~600 ms each) were never counted. (A loaded
      // machine may delay a timer by tens of milliseconds; not by an idle spell.)
      expect(l.count).toBeGreaterThan(20);
      expect(l.atMost('0.5')).toBe(l.count);
    } finally {
      metrics.eventLoopLag?.stop();
    }
  });

  it('does not export the default nodejs_eventloop_lag series (they read the 1 s interval when idle)', async () => {
    const metrics = createMetrics();
    try {
      const text = await metrics.registry.metrics();
      expect(text).not.toMatch(/nodejs_eventloop_lag/);
      expect(text).toMatch(/dpo_nodejs_heap_size_used_bytes/);
    } finally {
      metrics.eventLoopLag?.stop();
    }
  });
});
