/**
 * `dev` with a model server on the laptop: DPO_OPENAI_COMPAT_BASE_URL enables the openai-compatible
 * executor beside DuckDB, and a model_inference_run completes on it (the fake server stands in for
 * Ollama or vLLM).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DevStack, startDevStack } from '../../src/cli/dev-stack.ts';
import type { Job } from '../../src/contract/index.ts';
import { chatAnswer, type FakeOpenAi, startFakeOpenAi } from '../fakes/openai.ts';
import { call } from '../helpers.ts';
import { seedInput, seedOutput } from './support.ts';

let fake: FakeOpenAi;
let stack: DevStack | undefined;
const adminToken = randomBytes(18).toString('base64url');

beforeAll(async () => {
  fake = await startFakeOpenAi((req) => chatAnswer(req, seedOutput));
});
afterAll(async () => {
  await stack?.stop();
  await fake?.close();
});

describe('dev with DPO_OPENAI_COMPAT_BASE_URL', () => {
  it('runs model_inference_run on the model server, beside the local data plane', async () => {
    stack = await startDevStack({
      env: {
        DPO_OPENAI_COMPAT_BASE_URL: fake.url,
        DPO_OPENAI_COMPAT_MODELS: JSON.stringify({ 'anthropic.claude-sonnet-4.5': 'qwen2.5:7b-instruct' }),
        DPO_METRICS_LISTEN: 'off',
      },
      dataDir: mkdtempSync(join(tmpdir(), 'dpo-dev-inference-')),
      cpHost: '127.0.0.1',
      cpPort: 0,
      adminToken,
      operatorToken: randomBytes(18).toString('base64url'),
      rows: 1_000,
      logger: pino({ level: 'silent' }),
    });
    const url = stack.cp.url;
    const submitted = await call<Job>(url, 'POST', '/v1/jobs', {
      token: adminToken,
      body: { type: 'model_inference_run', company_id: 56, data_plane_id: 'dp-local', input: seedInput() },
    });
    expect(submitted.status).toBe(201);
    const done = await call<Job>(url, 'GET', `/v1/jobs/${submitted.body.id}/wait?timeout_ms=15000`, {
      token: adminToken,
    });
    expect(done.body.state, JSON.stringify(done.body.failures)).toBe('completed');
    expect(done.body.result).toMatchObject({ structured_output: seedOutput });
    expect(fake.requests.map((r) => r.body.model)).toEqual(['qwen2.5:7b-instruct']);
  });
});
