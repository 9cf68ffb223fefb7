/**
 * A test client of the console's server-sent event streams, on undici: reads frames as they come and
 * lets a test wait for a number of them (bounded), then disconnect.
 */
import { request } from 'undici';
import { waitFor } from '../helpers.ts';

export interface SseFrame {
  id: number | null;
  event: string;
  data: any;
}

export interface SseClient {
  status: number;
  frames: SseFrame[];
  /** Waits until `n` frames named `event` (all frames when omitted) have arrived; returns them. */
  waitFor(n: number, event?: string): Promise<SseFrame[]>;
  close(): void;
}

export async function openSse(
  url: string,
  token: string | undefined,
  opts: { lastEventId?: number } = {},
): Promise<SseClient> {
  const controller = new AbortController();
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (opts.lastEventId !== undefined) headers['last-event-id'] = String(opts.lastEventId);
  const res = await request(url, { headers, signal: controller.signal, headersTimeout: 10_000 });
  const frames: SseFrame[] = [];
  if (res.statusCode === 200) {
    let buf = '';
    res.body.setEncoding('utf8');
    res.body.on('data', (chunk: string) => {
      buf += chunk;
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const raw = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const frame: SseFrame = { id: null, event: 'message', data: undefined };
        let data = '';
        for (const line of raw.split('\n')) {
          if (line.startsWith('id: ')) frame.id = Number(line.slice(4));
          else if (line.startsWith('event: ')) frame.event = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        if (data === '') continue; // a comment (keep-alive)
        frame.data = JSON.parse(data);
        frames.push(frame);
      }
    });
    res.body.on('error', () => {});
  } else {
    await res.body.text();
  }
  const named = (event?: string) => frames.filter((f) => event === undefined || f.event === event);
  return {
    status: res.statusCode,
    frames,
    waitFor: (n, event) =>
      waitFor(() => (named(event).length >= n ? named(event) : null), {
        timeoutMs: 5_000,
        what: `${n} '${event ?? 'any'}' events (have ${named(event).length})`,
      }),
    close: () => controller.abort(),
  };
}
