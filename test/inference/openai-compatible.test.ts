/**
 * model_inference_run on the openai-compatible executor against an OpenAI-compatible fake server on
 * 127.0.0.1, through the daemon and the bundled control plane.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOpenAiCompatibleConfig } from '../../executors/openai-compatible/config.ts';
import { OpenAiCompatibleExecutor } from '../../executors/openai-compatible/executor.ts';
import {
  type ChatRequestSeen,
  chatAnswer,
  type FakeChatReply,
  type FakeOpenAi,
  startFakeOpenAi,
} from '../fakes/openai.ts';
import { waitFor } from '../helpers.ts';
import {
  type InferenceStack,
  richOutput,
  richSchema,
  seedInput,
  seedOutput,
  startInferenceStack,
} from './support.ts';

let fake: FakeOpenAi;
let s: InferenceStack;
let respond: (req: ChatRequestSeen) => FakeChatReply = (req) => chatAnswer(req, seedOutput);
const API_KEY = 'sk-local-test-key-3c1d';

beforeAll(async () => {
  fake = await startFakeOpenAi((req) => respond(req));
  const dir = mkdtempSync(join(tmpdir(), 'dpo-openai-'));
  writeFileSync(join(dir, 'api-key'), `${API_KEY}\n`);
  const executor = new OpenAiCompatibleExecutor(
    loadOpenAiCompatibleConfig({
      DPO_OPENAI_COMPAT_BASE_URL: `${fake.url}/`,
      DPO_OPENAI_COMPAT_API_KEY_FILE: join(dir, 'api-key'),
      DPO_OPENAI_COMPAT_MAX_ATTEMPTS: '3',
      DPO_OPENAI_COMPAT_REQUEST_TIMEOUT_MS: '10000',
      DPO_OPENAI_COMPAT_MODELS: JSON.stringify({
        'anthropic.claude-sonnet-4.5': 'qwen2.5:7b-instruct',
        'test.tool-model': { id: 'llama-3.1-8b', structured_output: 'tool' },
      }),
    }),
  );
  s = await startInferenceStack(executor);
});
afterAll(async () => {
  await s?.stop();
  await fake?.close();
});

const requestsOf = (marker: string) =>
  fake.requests.filter((r) => JSON.stringify(r.body.messages).includes(marker));

function input(marker: string, patch: (i: ReturnType<typeof seedInput>) => void = () => {}) {
  const i = seedInput();
  (i.messages[1] as { text: string }).text += ` [${marker}]`;
  patch(i);
  return i;
}

describe('openai-compatible: output', () => {
  it('completes with a JSON-schema response format, the mapped model and the key from its file', async () => {
    respond = (req) => chatAnswer(req, seedOutput);
    const done = await s.settle((await s.submit(input('valid-1'))).id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    expect(done.result).toEqual({
      type: 'model_inference_run',
      structured_output: seedOutput,
      usage: { prompt_tokens: 150, completion_tokens: 25, total_tokens: 175 },
    });
    const [req] = requestsOf('valid-1');
    expect(req?.authorization).toBe(`Bearer ${API_KEY}`);
    expect(req?.body).toMatchObject({
      model: 'qwen2.5:7b-instruct',
      max_tokens: 1000,
      temperature: 0.1,
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'structured_output', schema: seedInput().inference_config.output_format_schema },
      },
    });
    expect(req?.body.top_p).toBeUndefined();
    expect(req?.body.messages.map((m: { role: string }) => m.role)).toEqual(['system', 'user']);
  });

  it('tool mode: one forced function; its arguments are the output', async () => {
    respond = (req) => chatAnswer(req, richOutput);
    const done = await s.settle(
      (
        await s.submit(
          input('tool-rich', (i) => {
            i.model = 'test.tool-model';
            i.inference_config.output_format_schema = richSchema as never;
          }),
        )
      ).id,
    );
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    expect(done.result).toMatchObject({ structured_output: richOutput });
    const [req] = requestsOf('tool-rich');
    expect(req?.body.tool_choice).toEqual({ type: 'function', function: { name: 'structured_output' } });
    expect(req?.body.tools[0].function.parameters).toEqual(richSchema);
    expect(req?.body.response_format).toBeUndefined();
  });

  it('repairs once with the errors, and fails with an excerpt when the repair is invalid too', async () => {
    let n = 0;
    respond = (req) => chatAnswer(req, n++ === 0 ? 'not json at all' : seedOutput);
    const ok = await s.settle((await s.submit(input('repair-ok'))).id);
    expect(ok.state, JSON.stringify(ok.failures)).toBe('completed');
    expect(ok.result).toMatchObject({
      usage: { prompt_tokens: 300, completion_tokens: 50, total_tokens: 350 },
    });
    const second = requestsOf('repair-ok')[1];
    expect(second?.body.messages.map((m: { role: string }) => m.role)).toEqual([
      'system',
      'user',
      'assistant',
      'user',
    ]);
    expect(second?.body.messages[3].content).toContain('not JSON');

    respond = (req) => chatAnswer(req, { company_name: 42, revenue: 1 });
    const bad = await s.settle((await s.submit(input('repair-fail'))).id);
    expect(bad.state).toBe('failed');
    expect(bad.failures[0]).toMatchObject({
      code: 'OUTPUT_INVALID',
      retryable: false,
      details: {
        output_excerpt: '{"company_name":42,"revenue":1}',
        issues: [{ path: '/company_name', message: 'must be string' }],
      },
    });
    expect(requestsOf('repair-fail')).toHaveLength(2);
  });

  it('truncation (finish_reason length) is repaired', async () => {
    let n = 0;
    respond = (req) => (n++ === 0 ? chatAnswer(req, '{"company_na', 'length') : chatAnswer(req, seedOutput));
    const done = await s.settle((await s.submit(input('truncated'))).id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    expect(requestsOf('truncated')[1]?.body.messages[3].content).toContain('cut off');
  });

  it('a content filter or a refusal fails at once, not retryably', async () => {
    respond = () => ({ content: null, finish_reason: 'content_filter' });
    const filtered = await s.settle((await s.submit(input('filtered'))).id);
    respond = () => ({ content: null, refusal: 'I cannot help with that.', finish_reason: 'stop' });
    const refused = await s.settle((await s.submit(input('refused'))).id);
    expect(filtered.failures[0]).toMatchObject({ code: 'CONTENT_FILTERED', retryable: false });
    expect(refused.failures[0]).toMatchObject({ code: 'CONTENT_FILTERED', retryable: false });
    expect(refused.failures[0]?.details).toMatchObject({ stop_reason: 'stop (refusal)' });
    expect(requestsOf('filtered')).toHaveLength(1);
    expect(requestsOf('refused')).toHaveLength(1);
  });
});

describe('openai-compatible: errors', () => {
  it('a burst of 429s (with Retry-After) and a 503 are retried within the attempts', async () => {
    respond = (req) => chatAnswer(req, seedOutput);
    fake.queue.push(
      { status: 429, message: 'busy', retryAfter: '0' },
      { status: 503, message: 'loading model' },
    );
    const done = await s.settle((await s.submit(input('burst-short'))).id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    expect(requestsOf('burst-short')).toHaveLength(3);
  });

  it('a server busy past the attempts asks the control plane to retry later', async () => {
    respond = () => ({ status: 429, message: 'too many requests', retryAfter: '0' });
    // One attempt only: a busy server's failure gives it back (FailureReport.throttled).
    const job = await s.submit(input('burst-long'), { max_attempts: 1 });
    const retried = await waitFor(
      async () => {
        const j = await s.get(job.id);
        return j.failures.length > 0 && j.state === 'pending' ? j : undefined;
      },
      { what: 'the busy attempt to fail' },
    );
    expect(retried.failures[0]).toMatchObject({
      code: 'MODEL_UNAVAILABLE',
      retryable: true,
      throttled: true,
    });
    expect(retried.attempt).toBe(0);
    expect(requestsOf('burst-long')).toHaveLength(3);
    const delay =
      Date.parse(retried.not_before as string) - Date.parse(retried.failures[0]?.timestamp as string);
    expect(delay).toBeGreaterThanOrEqual(2_900);
    await s.cancel(job.id);
    expect((await s.settle(job.id)).state).toBe('cancelled');
  });

  it('persistent 500s fail the attempt retryably; 401 fails it for good', async () => {
    respond = () => ({ status: 500, message: 'CUDA out of memory' });
    const five = await s.settle((await s.submit(input('500'), { max_attempts: 1 })).id);
    expect(five.failures[0]).toMatchObject({
      code: 'MODEL_UNAVAILABLE',
      retryable: true,
      details: { http_status: 500, busy: false },
    });
    expect(five.failures[0]?.message).toContain('CUDA out of memory');
    // 500 is not a transient answer to retry in place (502, 503, 504 are): one request.
    expect(requestsOf('500')).toHaveLength(1);
    respond = () => ({ status: 401, message: 'invalid api key' });
    const auth = await s.settle((await s.submit(input('401'))).id);
    expect(auth.state).toBe('failed');
    expect(auth.failures).toHaveLength(1);
    expect(auth.failures[0]).toMatchObject({ code: 'MODEL_SERVER_AUTH', retryable: false });
  });

  it('a cancel in the middle of a request aborts it; the job ends cancelled', async () => {
    respond = () => ({ hang: true });
    const abortedBefore = fake.aborted;
    const job = await s.submit(input('cancel-mid'));
    await waitFor(() => requestsOf('cancel-mid').length === 1 && fake.hanging() === 1, {
      what: 'the request in flight',
    });
    await s.cancel(job.id);
    expect((await s.settle(job.id)).state).toBe('cancelled');
    await waitFor(() => fake.aborted > abortedBefore, { what: 'the server to see the request aborted' });
    expect(fake.hanging()).toBe(0);
  });

  it('a server that refuses connections is retried, then fails the attempt retryably', async () => {
    // A port that was free a moment ago: nothing listens there.
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const executor = new OpenAiCompatibleExecutor(
      loadOpenAiCompatibleConfig({
        DPO_OPENAI_COMPAT_BASE_URL: `http://127.0.0.1:${port}/v1`,
        DPO_OPENAI_COMPAT_MAX_ATTEMPTS: '2',
        DPO_OPENAI_COMPAT_MODELS: JSON.stringify({ 'anthropic.claude-sonnet-4.5': 'm' }),
      }),
    );
    const { createTestContext, testJob } = await import('../../src/executor/testing.ts');
    const t = createTestContext();
    const err = await executor.execute(testJob('model_inference_run', input('refused-conn')), t.ctx).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'MODEL_SERVER_UNREACHABLE', retryable: true });
    // An outage: the outage budget of attempt 1 (1-2 min) before the job is offered again.
    expect((err as { retryAfterMs: number }).retryAfterMs).toBeGreaterThanOrEqual(60_000);
    expect((err as { retryAfterMs: number }).retryAfterMs).toBeLessThan(120_000);
    expect(
      t.lines.some((l) => l.msg === 'inference call failed' && l.fields?.code === 'MODEL_SERVER_UNREACHABLE'),
    ).toBe(true);
  });
});
