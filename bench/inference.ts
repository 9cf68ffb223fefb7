/**
 * Model inference: what the operator adds to each call, the model taking no time. Both executors run
 * against their fakes on 127.0.0.1 (Bedrock Runtime over h2c, an OpenAI-compatible server) answering
 * at once, driven with the executor test kit: per-job latency one at a time, and jobs per second with
 * 32 in flight. Also the cost of compiling and checking a job's output schema (a fresh ajv per job).
 * Sources run by type stripping (the fakes live in test/); the figures are steady state.
 */
import { loadBedrockConfig } from '../executors/bedrock/config.ts';
import { BedrockExecutor } from '../executors/bedrock/executor.ts';
import { loadOpenAiCompatibleConfig } from '../executors/openai-compatible/config.ts';
import { OpenAiCompatibleExecutor } from '../executors/openai-compatible/executor.ts';
import type { Executor } from '../src/executor/index.ts';
import { compileOutputSchema } from '../src/executor/inference/index.ts';
import { createTestContext, testJob } from '../src/executor/testing.ts';
import { answer, startFakeBedrock } from '../test/fakes/bedrock.ts';
import { chatAnswer, startFakeOpenAi } from '../test/fakes/openai.ts';
import { richOutput, richSchema, seedInput } from '../test/inference/support.ts';
import { summary } from './lib.ts';

const RUNS = 5;
const SEQUENTIAL = 200;
const PARALLEL = 400;
const IN_FLIGHT = 32;

function input() {
  const i = seedInput();
  i.inference_config.output_format_schema = richSchema as never;
  return i;
}

async function one(ex: Executor): Promise<void> {
  const { ctx } = createTestContext();
  await ex.execute(testJob('model_inference_run', input()), ctx);
}

async function measure(name: string, ex: Executor): Promise<void> {
  for (let i = 0; i < 50; i++) await one(ex); // warm-up: JIT, connections
  const latency: number[] = [];
  const rate: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t = performance.now();
    for (let i = 0; i < SEQUENTIAL; i++) await one(ex);
    latency.push((performance.now() - t) / SEQUENTIAL);
    const t2 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next++ < PARALLEL) await one(ex);
      }),
    );
    rate.push(PARALLEL / ((performance.now() - t2) / 1000));
  }
  process.stdout.write(
    `${name}: ${summary(latency, 2)} ms per job one at a time; ${summary(rate)} jobs/s with ${IN_FLIGHT} in flight\n`,
  );
}

export async function benchInference(): Promise<void> {
  process.stdout.write(
    `\n== model inference (operator overhead; fakes answer at once; ${RUNS} runs, median (range))\n`,
  );
  Object.assign(process.env, {
    AWS_ACCESS_KEY_ID: 'AKIAFAKEFAKEFAKEFAKE',
    AWS_SECRET_ACCESS_KEY: 'fake-secret-for-bench-only',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/nonexistent/aws-config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
  });
  delete process.env.AWS_BEARER_TOKEN_BEDROCK;

  const compile: number[] = [];
  for (let r = 0; r <= RUNS; r++) {
    const t = performance.now();
    for (let i = 0; i < 200; i++) compileOutputSchema(richSchema).check(richOutput);
    if (r > 0) compile.push(((performance.now() - t) / 200) * 1000);
  }
  const fresh: number[] = [];
  let n = 0;
  for (let r = 0; r <= RUNS; r++) {
    const t = performance.now();
    for (let i = 0; i < 100; i++) {
      compileOutputSchema({ ...richSchema, description: `schema ${n++}` }).check(richOutput);
    }
    if (r > 0) fresh.push(((performance.now() - t) / 100) * 1000);
  }
  process.stdout.write(
    `output schema ($ref, enums, nested arrays, formats), compiled and checked: ${summary(compile)} µs per job ` +
      `when its schema was seen before (cache), ${summary(fresh)} µs when new\n`,
  );

  const bedrock = await startFakeBedrock({ respond: (req) => answer(req, richOutput) });
  const models = JSON.stringify({
    'anthropic.claude-sonnet-4.5': { id: 'bench-model', concurrency: IN_FLIGHT },
  });
  const b = new BedrockExecutor(
    loadBedrockConfig({
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.url,
      DPO_BEDROCK_MODELS: models,
    }),
  );
  await measure('bedrock (Converse, HTTP/2, SigV4)', b);
  await b.close();
  await bedrock.close();

  const server = await startFakeOpenAi((req) => chatAnswer(req, richOutput));
  const o = new OpenAiCompatibleExecutor(
    loadOpenAiCompatibleConfig({ DPO_OPENAI_COMPAT_BASE_URL: server.url, DPO_OPENAI_COMPAT_MODELS: models }),
  );
  await measure('openai-compatible (chat completions, HTTP/1.1)', o);
  await server.close();
}

if (import.meta.main) await benchInference();
