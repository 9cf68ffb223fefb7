/**
 * `model_inference_run` on a model server inside the data plane that speaks the OpenAI
 * chat-completions API (vLLM, TGI, llama.cpp server, Ollama): `POST {base}/chat/completions` with a
 * JSON-schema `response_format` (or, for servers without it, one forced function call).
 *
 * The shared inference module (src/executor/inference) does validation, repair, usage, the per-model
 * limit and the job-log lines; this file is the transport. Transient answers (429, 502, 503, 504, a
 * refused or reset connection) are retried here with full-jitter backoff, at most
 * DPO_OPENAI_COMPAT_MAX_ATTEMPTS times and within the call's bound, honouring `Retry-After`; past that
 * the failure is retryable and asks the control plane for a later retry (`retryAfterMs`).
 */
import { z } from 'zod';
import { outageRetryAfterMs } from '../../src/executor/aws.ts';
import {
  type ExecuteContext,
  type Executor,
  JobError,
  type JobHandle,
  type JobHandlers,
  runHandler,
} from '../../src/executor/index.ts';
import {
  type InferenceCall,
  type InferenceReply,
  type InferenceTransport,
  ModelLimiter,
  runInference,
  type StopKind,
} from '../../src/executor/inference/index.ts';
import { retry } from '../../src/lib/retry.ts';
import type { OpenAiCompatibleConfig } from './config.ts';
import type { OPENAI_COMPATIBLE_JOB_TYPES } from './index.ts';

export const OUTPUT_FUNCTION = 'structured_output';

/** The part of a chat completion we read; everything else is tolerated. */
const ChatCompletion = z.looseObject({
  choices: z
    .array(
      z.looseObject({
        message: z.looseObject({
          content: z.string().nullish(),
          refusal: z.string().nullish(),
          tool_calls: z
            .array(
              z.looseObject({
                function: z.looseObject({ name: z.string(), arguments: z.string() }),
              }),
            )
            .nullish(),
        }),
        finish_reason: z.string().nullish(),
      }),
    )
    .min(1),
  usage: z
    .looseObject({ prompt_tokens: z.number().int().min(0), completion_tokens: z.number().int().min(0) })
    .nullish(),
});

const STOPS: Record<string, StopKind> = {
  stop: 'complete',
  tool_calls: 'complete',
  function_call: 'complete',
  eos: 'complete',
  length: 'max_tokens',
  content_filter: 'content_filtered',
};

/** A non-2xx answer from the model server. */
export class ModelServerError extends Error {
  readonly status: number;
  readonly retryAfterMs: number | undefined;
  constructor(status: number, message: string, retryAfterMs: number | undefined) {
    super(message);
    this.name = 'ModelServerError';
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

export function chatRequest(call: InferenceCall): Record<string, unknown> {
  const messages = [
    ...call.system.map((content) => ({ role: 'system', content })),
    ...call.messages.map((m) => ({ role: m.role, content: m.text })),
  ];
  const structured =
    call.model.structuredOutput === 'native'
      ? {
          response_format: {
            type: 'json_schema',
            json_schema: { name: OUTPUT_FUNCTION, schema: call.schema },
          },
        }
      : {
          tools: [
            {
              type: 'function',
              function: {
                name: OUTPUT_FUNCTION,
                description: 'Return the answer as this function’s arguments, matching its schema exactly.',
                parameters: call.schema,
              },
            },
          ],
          tool_choice: { type: 'function', function: { name: OUTPUT_FUNCTION } },
        };
  return {
    model: call.model.id,
    messages,
    max_tokens: call.maxTokens,
    ...(call.temperature === undefined ? {} : { temperature: call.temperature }),
    ...structured,
  };
}

/** 429 and 5xx gateways/unavailable are transient; a connection that failed or was reset too. */
function transient(err: unknown): { retryable: boolean; retryAfterMs?: number } {
  if (err instanceof ModelServerError) {
    const retryable = [429, 502, 503, 504].includes(err.status);
    return retryable && err.retryAfterMs !== undefined
      ? { retryable, retryAfterMs: err.retryAfterMs }
      : { retryable };
  }
  // fetch failed before an answer: refused, reset, DNS. Not a timeout or an abort (the signal's).
  return { retryable: err instanceof TypeError };
}

function retryAfter(header: string | null): number | undefined {
  if (header === null) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.min(60_000, Math.max(0, seconds * 1000));
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.min(60_000, Math.max(0, at - Date.now()));
}

/** How long a busy server is asked to wait before the job is offered again: 3 to 6 s. */
const BUSY_RETRY_AFTER_MS = { min: 3_000, spread: 3_000 };

/**
 * A failed call as a JobError. Busy (429, 503: a model loading) asks for 3-6 s; an outage (other 5xx,
 * no connection) the AWS executors' outage budget for the job's `attempt` (1-2 min, then 4-8, …), so
 * the attempts outlast a server restart instead of being spent inside it.
 */
export function modelServerError(err: unknown, attempt = 1): JobError {
  if (err instanceof ModelServerError) {
    const what = `model server: HTTP ${err.status}: ${err.message}`;
    if (err.status === 401 || err.status === 403) {
      return new JobError('MODEL_SERVER_AUTH', `${what} — check the key in DPO_OPENAI_COMPAT_API_KEY_FILE`, {
        retryable: false,
        cause: err,
      });
    }
    if (err.status === 404) {
      return new JobError(
        'MODEL_NOT_FOUND',
        `${what} — the server does not serve this model (DPO_OPENAI_COMPAT_MODELS) or the base URL is wrong`,
        { retryable: false, cause: err },
      );
    }
    if (err.status === 429 || err.status >= 500) {
      const busy = err.status === 429 || err.status === 503;
      return new JobError('MODEL_UNAVAILABLE', `${what} (after bounded retries)`, {
        retryable: true,
        cause: err,
        details: { http_status: err.status, busy },
        // Busy: the server refused for capacity, nothing ran; the control plane gives the attempt back.
        throttled: busy,
        // The in-place retries are spent: busy, at least the jittered 3 to 6 s (longer if asked).
        retryAfterMs: busy
          ? Math.max(
              err.retryAfterMs ?? 0,
              BUSY_RETRY_AFTER_MS.min + Math.floor(Math.random() * BUSY_RETRY_AFTER_MS.spread),
            )
          : outageRetryAfterMs(attempt),
      });
    }
    return new JobError('MODEL_REQUEST_REJECTED', what, { retryable: false, cause: err });
  }
  const e = err as { name?: string; message?: string };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') {
    return new JobError(
      'MODEL_TIMEOUT',
      'model server: no answer within DPO_OPENAI_COMPAT_REQUEST_TIMEOUT_MS',
      { retryable: true, cause: err },
    );
  }
  if (err instanceof JobError) return err;
  const cause = (err as { cause?: { code?: string } })?.cause?.code;
  return new JobError(
    'MODEL_SERVER_UNREACHABLE',
    `model server: ${e?.message ?? String(err)}${cause ? ` (${cause})` : ''}`,
    { retryable: true, cause: err, retryAfterMs: outageRetryAfterMs(attempt) },
  );
}

export class OpenAiCompatibleExecutor implements Executor {
  readonly name = 'openai-compatible';
  readonly handlers = {
    model_inference_run: (job, ctx) =>
      runInference(job, ctx, {
        transport: this.#transport,
        models: this.config.models,
        limiter: this.#limiter,
        callTimeoutMs: this.config.requestTimeoutMs,
      }),
  } satisfies JobHandlers<(typeof OPENAI_COMPATIBLE_JOB_TYPES)[number]>;
  readonly jobTypes: readonly string[] = Object.keys(this.handlers);
  readonly config: OpenAiCompatibleConfig;
  readonly #limiter = new ModelLimiter();
  readonly #transport: InferenceTransport = {
    send: (call) => this.#send(call),
    classify: modelServerError,
  };

