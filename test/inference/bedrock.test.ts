/**
 * model_inference_run on the bedrock executor: the real Bedrock Runtime client (its default HTTP/2
 * handler) against an h2c Converse fake on 127.0.0.1, through the daemon and the bundled control plane.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBedrockConfig } from '../../executors/bedrock/config.ts';
import { BedrockExecutor } from '../../executors/bedrock/executor.ts';
import {
  answer,
  type ConverseRequestSeen,
  type FakeBedrock,
  type FakeReply,
  startFakeBedrock,
} from '../fakes/bedrock.ts';
import { waitFor } from '../helpers.ts';
import {
  type InferenceStack,
  richOutput,
  richSchema,
  seedInput,
  seedOutput,
  startInferenceStack,
} from './support.ts';

let fake: FakeBedrock;
let s: InferenceStack;
/** What the fake answers when nothing is queued; each test sets it. */
let respond: (req: ConverseRequestSeen) => FakeReply = (req) => answer(req, seedOutput);
const PROFILE = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';

beforeAll(async () => {
  fake = await startFakeBedrock({ respond: (req) => respond(req) });
  const executor = new BedrockExecutor(
    loadBedrockConfig({
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: fake.url,
      DPO_BEDROCK_MAX_ATTEMPTS: '3',
      DPO_BEDROCK_REQUEST_TIMEOUT_MS: '10000',
      DPO_BEDROCK_MODELS: JSON.stringify({
        'test.tool-model': { id: 'test.tool-model-v1:0', structured_output: 'tool' },
        'anthropic.claude-opus-4.1': null,
      }),
    }),
  );
  s = await startInferenceStack(executor);
});
afterAll(async () => {
  await s?.stop();
  await fake?.close();
});

/** The requests the fake saw for one job (each job's prompt carries its id). */
const requestsOf = (marker: string) =>
  fake.requests.filter((r) => JSON.stringify(r.body.messages).includes(marker));

function input(marker: string, patch: (i: ReturnType<typeof seedInput>) => void = () => {}) {
  const i = seedInput();
  (i.messages[1] as { text: string }).text += ` [${marker}]`;
  patch(i);
  return i;
}

