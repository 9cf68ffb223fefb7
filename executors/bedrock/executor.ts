/**
 * `model_inference_run` on Amazon Bedrock, with the Converse API (`@aws-sdk/client-bedrock-runtime`,
 * over HTTP/2 as the client does by default: only the endpoint is configurable, never the handler).
 *
 * Request shape: the system messages go in `system`; consecutive turns of one role are merged (Converse
 * wants user and assistant to alternate); `temperature` is sent alone, never with `topP`; `maxTokens`
 * is the job's. Structured output is Converse's native JSON-schema output (`outputConfig.textFormat`)
 * for the models the map marks `native`, else one forced tool whose input schema is the job's schema.
 *
 * Everything else (validation, repair, usage, the per-model limit, logs) is the shared inference
 * module's (src/executor/inference). Errors: the SDK retries throttling, a model not ready and 5xx
 * within its attempts; past them the failure is retryable and asks the control plane for a later
 * retry (`retryAfterMs`) when throttled, so a throttled burst does not spend the job's attempts fast.
 */
import {
  BedrockRuntimeClient,
  type ContentBlock,
  ConverseCommand,
  type ConverseCommandInput,
  type Message,
} from '@aws-sdk/client-bedrock-runtime';
import { awsClientOptions, awsError, THROTTLED_RETRY_AFTER_MS } from '../../src/executor/aws.ts';
import {
  type ExecuteContext,
  type Executor,
  JobError,
  type JobHandle,
  type JobHandlers,
  runHandler,
} from '../../src/executor/index.ts';
import {
  type ChatTurn,
  type InferenceCall,
  type InferenceReply,
  type InferenceTransport,
  ModelLimiter,
  runInference,
  type StopKind,
} from '../../src/executor/inference/index.ts';
import type { BedrockConfig } from './config.ts';
import type { BEDROCK_JOB_TYPES } from './index.ts';

/** The forced tool's name when a model has no native structured output. */
export const OUTPUT_TOOL = 'structured_output';

const STOPS: Record<string, StopKind> = {
  end_turn: 'complete',
  stop_sequence: 'complete',
  tool_use: 'complete',
  max_tokens: 'max_tokens',
  malformed_model_output: 'malformed',
  malformed_tool_use: 'malformed',
  content_filtered: 'content_filtered',
  guardrail_intervened: 'guardrail',
  model_context_window_exceeded: 'context_window_exceeded',
};

/** Converse wants user and assistant to alternate: one message per run of one role. */
export function converseMessages(turns: readonly ChatTurn[]): Message[] {
  const out: Message[] = [];
  for (const t of turns) {
    const last = out.at(-1);
    if (last?.role === t.role) (last.content as ContentBlock[]).push({ text: t.text });
    else out.push({ role: t.role, content: [{ text: t.text }] });
  }
  return out;
}

export function converseRequest(call: InferenceCall): ConverseCommandInput {
  const structured: Partial<ConverseCommandInput> =
    call.model.structuredOutput === 'native'
      ? {
          outputConfig: {
            textFormat: {
              type: 'json_schema',
              structure: { jsonSchema: { schema: JSON.stringify(call.schema), name: OUTPUT_TOOL } },
            },
          },
        }
      : {
          toolConfig: {
            tools: [
              {
                toolSpec: {
                  name: OUTPUT_TOOL,
                  description: 'Return the answer as this tool’s input, matching its schema exactly.',
                  inputSchema: { json: call.schema as never },
                },
              },
            ],
            toolChoice: { tool: { name: OUTPUT_TOOL } },
          },
        };
  return {
    modelId: call.model.id,
    ...(call.system.length ? { system: call.system.map((text) => ({ text })) } : {}),
    messages: converseMessages(call.messages),
    inferenceConfig: {
      maxTokens: call.maxTokens,
      ...(call.temperature === undefined ? {} : { temperature: call.temperature }),
    },
    ...structured,
  };
}

export class BedrockExecutor implements Executor {
  readonly name = 'bedrock';
  readonly handlers = {
    model_inference_run: (job, ctx) =>
      runInference(job, ctx, {
        transport: this.#transport,
        models: this.config.models,
        limiter: this.#limiter,
        callTimeoutMs: this.config.requestTimeoutMs,
      }),
  } satisfies JobHandlers<(typeof BEDROCK_JOB_TYPES)[number]>;
  readonly jobTypes: readonly string[] = Object.keys(this.handlers);
  readonly #client: BedrockRuntimeClient;
  readonly #limiter = new ModelLimiter();
  readonly #transport: InferenceTransport;

