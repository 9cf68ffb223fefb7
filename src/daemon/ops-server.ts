/**
 * Health and metrics over HTTP.
 * - `/healthz` (liveness): this process makes progress — it answers (the event loop turns) and its
 *   poll loop started a step recently — whatever the control plane does. An outage of the control
 *   plane must not get every replica restarted, killing local work.
 * - `/readyz` (readiness): running (not draining) and connected: the control plane answered a poll
 *   recently. A daemon that never reached it is live but not ready.
 * - `/metrics`: Prometheus text format.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Daemon } from './daemon.ts';
import type { Metrics } from './metrics.ts';

export interface OpsServer {
  url: string;
  close(): Promise<void>;
}

export async function startOpsServer(opts: {
  host: string;
  port: number;
  daemon: Daemon;
  metrics: Metrics;
  /** A poll loop that started no step for this long makes /healthz fail. */
  staleAfterMs: number;
  /** No answer from the control plane for this long makes /readyz fail (default: staleAfterMs). */
  unreadyAfterMs?: number;
}): Promise<OpsServer> {
  const { daemon, metrics } = opts;
  // The same window as /readyz: the control plane answered a poll recently.
  metrics.probes.controlPlaneReachable = () =>
    daemon.lastPollAt !== 0 && Date.now() - daemon.lastPollAt < (opts.unreadyAfterMs ?? opts.staleAfterMs);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET')
      return json(405, { error: { code: 'method_not_allowed', message: 'GET only' } });
    const now = Date.now();
    const pollAge = daemon.lastPollAt === 0 ? null : now - daemon.lastPollAt;
    if (path === '/healthz') {
      const stepAge = daemon.lastLoopStepAt === 0 ? null : now - daemon.lastLoopStepAt;
      const alive =
        daemon.state === 'starting' ||
        ((daemon.state === 'running' || daemon.state === 'draining') &&
          (stepAge === null || stepAge < opts.staleAfterMs));
      return json(alive ? 200 : 503, {
        status: alive ? 'ok' : 'unhealthy',
        state: daemon.state,
        loop_step_age_ms: stepAge,
        last_poll_age_ms: pollAge,
      });
    }
    if (path === '/readyz') {
      const ready =
        daemon.state === 'running' &&
        pollAge !== null &&
        pollAge < (opts.unreadyAfterMs ?? opts.staleAfterMs);
      return json(ready ? 200 : 503, {
        status: ready ? 'ready' : 'not_ready',
        state: daemon.state,
        last_poll_age_ms: pollAge,
      });
    }
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        },
        () => json(500, { error: { code: 'internal', message: 'metrics unavailable' } }),
      );
      return;
    }
    json(404, { error: { code: 'not_found', message: `no route for ${path}` } });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    url: `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
