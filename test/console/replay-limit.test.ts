/**
 * The console's routes mounted on a bare node:http server (no authentication: the control plane's
 * server adds that), to reach what the full server does not expose: the replay limit.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, expect, it } from 'vitest';
import { type ConsoleCtx, mountConsole } from '../../src/control-plane/console/routes.ts';
import { JobStore } from '../../src/control-plane/store.ts';
import { TRUNCATE, truncateInput } from '../helpers.ts';
import { openSse, type SseClient } from './sse-client.ts';

let server: Server | undefined;
let store: JobStore | undefined;
const streams: SseClient[] = [];
afterEach(async () => {
  for (const s of streams.splice(0)) s.close();
  server?.closeAllConnections();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  store?.close();
});

it('tells a client too far behind to reload (event: reset) instead of replaying, and replays one within the limit', async () => {
  store = new JobStore({
    path: ':memory:',
    leaseTtlMs: 30_000,
    retryBaseMs: 10,
    retryMaxMs: 100,
    defaultMaxAttempts: 3,
  });
  const routes = new Map<string, (ctx: ConsoleCtx) => unknown>();
  mountConsole({
    store,
    onAdmin: (_method, path, h) => routes.set(path, h),
    onPublic: () => {},
    leaseTtlMs: 30_000,
    dataPlanes: ['dp-a'],
    log: pino({ level: 'silent' }),
    maxReplayEvents: 5,
  });
  const events = routes.get('/v1/events')!;
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    Promise.resolve(events({ req, res, params: {}, query: url.searchParams })).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/events`;

  for (let i = 0; i < 8; i++) {
    store.submit(
      { type: TRUNCATE, company_id: 1, data_plane_id: 'dp-a', input: truncateInput(i + 1) },
      { type: 'api_user' },
    );
  }
  const far = await openSse(url, undefined, { lastEventId: 1 });
  streams.push(far);
  const [reset] = await far.waitFor(1, 'reset');
  expect(reset!.data).toMatchObject({ seq: 8 });
  expect(far.frames.filter((f) => f.event === 'job')).toEqual([]);

  const near = await openSse(url, undefined, { lastEventId: 4 });
  streams.push(near);
  expect((await near.waitFor(4, 'job')).map((f) => f.id)).toEqual([5, 6, 7, 8]);
});
