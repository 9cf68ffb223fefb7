/**
 * One `model_inference_run`, whatever the transport (Bedrock's Converse, an OpenAI-compatible chat
 * completion). The transport sends one request and says what came back; everything else is here:
 *
 * 1. Before any call: the model name is mapped (unmapped → INVALID_INPUT listing the configured
 *    names) and the output schema compiled (not a JSON Schema → INVALID_INPUT).
 * 2. A call, under the model's concurrency limit, with the job's signal, bounded by the per-call
 *    timeout and the job's deadline.
 * 3. Filtered content or a guardrail intervention ends the job, not retryably, with the reason.
 * 4. The output is checked against the schema. An invalid, truncated (max tokens) or malformed output
 *    gets ONE repair call that carries the validation errors; if the repair fails too, the job fails,
 *    not retryably, with an excerpt of the output and the errors.
 * 5. Usage is summed across the calls.
 *
 * Customer data (prompts, outputs, the schema) never goes to a log line: the job's log (which the
 * daemon's log mirrors) gets sizes, timings, token counts and stop reasons only. The output excerpt
 * and the errors go to the failure the control plane keeps, as the job's input and result do.
 */
import type { ModelInferenceRunInput } from '../../catalogue/models.ts';
import { type ExecuteContext, JobError, type JobHandle } from '../index.ts';
import type { ModelLimiter } from './limiter.ts';
import type { ModelEntry, ModelMap } from './models.ts';
import { compileOutputSchema, type OutputIssue } from './schema.ts';

export interface ChatTurn {
  role: 'user' | 'assistant';
  text: string;
}

/** One request, as the shared module asks a transport to send it. */
export interface InferenceCall {
  model: ModelEntry;
  /** The system messages' texts, in order (Bedrock's `system`, a chat API's system message). */
  system: readonly string[];
  /** Starts with a user turn; consecutive turns of one role are the transport's to merge. */
  messages: readonly ChatTurn[];
  /** The job's output_format_schema, as given. */
  schema: Record<string, unknown>;
  maxTokens: number;
  /** Sent alone: never together with top_p. */
  temperature: number | undefined;
  /** The job's signal, bounded by the call's timeout and the job's deadline. */
  signal: AbortSignal;
}

/** How the model stopped, normalized across APIs. */
export type StopKind =
  | 'complete'
  | 'max_tokens'
  | 'malformed'
  | 'content_filtered'
  | 'guardrail'
  | 'context_window_exceeded';

export interface InferenceReply {
  /** The output as JSON text (native structured output), when that is what came back. */
  text?: string | undefined;
  /** The output already parsed (a tool call's input), when that is what came back. */
  value?: unknown;
  stop: StopKind;
  /** The API's own stop reason, for the job's log and failures. */
  stopReason: string;
  /** How structured output was asked for, for the job's log (`tool (native refused)`, say). */
  structuredOutput?: string | undefined;
  /** Why the content was blocked, when the API says (a guardrail's action reason): never content. */
  blockedReason?: string | undefined;
  usage: { promptTokens: number; completionTokens: number };
  /** Sizes of what went out and came back, in bytes (for the job's log). */
  requestBytes: number;
  responseBytes: number;
}

export interface InferenceTransport {
  /** Sends one request. Rejects with the raw error; `classify` turns it into a JobError. */
  send(call: InferenceCall): Promise<InferenceReply>;
  /**
   * A failed call as a JobError with its retry decision (throttling and a model not ready carry a
   * short `retryAfterMs`, an outage the budget of the job's `attempt`, src/executor/aws.ts). Not
   * called when the job's own signal was aborted.
   */
  classify(err: unknown, attempt: number): JobError;
}

export interface InferenceDeps {
  transport: InferenceTransport;
  models: ModelMap;
  limiter: ModelLimiter;
  /** One call's bound, retries of the client included. */
  callTimeoutMs: number;
  clock?: () => number;
}

