/**
 * A Bedrock Runtime fake on 127.0.0.1 that speaks HTTP/2 in cleartext (h2c, prior knowledge), as the
 * real client expects from an `http://` endpoint with its default HTTP/2 handler. It serves Converse
 * (`POST /model/{modelId}/converse`, restJson1) from a script: replies queued by the test are served
 * first, then `respond` decides. Errors are restJson1 errors (`x-amzn-errortype` header). It records
 * every request (signed or not), and every stream the client reset before it was answered.
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface ConverseRequestSeen {
  modelId: string;
  body: any;
  /** The SigV4 Authorization header was present. */
  signed: boolean;
  at: number;
}

export type FakeReply =
  /** A Converse answer. */
  | {
      content: any[];
      stopReason: string;
      usage?: { inputTokens: number; outputTokens: number };
      trace?: unknown;
    }
  /** A restJson1 error. */
  | { status: number; errorType: string; message: string }
  /** Never answers (until the client resets the stream or the fake closes). */
  | { hang: true };

export interface FakeBedrockOptions {
  /** The answer when the queue is empty; default: a tool or JSON answer of `{"ok": true}`. */
  respond?: (req: ConverseRequestSeen) => FakeReply;
}

export interface FakeBedrock {
  url: string;
  requests: ConverseRequestSeen[];
  /** Streams the client reset (RST_STREAM) or closed before an answer: a cancelled request. */
  resets: Array<{ modelId: string; rstCode: number }>;
  /** Replies served before `respond`, in order. */
  queue: FakeReply[];
  /** Requests being held (`hang`), right now. */
  hanging(): number;
  close(): Promise<void>;
}

/** A Converse answer whose output is `value`, as the request asked (forced tool or native JSON). */
export function answer(req: ConverseRequestSeen, value: unknown, stopReason?: string): FakeReply {
  const tool = req.body.toolConfig?.tools?.[0]?.toolSpec?.name;
  if (tool) {
    return {
      content: [{ toolUse: { toolUseId: 'tooluse_fake1', name: tool, input: value } }],
      stopReason: stopReason ?? 'tool_use',
      usage: { inputTokens: 150, outputTokens: 25 },
    };
  }
  return {
    content: [{ text: typeof value === 'string' ? value : JSON.stringify(value) }],
    stopReason: stopReason ?? 'end_turn',
    usage: { inputTokens: 150, outputTokens: 25 },
  };
}

export async function startFakeBedrock(options: FakeBedrockOptions = {}): Promise<FakeBedrock> {
  const requests: ConverseRequestSeen[] = [];
  const resets: FakeBedrock['resets'] = [];
  const queue: FakeReply[] = [];
  const held = new Set<http2.ServerHttp2Stream>();
  const sessions = new Set<http2.ServerHttp2Session>();
  const respond = options.respond ?? ((req) => answer(req, { ok: true }));

  const server = http2.createServer();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    const path = String(headers[':path'] ?? '');
    const m = /^\/model\/([^/]+)\/converse$/.exec(path);
    let answered = false;
    const send = (status: number, body: unknown, extra: Record<string, string> = {}) => {
      answered = true;
      held.delete(stream);
      if (stream.destroyed || stream.closed) return;
      stream.respond({ ':status': status, 'content-type': 'application/json', ...extra });
      stream.end(JSON.stringify(body));
    };
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', () => {});
    stream.on('close', () => {
      held.delete(stream);
      if (!answered && m)
        resets.push({ modelId: decodeURIComponent(m[1] as string), rstCode: stream.rstCode });
    });
    stream.on('end', () => {
      if (headers[':method'] !== 'POST' || !m) {
        send(404, { message: `no route ${path}` }, { 'x-amzn-errortype': 'UnknownOperationException' });
        return;
      }
      const req: ConverseRequestSeen = {
        modelId: decodeURIComponent(m[1] as string),
        body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'),
        signed: /^AWS4-HMAC-SHA256 /.test(String(headers.authorization ?? '')),
        at: Date.now(),
      };
      requests.push(req);
      const reply = queue.length ? (queue.shift() as FakeReply) : respond(req);
      if ('hang' in reply) {
        held.add(stream);
        return;
      }
      if ('errorType' in reply) {
        send(
          reply.status,
          { message: reply.message },
          { 'x-amzn-errortype': `${reply.errorType}:http://internal.amazon.com/coral/com.amazon.bedrock/` },
        );
        return;
      }
      const usage = reply.usage ?? { inputTokens: 10, outputTokens: 5 };
      send(200, {
        output: { message: { role: 'assistant', content: reply.content } },
        stopReason: reply.stopReason,
        usage: { ...usage, totalTokens: usage.inputTokens + usage.outputTokens },
        metrics: { latencyMs: 12 },
        ...(reply.trace ? { trace: reply.trace } : {}),
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    resets,
    queue,
    hanging: () => held.size,
    async close() {
      for (const s of sessions) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
