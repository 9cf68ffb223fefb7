/**
 * The shared inference module's parts on their own: the model map (defaults, overrides, removal,
 * geography), the output schema's compilation, and the per-model concurrency limit (alone, and
 * wired into an executor against the OpenAI-compatible fake).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BEDROCK_DEFAULT_MODELS, loadBedrockConfig } from '../../executors/bedrock/config.ts';
import { converseRequest } from '../../executors/bedrock/executor.ts';
import { loadOpenAiCompatibleConfig } from '../../executors/openai-compatible/config.ts';
import { OpenAiCompatibleExecutor } from '../../executors/openai-compatible/executor.ts';
import { JobAbort } from '../../src/executor/index.ts';
import { compileOutputSchema, loadModelMap, ModelLimiter } from '../../src/executor/inference/index.ts';
import { createTestContext, testJob } from '../../src/executor/testing.ts';
import { ConfigError } from '../../src/lib/config.ts';
import { type FakeOpenAi, startFakeOpenAi } from '../fakes/openai.ts';
import { waitFor } from '../helpers.ts';
import { seedInput } from './support.ts';

const settings = {
  defaults: { a: 'id-a', b: { id: 'id-b-{geo}', structured_output: 'native' as const } },
  jsonVar: 'X_MODELS',
  fileVar: 'X_MODELS_FILE',
  defaultMode: 'tool' as const,
  defaultConcurrency: 3,
  substitutions: { geo: 'eu' },
};

describe('the model map', () => {
  it('merges the override over the defaults: replaces, adds, and removes with null', () => {
    const map = loadModelMap({
      ...settings,
      overrideJson: JSON.stringify({ a: { id: 'id-a2', concurrency: 9 }, c: 'id-c', b: null }),
    });
    expect(map.names).toEqual(['a', 'c']);
    expect(map.resolve('a')).toEqual({ name: 'a', id: 'id-a2', structuredOutput: 'tool', concurrency: 9 });
    expect(map.resolve('c')).toMatchObject({ id: 'id-c', concurrency: 3 });
    expect(() => map.resolve('b')).toThrow(
      /model 'b' is not configured on this data plane; configured: a, c/,
    );
  });

  it('reads the override from a file, and substitutes the geography in ids', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'dpo-models-')), 'models.json');
    writeFileSync(file, JSON.stringify({ d: 'id-d' }));
    const map = loadModelMap({ ...settings, overrideFile: file });
    expect(map.names).toEqual(['a', 'b', 'd']);
    expect(map.resolve('b')).toMatchObject({ id: 'id-b-eu', structuredOutput: 'native' });
  });

  it('refuses a malformed override, and both forms at once, naming the variable', () => {
    expect(() => loadModelMap({ ...settings, overrideJson: '{"a": ' })).toThrow(/X_MODELS: not JSON/);
    expect(() => loadModelMap({ ...settings, overrideJson: '{"a": {"id": "x", "mode": 1}}' })).toThrow(
      ConfigError,
    );
    expect(() => loadModelMap({ ...settings, overrideJson: '{}', overrideFile: '/x' })).toThrow(/not both/);
    expect(() => loadModelMap({ ...settings, overrideFile: '/nonexistent/models.json' })).toThrow(
      /X_MODELS_FILE: cannot read/,
    );
  });

  it('bedrock maps Claude names to the inference profile of the region’s geography', () => {
    const eu = loadBedrockConfig({ AWS_REGION: 'eu-central-1' }).models;
    const ap = loadBedrockConfig({ AWS_REGION: 'ap-northeast-1' }).models;
    expect(eu.resolve('anthropic.claude-sonnet-4.5').id).toBe('eu.anthropic.claude-sonnet-4-5-20250929-v1:0');
    expect(ap.resolve('anthropic.claude-sonnet-4.5').id).toBe(
      'apac.anthropic.claude-sonnet-4-5-20250929-v1:0',
    );
    expect(eu.names).toEqual(Object.keys(BEDROCK_DEFAULT_MODELS).sort());
    expect(() => loadBedrockConfig({})).toThrow(/DPO_BEDROCK_REGION/);
  });

  it('bedrock sends temperature alone and no system block when the job has none', () => {
    const models = loadBedrockConfig({ AWS_REGION: 'us-east-1' }).models;
    const req = converseRequest({
      model: models.resolve('openai.gpt-oss-20b'),
      system: [],
      messages: [
        { role: 'user', text: 'a' },
        { role: 'user', text: 'b' },
      ],
      schema: { type: 'object' },
      maxTokens: 7,
      temperature: 0,
      signal: new AbortController().signal,
    });
    expect(req.system).toBeUndefined();
    expect(req.inferenceConfig).toEqual({ maxTokens: 7, temperature: 0 });
    // Consecutive user turns become one message: Converse wants the roles to alternate.
    expect(req.messages).toEqual([{ role: 'user', content: [{ text: 'a' }, { text: 'b' }] }]);
  });
});

describe('the output schema', () => {
  it('refuses what is not a JSON Schema as INVALID_INPUT, and checks that the output is an object', () => {
    expect(() => compileOutputSchema({ type: 'objekt' })).toThrow(/not a valid JSON Schema/);
    expect(() => compileOutputSchema({ properties: { a: { $ref: '#/$defs/missing' } } })).toThrow(
      /not a valid JSON Schema/,
    );
    const v = compileOutputSchema({
      type: 'object',
      properties: { at: { type: 'string', format: 'date-time' } },
    });
    expect(v.check({ at: '2026-11-29T17:00:00Z' })).toEqual([]);
    expect(v.check({ at: 'yesterday' })).toEqual([{ path: '/at', message: 'must match format "date-time"' }]);
    expect(v.check([1])[0]).toEqual({ path: '', message: 'the structured output must be a JSON object' });
  });

  it('keeps two jobs’ schemas with one $id apart, and a schema seen again validates the same', () => {
    const id = 'https://schemas.example/answer.json';
    const numbers = { $id: id, type: 'object', properties: { n: { type: 'number' } } };
    const strings = { $id: id, type: 'object', properties: { n: { type: 'string' } } };
    expect(compileOutputSchema(numbers).check({ n: 1 })).toEqual([]);
    expect(compileOutputSchema(strings).check({ n: 1 })).toEqual([{ path: '/n', message: 'must be string' }]);
    expect(compileOutputSchema(structuredClone(numbers)).check({ n: 'x' })).toEqual([
      { path: '/n', message: 'must be number' },
    ]);
    // A refused schema stays refused (nothing half-registered).
    expect(() => compileOutputSchema({ $id: id, type: 'objekt' })).toThrow(/not a valid JSON Schema/);
    expect(() => compileOutputSchema({ $id: id, type: 'objekt' })).toThrow(/not a valid JSON Schema/);
  });
});

describe('the per-model concurrency limit', () => {
  it('admits `limit` holders per model, queues the rest in order, and drops a waiter that aborts', async () => {
    const limiter = new ModelLimiter();
    const never = new AbortController().signal;
    const r1 = await limiter.acquire('m', 1, never);
    const other = await limiter.acquire('n', 1, never);
    const order: string[] = [];
    const p2 = limiter.acquire('m', 1, never).then((r) => {
      order.push('2');
      return r;
    });
    const quit = new AbortController();
    const p3 = limiter.acquire('m', 1, quit.signal);
    const p4 = limiter.acquire('m', 1, never).then((r) => {
      order.push('4');
      return r;
    });
    quit.abort(new JobAbort('cancel'));
    await expect(p3).rejects.toBeInstanceOf(JobAbort);
    expect(limiter.inFlight('m')).toBe(1);
    r1();
    r1(); // a second release is a no-op
    const r2 = await p2;
    expect(order).toEqual(['2']);
    r2();
    (await p4)();
    other();
    expect(order).toEqual(['2', '4']);
    expect(limiter.inFlight('m')).toBe(0);
  });

  describe('wired into an executor', () => {
    let fake: FakeOpenAi;
    beforeAll(async () => {
      fake = await startFakeOpenAi(() => ({ hang: true }));
    });
    afterAll(async () => fake.close());

    it('a second job on a model at its limit sends nothing until the first call ends', async () => {
      const executor = new OpenAiCompatibleExecutor(
        loadOpenAiCompatibleConfig({
          DPO_OPENAI_COMPAT_BASE_URL: fake.url,
          DPO_OPENAI_COMPAT_MODELS: JSON.stringify({
            'anthropic.claude-sonnet-4.5': { id: 'm', concurrency: 1 },
          }),
        }),
      );
      const a = createTestContext();
      const b = createTestContext();
      const ra = executor
        .execute(testJob('model_inference_run', seedInput()), a.ctx)
        .catch((e: unknown) => e);
      await waitFor(() => fake.hanging() === 1, { what: 'the first call' });
      const rb = executor
        .execute(testJob('model_inference_run', seedInput()), b.ctx)
        .catch((e: unknown) => e);
      // The second job queues for the model's slot, and sends nothing while it waits…
      await waitFor(() => b.lines.some((l) => l.msg === 'inference waits for a model slot'), {
        what: 'the second job to queue',
      });
      expect(b.lines.find((l) => l.msg === 'inference waits for a model slot')?.fields).toEqual({
        model: 'anthropic.claude-sonnet-4.5',
        in_flight: 1,
      });
      expect(fake.requests).toHaveLength(1);
      // …until the first call ends (cancelled): then its call goes out.
      a.abort('cancel');
      expect(await ra).toBeInstanceOf(JobAbort);
      await waitFor(() => fake.requests.length === 2, { what: 'the second call' });
      expect(fake.hanging()).toBe(1);
      b.abort('cancel');
      expect(await rb).toBeInstanceOf(JobAbort);
    });
  });
});
