/**
 * Health and metrics over HTTP: `/healthz` (the poll loop is alive and polled recently), `/readyz`
 * (config valid and the control plane answered), `/metrics` (Prometheus text format).
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
  /** A poll older than this makes /healthz fail. */
  staleAfterMs: number;
}): Promise<OpsServer> {
  const { daemon, metrics } = opts;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET')
      return json(405, { error: { code: 'method_not_allowed', message: 'GET only' } });
    if (path === '/healthz') {
      const age = daemon.lastPollAt === 0 ? null : Date.now() - daemon.lastPollAt;
      const alive =
        daemon.state === 'starting' ||
        ((daemon.state === 'running' || daemon.state === 'draining') &&
          (age === null || age < opts.staleAfterMs));
      return json(alive ? 200 : 503, {
        status: alive ? 'ok' : 'unhealthy',
        state: daemon.state,
        last_poll_age_ms: age,
      });
    }
    if (path === '/readyz') {
      const ready = daemon.state === 'running' && daemon.controlPlaneAnswered;
      return json(ready ? 200 : 503, { status: ready ? 'ready' : 'not_ready', state: daemon.state });
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
