/**
 * The inference executors through the daemon and the bundled control plane, against protocol-level
 * fakes on 127.0.0.1 (Bedrock Runtime over h2c, an OpenAI-compatible server), with the daemon's log
 * captured so a test can prove that no prompt or output reaches it.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import type { Job } from '../../src/contract/index.ts';
import type { Executor } from '../../src/executor/index.ts';
import { call, clients, startTestControlPlane, type TestControlPlane } from '../helpers.ts';
import { startTestDaemon, type TestDaemon } from '../support/daemon.ts';

// The SDK's default credential chain finds these; nothing may look for real ones. Bearer auth off.
Object.assign(process.env, {
  AWS_ACCESS_KEY_ID: 'AKIAFAKEFAKEFAKEFAKE',
  AWS_SECRET_ACCESS_KEY: 'fake-secret-for-tests-only',
  AWS_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_CONFIG_FILE: '/nonexistent/aws-config',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
});
delete process.env.AWS_BEARER_TOKEN_BEDROCK;

/** The seed's example input (000_*: model_inference_run). */
export const seedInput = () => ({
  model: 'anthropic.claude-sonnet-4.5',
  messages: [
    { role: 'system', text: 'You are a helpful assistant that extracts structured data.' },
    {
      role: 'user',
      text: 'Extract the company name and revenue from: Acme Corp reported $1.5M in Q4 revenue.',
    },
  ],
  inference_config: {
    output_format_schema: {
      type: 'object',
      properties: { company_name: { type: 'string' }, revenue: { type: 'number' } },
      required: ['company_name', 'revenue'],
    },
    max_tokens: 1000,
    temperature: 0.1,
  },
});
export const seedOutput = { company_name: 'Acme Corp', revenue: 1500000 };

/** A schema with $ref, enums, nested arrays and formats. */
export const richSchema = {
  type: 'object',
  $defs: {
    contact: {
      type: 'object',
      properties: {
        email: { type: 'string', format: 'email' },
        role: { enum: ['buyer', 'seller', 'broker'] },
      },
      required: ['email', 'role'],
      additionalProperties: false,
    },
  },
  properties: {
    signed_on: { type: 'string', format: 'date' },
    website: { type: 'string', format: 'uri' },
    contacts: { type: 'array', items: { $ref: '#/$defs/contact' }, minItems: 1 },
    matrix: { type: 'array', items: { type: 'array', items: { type: 'integer' } } },
  },
  required: ['signed_on', 'contacts', 'matrix'],
};
export const richOutput = {
  signed_on: '2026-11-29',
  website: 'https://acme.example/deals',
  contacts: [
    { email: 'ana@acme.example', role: 'buyer' },
    { email: 'bo@beta.example', role: 'broker' },
  ],
  matrix: [[1, 2], [3], []],
};

export interface InferenceStack {
  cp: TestControlPlane;
  td: TestDaemon;
  /** Every line the daemon logged (JSON), job log lines included. */
  daemonLog: string[];
  submit(input: unknown, extra?: Record<string, unknown>): Promise<Job>;
  get(id: string): Promise<Job>;
  settle(id: string, timeoutMs?: number): Promise<Job>;
  cancel(id: string): Promise<void>;
  jobLog(id: string): Promise<Array<{ msg: string; level: string }>>;
  stop(): Promise<void>;
}

export async function startInferenceStack(executor: Executor): Promise<InferenceStack> {
  const cp = await startTestControlPlane();
  const daemonLog: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      daemonLog.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  const td = await startTestDaemon(cp, {
    executors: [executor],
    logger: pino({ level: 'debug' }, sink),
    progressIntervalMs: 100,
  });
  const c = clients(cp);
  const get = async (id: string) => (await c.user<Job>('GET', `/v1/jobs/${id}`)).body;
  return {
    cp,
    td,
    daemonLog,
    submit: (input, extra) => c.submit('model_inference_run', input, extra),
    get,
    async settle(id, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`job ${id} did not end in ${timeoutMs} ms`);
        const r = await call<Job>(cp.url, 'GET', `/v1/jobs/${id}/wait?timeout_ms=${Math.min(left, 10_000)}`, {
          token: cp.adminToken,
        });
        if (['completed', 'failed', 'cancelled'].includes(r.body.state)) return r.body;
      }
    },
    async cancel(id) {
      const r = await c.user('POST', `/v1/jobs/${id}/cancel`, { reason: 'test' });
      if (r.status !== 200) throw new Error(`cancel: ${r.status} ${JSON.stringify(r.body)}`);
    },
    async jobLog(id) {
      return (await c.user<{ lines: Array<{ msg: string; level: string }> }>('GET', `/v1/jobs/${id}/logs`))
        .body.lines;
    },
    async stop() {
      await td.stop();
      await executor.close?.();
      await cp.close();
    },
  };
}