  readonly config: BedrockConfig;

  constructor(config: BedrockConfig) {
    this.config = config;
    const options = awsClientOptions({
      region: config.region,
      maxAttempts: config.maxAttempts,
      requestTimeoutMs: config.requestTimeoutMs,
      endpoint: config.endpoint,
    });
    // The options object (not a handler instance) keeps the client's own HTTP/2 handler.
    this.#client = new BedrockRuntimeClient({
      ...options,
      requestHandler: { ...options.requestHandler, disableConcurrentStreams: true },
    });
    this.#transport = {
      send: (call) => this.#send(call),
      classify: bedrockError,
    };
  }

  execute(job: JobHandle, ctx: ExecuteContext): Promise<unknown> {
    return runHandler(this.handlers, job, ctx);
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }

  /**
   * Native structured output supports a subset of JSON Schema that varies by model: a schema it
   * refuses (ValidationException) is asked again, once, with the forced tool instead.
   */
  async #send(call: InferenceCall): Promise<InferenceReply> {
    if (call.model.structuredOutput !== 'native') return this.#converse(call);
    try {
      return await this.#converse(call);
    } catch (err) {
      if ((err as { name?: string })?.name !== 'ValidationException' || call.signal.aborted) throw err;
      const reply = await this.#converse({ ...call, model: { ...call.model, structuredOutput: 'tool' } });
      reply.structuredOutput = 'tool (native refused)';
      return reply;
    }
  }

  async #converse(call: InferenceCall): Promise<InferenceReply> {
    const request = converseRequest(call);
    const out = await this.#client.send(new ConverseCommand(request), { abortSignal: call.signal });
    const content = out.output?.message?.content ?? [];
    const stopReason = out.stopReason ?? 'unknown';
    let stop: StopKind = STOPS[stopReason] ?? 'malformed';
    const reply: InferenceReply = {
      stop,
      stopReason,
      usage: {
        promptTokens: out.usage?.inputTokens ?? 0,
        completionTokens: out.usage?.outputTokens ?? 0,
      },
      requestBytes: Buffer.byteLength(JSON.stringify(request)),
      responseBytes: 0,
      structuredOutput: call.model.structuredOutput,
    };
    if (call.model.structuredOutput === 'tool') {
      const use = content.find((b) => b.toolUse?.name === OUTPUT_TOOL)?.toolUse;
      if (use !== undefined) reply.value = use.input;
      // Asked for a tool and given none (or given text): a malformed tool call, repairable.
      else if (stop === 'complete') stop = 'malformed';
      reply.text = content.flatMap((b) => (b.text === undefined ? [] : [b.text])).join('');
    } else {
      reply.text = content.flatMap((b) => (b.text === undefined ? [] : [b.text])).join('');
    }
    const actionReason = out.trace?.guardrail?.actionReason;
    if (actionReason) reply.blockedReason = actionReason;
    reply.stop = stop;
    reply.responseBytes = Buffer.byteLength(
      reply.value !== undefined ? (JSON.stringify(reply.value) ?? '') : (reply.text ?? ''),
    );
    return reply;
  }
}

/**
 * A Bedrock Runtime error as a JobError: the AWS classification (src/executor/aws.ts), with two
 * Bedrock cases it does not know. A model timeout (408) and a model error (424) are the model's
 * trouble, not the request's: retryable after 3-6 s. A model not ready (429) is throttling to the
 * classifier.
 */
export function bedrockError(err: unknown, attempt = 1): JobError {
  const e = err as { name?: string; message?: string };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') {
    return new JobError(
      'MODEL_TIMEOUT',
      'Bedrock Converse: no answer within DPO_BEDROCK_REQUEST_TIMEOUT_MS',
      {
        retryable: true,
        cause: err,
      },
    );
  }
  if (e?.name === 'ModelTimeoutException' || e?.name === 'ModelErrorException') {
    return new JobError('MODEL_UNAVAILABLE', `Bedrock Converse: ${e.name}: ${e.message ?? ''}`, {
      retryable: true,
      cause: err,
      retryAfterMs:
        THROTTLED_RETRY_AFTER_MS.min + Math.floor(Math.random() * THROTTLED_RETRY_AFTER_MS.spread),
    });
  }
  // Throttling asks for 3-6 s; an outage (5xx, no answer) the budget of the job's attempt.
  return awsError(err, 'Bedrock Converse', { attempt });
}