export interface InferenceResult {
  type: 'model_inference_run';
  structured_output: Record<string, unknown>;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

/** Longest excerpt of an invalid output kept in a failure's details. */
export const OUTPUT_EXCERPT_CHARS = 1_000;
/** Longest previous output sent back to the model in a repair. */
const REPAIR_ECHO_CHARS = 16_000;

export async function runInference(
  job: JobHandle<ModelInferenceRunInput>,
  ctx: ExecuteContext,
  deps: InferenceDeps,
): Promise<InferenceResult> {
  const now = deps.clock ?? Date.now;
  const input = job.input;
  // 1. Everything that can be refused is refused before any call.
  const model = deps.models.resolve(input.model);
  const validator = compileOutputSchema(input.inference_config.output_format_schema);
  const system = input.messages.filter((m) => m.role === 'system').map((m) => m.text);
  const messages: ChatTurn[] = input.messages
    .filter((m) => m.role !== 'system')
    .map((m) => ({ role: m.role as ChatTurn['role'], text: m.text }));
  if (messages[0]?.role !== 'user') {
    throw new JobError('INVALID_INPUT', 'messages: the first non-system message must be a user message', {
      retryable: false,
      details: { field: 'messages' },
    });
  }
  const base = {
    model,
    system,
    schema: input.inference_config.output_format_schema as Record<string, unknown>,
    maxTokens: input.inference_config.max_tokens,
    temperature: input.inference_config.temperature,
  };
  const usage = { prompt: 0, completion: 0 };

  const call = async (turns: ChatTurn[], attempt: 'first' | 'repair'): Promise<InferenceReply> => {
    const release = await deps.limiter.acquire(model.id, model.concurrency, ctx.signal, (inFlight) =>
      ctx.log.info('inference waits for a model slot', { model: model.name, in_flight: inFlight }),
    );
    const started = now();
    try {
      const left = ctx.deadline - started;
      const signal = AbortSignal.any([
        ctx.signal,
        AbortSignal.timeout(Math.max(1, Math.min(deps.callTimeoutMs, left))),
      ]);
      let reply: InferenceReply;
      try {
        reply = await deps.transport.send({ ...base, messages: turns, signal });
      } catch (err) {
        // The job's own abort (cancel, lost, shutdown, timeout) is the runner's to report.
        if (ctx.signal.aborted) throw ctx.signal.reason;
        const e = deps.transport.classify(err, job.attempt);
        ctx.log.warn('inference call failed', {
          model: model.name,
          call: attempt,
          code: e.code,
          retryable: e.retryable,
          duration_ms: now() - started,
        });
        throw e;
      }
      usage.prompt += reply.usage.promptTokens;
      usage.completion += reply.usage.completionTokens;
      ctx.log.info('inference call', {
        model: model.name,
        call: attempt,
        stop_reason: reply.stopReason,
        structured_output: reply.structuredOutput ?? model.structuredOutput,
        request_bytes: reply.requestBytes,
        response_bytes: reply.responseBytes,
        prompt_tokens: reply.usage.promptTokens,
        completion_tokens: reply.usage.completionTokens,
        duration_ms: now() - started,
      });
      return reply;
    } finally {
      release();
    }
  };

  let reply = await call(messages, 'first');
  let verdict = judge(reply, validator.check);
  if (verdict.ok === false && verdict.repairable) {
    ctx.log.info('inference output rejected; one repair attempt', {
      model: model.name,
      stop_reason: reply.stopReason,
      issues: verdict.issues.length,
    });
    reply = await call([...messages, ...repairTurns(reply, verdict.issues)], 'repair');
    verdict = judge(reply, validator.check);
  }
  const total = {
    prompt_tokens: usage.prompt,
    completion_tokens: usage.completion,
    total_tokens: usage.prompt + usage.completion,
  };
  if (verdict.ok) {
    return { type: 'model_inference_run', structured_output: verdict.value, usage: total };
  }
  throw verdict.error(total);
}

type Verdict =
  | { ok: true; value: Record<string, unknown> }
  | {
      ok: false;
      repairable: boolean;
      issues: OutputIssue[];
      error: (usage: InferenceResult['usage']) => JobError;
    };

/** What a reply is worth: a valid output, something one repair may fix, or the end of the job. */
function judge(reply: InferenceReply, check: (v: unknown) => OutputIssue[]): Verdict {
  const stop = { stop_reason: reply.stopReason };
  if (reply.stop === 'content_filtered' || reply.stop === 'guardrail') {
    const code = reply.stop === 'guardrail' ? 'GUARDRAIL_INTERVENED' : 'CONTENT_FILTERED';
    const what = reply.stop === 'guardrail' ? 'a guardrail intervened' : 'the content was filtered';
    return {
      ok: false,
      repairable: false,
      issues: [],
      error: (usage) =>
        new JobError(code, `the model gave no output: ${what} (stop reason ${reply.stopReason})`, {
          retryable: false,
          details: {
            ...stop,
            reason: reply.stop,
            ...(reply.blockedReason ? { blocked_reason: reply.blockedReason.slice(0, 500) } : {}),
            usage,
          },
        }),
    };
  }
  if (reply.stop === 'context_window_exceeded') {
    return {
      ok: false,
      repairable: false,
      issues: [],
      error: (usage) =>
        new JobError(
          'CONTEXT_WINDOW_EXCEEDED',
          `the messages and max_tokens exceed the model's context window (stop reason ${reply.stopReason})`,
          { retryable: false, details: { ...stop, usage } },
        ),
    };
  }
  const { value, text, issues } = parseOutput(reply, check);
  if (issues.length === 0 && reply.stop === 'complete') {
    return { ok: true, value: value as Record<string, unknown> };
  }
  const why =
    reply.stop === 'max_tokens'
      ? 'truncated at max_tokens'
      : reply.stop === 'malformed'
        ? 'malformed'
        : 'not valid against output_format_schema';
  const all =
    reply.stop === 'max_tokens' && issues.length === 0
      ? [{ path: '', message: 'the output was cut off at the max-token limit' }]
      : issues;
  return {
    ok: false,
    repairable: true,
    issues: all,
    error: (usage) =>
      new JobError(
        'OUTPUT_INVALID',
        `the model's output was ${why}, after one repair attempt (stop reason ${reply.stopReason}; ${all.length} issue(s))`,
        {
          retryable: false,
          details: {
            ...stop,
            issues: all.slice(0, 20),
            output_excerpt: text.slice(0, OUTPUT_EXCERPT_CHARS),
            output_chars: text.length,
            usage,
          },
        },
      ),
  };
}

function parseOutput(
  reply: InferenceReply,
  check: (v: unknown) => OutputIssue[],
): { value: unknown; text: string; issues: OutputIssue[] } {
  if (reply.value !== undefined) {
    const text = JSON.stringify(reply.value) ?? '';
    return { value: reply.value, text, issues: check(reply.value) };
  }
  const text = reply.text ?? '';
  if (text.trim() === '') {
    return { value: undefined, text, issues: [{ path: '', message: 'the output was empty' }] };
  }
  let value: unknown;
  try {
    value = JSON.parse(stripFence(text));
  } catch (err) {
    return { value: undefined, text, issues: [{ path: '', message: `not JSON: ${(err as Error).message}` }] };
  }
  return { value, text, issues: check(value) };
}

/** Some servers wrap JSON in a Markdown fence even when asked for JSON: accept that one wrapping. */
function stripFence(text: string): string {
  const m = /^\s*```(?:json)?\s*\n([\s\S]*?)\n?```\s*$/.exec(text);
  return m ? (m[1] as string) : text;
}

/** The repair: the previous output as the assistant's turn, then the errors as the user's. */
function repairTurns(reply: InferenceReply, issues: OutputIssue[]): ChatTurn[] {
  const previous = reply.value !== undefined ? (JSON.stringify(reply.value) ?? '') : (reply.text ?? '');
  const lines = issues.slice(0, 20).map((i) => `- ${i.path || '(root)'}: ${i.message}`);
  const truncated = reply.stop === 'max_tokens';
  const turns: ChatTurn[] = [];
  if (previous.trim() !== '') {
    turns.push({ role: 'assistant', text: previous.slice(0, REPAIR_ECHO_CHARS) });
  }
  turns.push({
    role: 'user',
    text: [
      truncated
        ? 'Your previous answer was cut off at the maximum number of output tokens. Answer again, more concisely.'
        : 'Your previous answer does not match the required JSON schema.',
      ...(lines.length ? ['Validation errors:', ...lines] : []),
      'Answer again with only a JSON object that matches the schema, with no other text.',
    ].join('\n'),
  });
  return turns;
}
