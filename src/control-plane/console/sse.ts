/**
 * Server-sent events on node:http: one open response per client, written as `id:`/`event:`/`data:`
 * frames. A client that falls behind (more than {@link MAX_BUFFERED_BYTES} unsent) is cut off rather
 * than buffered without bound: it reconnects with `Last-Event-ID` and replays what it missed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Unsent bytes a client may have queued before it is dropped (it reconnects and replays). */
export const MAX_BUFFERED_BYTES = 1024 * 1024;
/** A comment line this often keeps idle connections (and the proxies between) from timing out. */
export const HEARTBEAT_MS = 15_000;

export interface SseStream {
  /** Sends one event; false when the stream is closed (or was just closed for falling behind). */
  send(id: number | null, event: string, data: unknown): boolean;
  /** {@link SseStream.send} with the data already serialized (one JSON text for many streams). */
  sendJson(id: number | null, event: string, json: string): boolean;
  /** Resolves when the client goes away or {@link SseStream.end} is called. */
  readonly closed: Promise<void>;
  readonly isClosed: boolean;
  end(): void;
}

/** The `Last-Event-ID` a reconnecting client sends (a non-negative integer), else null. */
export function lastEventId(req: IncomingMessage): number | null {
  const raw = req.headers['last-event-id'];
  const text = Array.isArray(raw) ? raw[0] : raw;
  if (text === undefined || !/^\d{1,15}$/.test(text.trim())) return null;
  return Number(text.trim());
}

export function openSse(req: IncomingMessage, res: ServerResponse): SseStream {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-store',
    'x-accel-buffering': 'no',
    connection: 'keep-alive',
  });
  // A first comment flushes the headers, so the client's fetch resolves at once.
  res.write(': open\n\n');
  let closed = false;
  let resolveClosed!: () => void;
  const closedPromise = new Promise<void>((resolve) => {
    resolveClosed = resolve;
  });
  const heartbeat = setInterval(() => {
    if (!closed) res.write(': keep-alive\n\n');
  }, HEARTBEAT_MS);
  heartbeat.unref();
  const finish = () => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    if (!res.writableEnded) res.end();
    resolveClosed();
  };
  req.on('close', finish);
  res.on('close', finish);
  res.on('error', finish);
  return {
    closed: closedPromise,
    get isClosed() {
      return closed;
    },
    send(id, event, data) {
      return this.sendJson(id, event, JSON.stringify(data));
    },
    sendJson(id, event, json) {
      if (closed) return false;
      // JSON.stringify never writes a raw newline, so one `data:` line carries the whole payload.
      const frame = `${id === null ? '' : `id: ${id}\n`}event: ${event}\ndata: ${json}\n\n`;
      res.write(frame);
      if (res.writableLength > MAX_BUFFERED_BYTES) {
        finish();
        return false;
      }
      return true;
    },
    end: finish,
  };
}
