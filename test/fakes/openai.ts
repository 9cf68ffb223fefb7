/**
 * An OpenAI-compatible model server on 127.0.0.1 (what vLLM, TGI, llama.cpp server and Ollama serve):
 * `POST /v1/chat/completions`, answered from a script (queued replies first, then `respond`). It
 * records every request with its Authorization header, and every request the client aborted before
 * it was answered.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ChatRequestSeen {
  body: any;
  authorization: string | undefined;
  at: number;
}

export type FakeChatReply =
  /** A chat completion: `content` is the message text, or `toolArguments` a function call's. */
  | {
      content?: string | null;
      toolArguments?: string;
      refusal?: string;
      finish_reason: string;
      usage?: { prompt_tokens: number; completion_tokens: number };
    }
  /** An HTTP error, OpenAI's error body. */
  | { status: number; message: string; retryAfter?: string }
  /** Never answers (until the client goes away or the fake closes). */
  | { hang: true };

export interface FakeOpenAi {
  /** The API base, with `/v1`. */
  url: string;
  requests: ChatRequestSeen[];
  /** Requests the client aborted before an answer. */
  aborted: number;
  queue: FakeChatReply[];
  hanging(): number;
  close(): Promise<void>;
}

/** A completion whose output is `value`, as the request asked (function call or JSON content). */
export function chatAnswer(req: ChatRequestSeen, value: unknown, finish?: string): FakeChatReply {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  if (req.body.tools?.length) {
    return {
      toolArguments: text,
      content: null,
      finish_reason: finish ?? 'tool_calls',
      usage: { prompt_tokens: 150, completion_tokens: 25 },
    };
  }
  return {
    content: text,
    finish_reason: finish ?? 'stop',
    usage: { prompt_tokens: 150, completion_tokens: 25 },
  };
}

export async function startFakeOpenAi(
  respond: (req: ChatRequestSeen) => FakeChatReply = (req) => chatAnswer(req, { ok: true }),
): Promise<FakeOpenAi> {
  const requests: ChatRequestSeen[] = [];
  const queue: FakeChatReply[] = [];
  const held = new Set<http.ServerResponse>();
  const state = { aborted: 0 };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    res.on('close', () => {
      held.delete(res);
      if (!res.writableEnded) state.aborted++;
    });
    req.on('end', () => {
      const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        held.delete(res);
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
        send(404, { error: { message: `no route ${req.method} ${req.url}`, type: 'not_found' } });
        return;
      }
      const seen: ChatRequestSeen = {
        body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'),
        authorization: req.headers.authorization,
        at: Date.now(),
      };
      requests.push(seen);
      const reply = queue.length ? (queue.shift() as FakeChatReply) : respond(seen);
      if ('hang' in reply) {
        held.add(res);
        return;
      }
      if ('status' in reply) {
        send(
          reply.status,
          { error: { message: reply.message, type: 'error', code: reply.status } },
          reply.retryAfter ? { 'retry-after': reply.retryAfter } : {},
        );
        return;
      }
      const usage = reply.usage ?? { prompt_tokens: 10, completion_tokens: 5 };
      send(200, {
        id: `chatcmpl-${requests.length}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: seen.body.model,
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: reply.content ?? null,
              ...(reply.refusal ? { refusal: reply.refusal } : {}),
              ...(reply.toolArguments !== undefined
                ? {
                    tool_calls: [
                      {
                        id: 'call_1',
                        type: 'function',
                        function: {
                          name: seen.body.tools?.[0]?.function?.name ?? 'structured_output',
                          arguments: reply.toolArguments,
                        },
                      },
                    ],
                  }
                : {}),
            },
            finish_reason: reply.finish_reason,
          },
        ],
        usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    get aborted() {
      return state.aborted;
    },
    queue,
    hanging: () => held.size,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