  constructor(config: OpenAiCompatibleConfig) {
    this.config = config;
  }

  execute(job: JobHandle, ctx: ExecuteContext): Promise<unknown> {
    return runHandler(this.handlers, job, ctx);
  }

  async #send(call: InferenceCall): Promise<InferenceReply> {
    const body = JSON.stringify(chatRequest(call));
    const text = await retry(() => this.#post(body, call.signal), {
      maxAttempts: this.config.maxAttempts,
      baseMs: 250,
      capMs: 5_000,
      signal: call.signal,
      classify: transient,
    });
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new JobError('MODEL_SERVER_PROTOCOL', 'model server: the answer is not JSON', {
        retryable: true,
      });
    }
    const parsed = ChatCompletion.safeParse(json);
    if (!parsed.success) {
      throw new JobError(
        'MODEL_SERVER_PROTOCOL',
        `model server: not a chat completion: ${parsed.error.issues
          .slice(0, 3)
          .map((i) => `${i.path.join('.')}: ${i.message}`)
          .join('; ')}`,
        { retryable: true },
      );
    }
    const choice = parsed.data.choices[0] as z.infer<typeof ChatCompletion>['choices'][number];
    const finish = choice.finish_reason ?? 'stop';
    let stop: StopKind = STOPS[finish] ?? 'malformed';
    const reply: InferenceReply = {
      stop,
      stopReason: finish,
      usage: {
        promptTokens: parsed.data.usage?.prompt_tokens ?? 0,
        completionTokens: parsed.data.usage?.completion_tokens ?? 0,
      },
      requestBytes: Buffer.byteLength(body),
      responseBytes: Buffer.byteLength(text),
    };
    if (choice.message.refusal) {
      stop = 'content_filtered';
      reply.stopReason = `${finish} (refusal)`;
    } else if (call.model.structuredOutput === 'tool') {
      const fn = choice.message.tool_calls?.find((t) => t.function.name === OUTPUT_FUNCTION)?.function;
      // No call of the function: a malformed tool call, repairable. Its arguments are JSON text.
      if (fn === undefined && stop === 'complete') stop = 'malformed';
      reply.text = fn?.arguments ?? choice.message.content ?? '';
    } else {
      reply.text = choice.message.content ?? '';
    }
    reply.stop = stop;
    return reply;
  }

  async #post(body: string, signal: AbortSignal): Promise<string> {
    const res = await fetch(`${this.config.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        ...(this.config.apiKey ? { authorization: `Bearer ${this.config.apiKey}` } : {}),
      },
      body,
      signal,
    });
    const text = await res.text();
    if (!res.ok) {
      throw new ModelServerError(res.status, serverMessage(text), retryAfter(res.headers.get('retry-after')));
    }
    return text;
  }
}

/** The server's error message (OpenAI's `{error: {message}}`, or the body), short. */
function serverMessage(text: string): string {
  let msg = text;
  try {
    const j = JSON.parse(text) as {
      error?: { message?: unknown } | string;
      message?: unknown;
      detail?: unknown;
    };
    const m = typeof j.error === 'string' ? j.error : (j.error?.message ?? j.message ?? j.detail);
    if (typeof m === 'string') msg = m;
  } catch {}
  return msg.slice(0, 300) || '(no message)';
}
