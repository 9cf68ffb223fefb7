/**
 * Liveness and readiness through a control-plane outage: live means this process makes progress
 * (its poll loop keeps stepping), ready means connected. An outage must make the daemon unready,
 * never unlive (the orchestrator would restart every replica and kill their work); a poll loop that
 * stops stepping must make it unlive.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type OpsServer, startOpsServer } from '../../src/daemon/ops-server.ts';
import { startTestControlPlane, type TestControlPlane, waitFor } from '../helpers.ts';
import { startTestDaemon, type TestDaemon } from '../support/daemon.ts';
import { Partition } from '../support/partition.ts';

let cp: TestControlPlane | undefined;
let d: TestDaemon | undefined;
let ops: OpsServer | undefined;
afterEach(async () => {
  await ops?.close();
  await d?.stop();
  await cp?.close();
  ops = d = cp = undefined;
});

/** Above the loop's longest pause between two steps: its retry backoff is capped at 5 s. */
const STALE_MS = 7_000;
const UNREADY_MS = 600;

/** A daemon behind a cuttable link, with its health server; `cutFromStart`: never connected. */
async function setup(opts: { cutFromStart?: boolean } = {}) {
  cp = await startTestControlPlane();
  let partition: Partition | undefined;
  d = await startTestDaemon(cp, {
    pollWaitMs: 200,
    wrapControlPlane: (inner) => {
      partition = new Partition(inner);
      if (opts.cutFromStart) partition.cutNow('reset');
      return partition;
    },
  });
  ops = await startOpsServer({
    host: '127.0.0.1',
    port: 0,
    daemon: d.daemon,
    metrics: d.metrics,
    staleAfterMs: STALE_MS,
    unreadyAfterMs: UNREADY_MS,
  });
  const url = ops.url;
  const status = async (path: string) => (await fetch(`${url}${path}`)).status;
  if (!opts.cutFromStart) await waitFor(async () => (await status('/readyz')) === 200, { what: 'readiness' });
  return { partition: partition!, status };
}

describe('health through a control-plane outage', () => {
  it('stays live but becomes unready while the control plane is away, and ready again after', async () => {
    const { partition, status } = await setup();
    partition.cutNow('reset');
    await waitFor(async () => (await status('/readyz')) === 503, { what: 'unready' });
    // For longer than the liveness window, the loop keeps stepping (its retries) and stays live.
    const until = Date.now() + STALE_MS + 1_000;
    while (Date.now() < until) {
      expect(await status('/healthz')).toBe(200);
      await new Promise((r) => setTimeout(r, 100));
    }
    partition.heal();
    await waitFor(async () => (await status('/readyz')) === 200, { what: 'ready again' });
    expect(await status('/healthz')).toBe(200);
  });

  it('becomes unlive when the poll loop stops stepping (a call that never returns)', async () => {
    const { partition, status } = await setup();
    partition.cutNow('blackhole');
    const body = await waitFor(
      async () => {
        const r = await fetch(`${ops!.url}/healthz`);
        return r.status === 503 ? ((await r.json()) as Record<string, unknown>) : undefined;
      },
      { what: 'unlive', timeoutMs: STALE_MS + 5_000 },
    );
    expect(body).toMatchObject({ status: 'unhealthy', state: 'running' });
    expect(body.loop_step_age_ms as number).toBeGreaterThanOrEqual(STALE_MS);
    expect(await status('/readyz')).toBe(503);
  });

  it('is live but never ready when the control plane was never reached', async () => {
    const { status } = await setup({ cutFromStart: true });
    await waitFor(() => d!.daemon.lastLoopStepAt > 0, { what: 'the loop to step' });
    expect(await status('/readyz')).toBe(503);
    expect(await status('/healthz')).toBe(200);
  });
});