describe('bedrock: valid output', () => {
  it('completes with the validated output and its usage; the request has the documented shape', async () => {
    respond = (req) => answer(req, seedOutput);
    const job = await s.submit(input('valid-1'));
    const done = await s.settle(job.id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    expect(done.result).toEqual({
      type: 'model_inference_run',
      structured_output: seedOutput,
      usage: { prompt_tokens: 150, completion_tokens: 25, total_tokens: 175 },
    });
    const [req] = requestsOf('valid-1');
    expect(req?.signed).toBe(true);
    // The catalogue name maps to the geographic inference profile of the region.
    expect(req?.modelId).toBe(PROFILE);
    expect(req?.body.system).toEqual([
      { text: 'You are a helpful assistant that extracts structured data.' },
    ]);
    expect(req?.body.messages).toHaveLength(1);
    expect(req?.body.messages[0].role).toBe('user');
    // temperature alone, never with topP; the job's max tokens.
    expect(req?.body.inferenceConfig).toEqual({ maxTokens: 1000, temperature: 0.1 });
    // Native structured output for this model: the job's schema as JSON text.
    expect(req?.body.outputConfig.textFormat.type).toBe('json_schema');
    expect(JSON.parse(req?.body.outputConfig.textFormat.structure.jsonSchema.schema)).toEqual(
      seedInput().inference_config.output_format_schema,
    );
    expect(req?.body.toolConfig).toBeUndefined();
  });

  it('asks a tool-mode model for one forced tool whose input schema is the output schema', async () => {
    respond = (req) => answer(req, seedOutput);
    const job = await s.submit(
      input('tool-1', (i) => {
        i.model = 'test.tool-model';
        delete (i.inference_config as { temperature?: number }).temperature;
      }),
    );
    const done = await s.settle(job.id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    expect(done.result).toMatchObject({ structured_output: seedOutput });
    const [req] = requestsOf('tool-1');
    expect(req?.modelId).toBe('test.tool-model-v1:0');
    expect(req?.body.toolConfig.toolChoice).toEqual({ tool: { name: 'structured_output' } });
    expect(req?.body.toolConfig.tools[0].toolSpec.inputSchema.json).toEqual(
      seedInput().inference_config.output_format_schema,
    );
    expect(req?.body.outputConfig).toBeUndefined();
    expect(req?.body.inferenceConfig).toEqual({ maxTokens: 1000 });
  });

  it('validates a schema with $ref, enums, nested arrays and formats, and repairs a format error', async () => {
    let n = 0;
    respond = (req) =>
      answer(
        req,
        n++ === 0 ? { ...richOutput, contacts: [{ email: 'not-an-email', role: 'owner' }] } : richOutput,
      );
    const job = await s.submit(
      input('rich-1', (i) => (i.inference_config.output_format_schema = richSchema as never)),
    );
    const done = await s.settle(job.id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    expect(done.result).toMatchObject({ structured_output: richOutput });
    const reqs = requestsOf('rich-1');
    expect(reqs).toHaveLength(2);
    const repair = JSON.stringify(reqs[1]?.body.messages);
    expect(repair).toContain('/contacts/0/email: must match format');
    expect(repair).toContain('/contacts/0/role: must be equal to one of the allowed values');
  });
});

describe('bedrock: native structured output refused', () => {
  it('a schema the model refuses natively is asked again, once, with the forced tool', async () => {
    respond = (req) =>
      req.body.outputConfig
        ? {
            status: 400,
            errorType: 'ValidationException',
            message: 'The provided JSON schema is not supported',
          }
        : answer(req, seedOutput);
    const job = await s.submit(input('native-refused'));
    const done = await s.settle(job.id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    expect(done.result).toMatchObject({ structured_output: seedOutput });
    const reqs = requestsOf('native-refused');
    expect(reqs.map((r) => (r.body.outputConfig ? 'native' : r.body.toolConfig ? 'tool' : '?'))).toEqual([
      'native',
      'tool',
    ]);
    const line = s.daemonLog.find((l) => l.includes(job.id) && l.includes('"inference call"'));
    expect(JSON.parse(line as string)).toMatchObject({ structured_output: 'tool (native refused)' });
  });

  it('a ValidationException in tool mode too fails the job, not retryably, after those two calls', async () => {
    respond = () => ({ status: 400, errorType: 'ValidationException', message: 'Malformed input request' });
    const done = await s.settle((await s.submit(input('invalid-both'))).id);
    expect(done.state).toBe('failed');
    expect(done.failures[0]).toMatchObject({ code: 'AWS_REQUEST_REJECTED', retryable: false });
    expect(done.failures[0]?.message).toContain('ValidationException: Malformed input request');
    expect(requestsOf('invalid-both')).toHaveLength(2);
  });
});

describe('bedrock: repair', () => {
  it('one repair that succeeds: the errors go to the model, usage is summed over both calls', async () => {
    let n = 0;
    respond = (req) => answer(req, n++ === 0 ? { company_name: 'Acme Corp', revenue: '1.5M' } : seedOutput);
    const job = await s.submit(input('repair-ok'));
    const done = await s.settle(job.id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    expect(done.result).toMatchObject({
      structured_output: seedOutput,
      usage: { prompt_tokens: 300, completion_tokens: 50, total_tokens: 350 },
    });
    const [first, second] = requestsOf('repair-ok');
    expect(first?.body.messages).toHaveLength(1);
    // user, assistant (the invalid output), user (the errors): roles alternate.
    expect(second?.body.messages.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(second?.body.messages[1].content[0].text).toBe('{"company_name":"Acme Corp","revenue":"1.5M"}');
    expect(second?.body.messages[2].content[0].text).toContain('/revenue: must be number');
  });

  it('a repair that fails too fails the job, not retryably, with an excerpt and the errors', async () => {
    respond = (req) => answer(req, { company_name: 'Acme Corp' });
    const job = await s.submit(input('repair-fail'));
    const done = await s.settle(job.id);
    expect(done.state).toBe('failed');
    expect(done.failures).toHaveLength(1);
    expect(done.failures[0]).toMatchObject({
      code: 'OUTPUT_INVALID',
      retryable: false,
      details: {
        stop_reason: 'end_turn',
        output_excerpt: '{"company_name":"Acme Corp"}',
        issues: [{ path: '/', message: "must have required property 'revenue'" }],
        usage: { prompt_tokens: 300, completion_tokens: 50, total_tokens: 350 },
      },
    });
    expect(requestsOf('repair-fail')).toHaveLength(2);
  });

  it('a truncated output (stop reason max_tokens) is repaired, told it was cut off', async () => {
    let n = 0;
    respond = (req) =>
      n++ === 0 ? answer(req, '{"company_name": "Acme Co', 'max_tokens') : answer(req, seedOutput);
    const job = await s.submit(input('truncated'));
    const done = await s.settle(job.id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    const reqs = requestsOf('truncated');
    expect(reqs).toHaveLength(2);
    expect(reqs[1]?.body.messages[2].content[0].text).toContain(
      'cut off at the maximum number of output tokens',
    );
    expect(reqs[1]?.body.inferenceConfig.maxTokens).toBe(1000);
  });

  it('a tool-mode answer without the tool call is a malformed tool use, repaired', async () => {
    let n = 0;
    respond = (req) =>
      n++ === 0
        ? { content: [{ text: 'Here is the data you asked for.' }], stopReason: 'end_turn' }
        : answer(req, seedOutput);
    const job = await s.submit(input('malformed', (i) => (i.model = 'test.tool-model')));
    const done = await s.settle(job.id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    expect(requestsOf('malformed')).toHaveLength(2);
  });
});

describe('bedrock: refusals and errors', () => {
  it('filtered content and a guardrail intervention fail at once, not retryably, with the reason', async () => {
    respond = () => ({ content: [], stopReason: 'content_filtered' });
    const filtered = await s.settle((await s.submit(input('filtered'))).id);
    respond = () => ({
      content: [{ text: 'Sorry.' }],
      stopReason: 'guardrail_intervened',
      trace: { guardrail: { actionReason: 'Guardrail blocked.' } },
    });
    const guarded = await s.settle((await s.submit(input('guardrail'))).id);
    expect(filtered.failures).toHaveLength(1);
    expect(filtered.failures[0]).toMatchObject({
      code: 'CONTENT_FILTERED',
      retryable: false,
      details: { stop_reason: 'content_filtered' },
    });
    expect(guarded.failures[0]).toMatchObject({
      code: 'GUARDRAIL_INTERVENED',
      retryable: false,
      details: { stop_reason: 'guardrail_intervened', blocked_reason: 'Guardrail blocked.' },
    });
    expect([filtered.state, guarded.state]).toEqual(['failed', 'failed']);
    expect(requestsOf('filtered')).toHaveLength(1);
    expect(requestsOf('guardrail')).toHaveLength(1);
  });

  it('a burst of throttling within the SDK’s attempts is absorbed; the SDK retries it with backoff', async () => {
    respond = (req) => answer(req, seedOutput);
    const throttled = {
      status: 429,
      errorType: 'ThrottlingException',
      message: 'Too many requests',
    } as const;
    const notReady = {
      status: 429,
      errorType: 'ModelNotReadyException',
      message: 'Model is not ready',
    } as const;
    fake.queue.push(throttled, notReady);
    const done = await s.settle((await s.submit(input('burst-short'))).id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    expect(done.failures).toEqual([]);
    expect(fake.queue).toHaveLength(0);
  });

  it('throttling past the SDK’s attempts asks the control plane to retry later (retry_after_ms)', async () => {
    respond = () => ({ status: 429, errorType: 'ThrottlingException', message: 'Too many requests' });
    // One attempt only: a throttled failure gives it back (FailureReport.throttled), so it stays pending.
    const job = await s.submit(input('burst-long'), { max_attempts: 1 });
    const retried = await waitFor(
      async () => {
        const j = await s.get(job.id);
        return j.failures.length > 0 && j.state === 'pending' ? j : undefined;
      },
      { what: 'the throttled attempt to fail', timeoutMs: 15_000 },
    );
    expect(retried.failures[0]).toMatchObject({ code: 'AWS_UNAVAILABLE', retryable: true, throttled: true });
    expect(retried.attempt).toBe(0);
    expect(retried.failures[0]?.message).toContain('ThrottlingException');
    // The SDK's three attempts, then the control plane's retry no sooner than 3 s later.
    expect(requestsOf('burst-long')).toHaveLength(3);
    const delay =
      Date.parse(retried.not_before as string) - Date.parse(retried.failures[0]?.timestamp as string);
    expect(delay).toBeGreaterThanOrEqual(2_900);
    expect(delay).toBeLessThanOrEqual(6_100);
    await s.cancel(job.id);
    expect((await s.settle(job.id)).state).toBe('cancelled');
  });

  it('5xx: a 503 is retried by the SDK; persistent 500s fail the attempt retryably', async () => {
    respond = (req) => answer(req, seedOutput);
    fake.queue.push({ status: 503, errorType: 'ServiceUnavailableException', message: 'try again' });
    const ok = await s.settle((await s.submit(input('5xx-once'))).id);
    expect(ok.state, JSON.stringify(ok.failures)).toBe('completed');
    expect(requestsOf('5xx-once')).toHaveLength(2);

    respond = () => ({ status: 500, errorType: 'InternalServerException', message: 'boom' });
    const job = await s.submit(input('5xx-always'));
    const bad = await waitFor(
      async () => {
        const j = await s.get(job.id);
        return j.failures.length > 0 && j.state === 'pending' ? j : undefined;
      },
      { what: 'the failed attempt' },
    );
    expect(bad.failures[0]).toMatchObject({
      code: 'AWS_UNAVAILABLE',
      retryable: true,
      details: { throttled: false, http_status: 500 },
    });
    expect(requestsOf('5xx-always')).toHaveLength(3);
    // An outage: the next attempt waits the outage budget of attempt 1 (1-2 min), not 3-6 s.
    const delay = Date.parse(bad.not_before as string) - Date.parse(bad.failures[0]?.timestamp as string);
    expect(delay).toBeGreaterThanOrEqual(59_900);
    expect(delay).toBeLessThanOrEqual(120_100);
    await s.cancel(job.id);
    expect((await s.settle(job.id)).state).toBe('cancelled');
  });

  it('access denied and expired credentials fail at once, not retryably, without SDK retries', async () => {
    respond = () => ({
      status: 403,
      errorType: 'AccessDeniedException',
      message: 'User is not authorized to perform: bedrock:InvokeModel',
    });
    const denied = await s.settle((await s.submit(input('denied'))).id);
    respond = () => ({
      status: 403,
      errorType: 'ExpiredTokenException',
      message: 'The security token included in the request is expired',
    });
    const expired = await s.settle((await s.submit(input('expired'))).id);
    expect(denied.state).toBe('failed');
    expect(denied.failures).toHaveLength(1);
    expect(denied.failures[0]).toMatchObject({ code: 'AWS_ACCESS_DENIED', retryable: false });
    expect(expired.state).toBe('failed');
    expect(expired.failures).toHaveLength(1);
    expect(expired.failures[0]).toMatchObject({ code: 'AWS_CREDENTIALS', retryable: false });
    expect(requestsOf('denied')).toHaveLength(1);
    expect(requestsOf('expired')).toHaveLength(1);
  });

  it('a cancel in the middle of a request resets its HTTP/2 stream; the job ends cancelled', async () => {
    respond = () => ({ hang: true });
    const resetsBefore = fake.resets.length;
    const job = await s.submit(input('cancel-mid'));
    await waitFor(() => requestsOf('cancel-mid').length === 1 && fake.hanging() === 1, {
      what: 'the request in flight',
    });
    await s.cancel(job.id);
    const done = await s.settle(job.id);
    expect(done.state).toBe('cancelled');
    await waitFor(() => fake.resets.length > resetsBefore, { what: 'the stream reset' });
    expect(fake.resets.at(-1)).toMatchObject({ modelId: PROFILE });
    expect(fake.hanging()).toBe(0);
  });
});

describe('bedrock: refused before any call', () => {
  it('an unmapped model name is INVALID_INPUT listing the configured names', async () => {
    const done = await s.settle(
      (await s.submit(input('unmapped', (i) => (i.model = 'anthropic.claude-opus-4.1')))).id,
    );
    expect(done.state).toBe('failed');
    expect(done.failures[0]).toMatchObject({ code: 'INVALID_INPUT', retryable: false });
    expect(done.failures[0]?.message).toContain("model 'anthropic.claude-opus-4.1' is not configured");
    expect(done.failures[0]?.message).toContain('anthropic.claude-sonnet-4.5, openai.gpt-oss-120b');
    expect(done.failures[0]?.message).toContain('test.tool-model');
    expect(requestsOf('unmapped')).toHaveLength(0);
  });

  it('an output schema that is not a JSON Schema is INVALID_INPUT', async () => {
    const done = await s.settle(
      (
        await s.submit(
          input('bad-schema', (i) => (i.inference_config.output_format_schema = { type: 'objekt' } as never)),
        )
      ).id,
    );
    expect(done.failures[0]).toMatchObject({ code: 'INVALID_INPUT', retryable: false });
    expect(done.failures[0]?.message).toContain('not a valid JSON Schema');
    expect(requestsOf('bad-schema')).toHaveLength(0);
  });
});

describe('bedrock: customer data', () => {
  it('never reaches the daemon’s log; the job’s log has sizes, timings and stop reasons', async () => {
    const secretPrompt = 'CUSTOMER-PROMPT-7f3a9';
    const secretOutput = 'CUSTOMER-OUTPUT-b81e2';
    respond = (req) => answer(req, { company_name: secretOutput, revenue: 1 });
    const job = await s.submit(
      input('privacy', (i) => {
        (i.messages[0] as { text: string }).text += ` ${secretPrompt}`;
      }),
    );
    const done = await s.settle(job.id);
    expect(done.state).toBe('completed');
    const lines = await waitFor(
      async () => {
        const l = await s.jobLog(job.id);
        return l.some((x) => x.msg.includes('inference call')) ? l : undefined;
      },
      { what: 'the job log' },
    );
    const mine = s.daemonLog.filter((l) => l.includes(job.id));
    expect(mine.some((l) => l.includes('"inference call"') && l.includes('"response_bytes"'))).toBe(true);
    const call = JSON.parse(mine.find((l) => l.includes('"inference call"')) as string);
    expect(call).toMatchObject({ stop_reason: 'end_turn', prompt_tokens: 150, completion_tokens: 25 });
    expect(call.duration_ms).toBeGreaterThanOrEqual(0);
    expect(call.request_bytes).toBeGreaterThan(secretPrompt.length);
    for (const l of s.daemonLog) {
      expect(l).not.toContain(secretPrompt);
      expect(l).not.toContain(secretOutput);
      expect(l).not.toContain('Acme Corp reported');
    }
    expect(JSON.stringify(lines)).not.toContain(secretPrompt);
    expect(JSON.stringify(lines)).not.toContain(secretOutput);
  });
});
