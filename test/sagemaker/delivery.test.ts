/**
 * models_deliver_model through the daemon and the bundled control plane, on the real S3 client and
 * the real `@huggingface/hub` against the fakes: several files in one commit (LFS and regular), the
 * repository's visibility and reuse, retries of 429/5xx, 401 naming the connection and never the
 * token, and a delivery interrupted mid-way that resumes without sending anything twice.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { loadSageMakerConfig } from '../../executors/sagemaker/config.ts';
import { commitMarker } from '../../executors/sagemaker/delivery.ts';
import { SageMakerExecutor } from '../../executors/sagemaker/executor.ts';
import { JobAbort } from '../../src/executor/index.ts';
import { createTestContext, testJob } from '../../src/executor/testing.ts';
import { call } from '../helpers.ts';
import {
  deliveryInput,
  HUB_TOKEN,
  NAMESPACE,
  putModel,
  REPO,
  type SmFakes,
  type SmStack,
  startSmFakes,
  startSmStack,
} from './support.ts';

let s: SmStack | undefined;
let f: SmFakes | undefined;
afterEach(async () => {
  await s?.stop();
  await f?.stop();
  s = undefined;
  f = undefined;
});

/** Deterministic content of n bytes. */
const bytes = (n: number, seed: number) => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b.toString('latin1');
};
const MODEL_FILES = {
  'config.json': '{"architectures": ["LlamaForCausalLM"]}',
  'tokenizer.json': '{"version": "1.0"}',
  'nested/README.md': '# model card',
  'model-00001-of-00002.safetensors': bytes(1_500_000, 1),
  'model-00002-of-00002.safetensors': bytes(1_200_000, 2),
};
const TOTAL = Object.values(MODEL_FILES).reduce((n, c) => n + Buffer.byteLength(c), 0);

const logsOf = async (stack: SmStack, id: string) =>
  JSON.stringify(
    (await call(stack.cp.url, 'GET', `/v1/jobs/${id}/logs`, { token: stack.cp.adminToken })).body.lines,
  );

describe('models_deliver_model', () => {
  it('delivers every file of the model in one commit to a new private repository, LFS for the large ones', async () => {
    s = await startSmStack({}, {}, { hub: { lfsThreshold: 1_000_000 } });
    const stack = s;
    putModel(stack.s3, MODEL_FILES);
    const job = await stack.submit('models_deliver_model', deliveryInput());
    const done = await stack.settle(job.id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    const repo = stack.hub.repos.get(REPO);
    expect(repo?.private).toBe(true);
    expect(repo?.commits).toHaveLength(1);
    const commit = repo?.commits[0];
    expect(commit?.title).toContain(commitMarker(job.id));
    expect([...(commit?.files.keys() ?? [])].sort()).toEqual(Object.keys(MODEL_FILES).sort());
    expect(done.result).toEqual({
      type: 'models_deliver_model',
      result: {
        destination_url: `${stack.hub.url}/${REPO}`,
        status: 'completed',
        model_files_uploaded: 5,
        total_size_bytes: TOTAL,
        commit_oid: commit?.id,
      },
    });
    // The two large files went through LFS, uploaded once each; the small ones inline.
    expect(stack.hub.lfs.size).toBe(2);
    expect([...stack.hub.uploads.values()]).toEqual([1, 1]);
    expect(commit?.files.get('config.json')?.content?.toString()).toBe(MODEL_FILES['config.json']);
    // Only the connection's token was used, and it appears nowhere in the job's logs.
    expect([...stack.hub.authorizations]).toEqual([`Bearer ${HUB_TOKEN}`]);
    expect(await logsOf(stack, job.id)).not.toContain(HUB_TOKEN);
    expect(JSON.stringify(done)).not.toContain(HUB_TOKEN);
  });

  it('uploads a large file in parts (the Hub’s multipart transfer), each part a ranged read of S3', async () => {
    s = await startSmStack({}, {}, { hub: { lfsThreshold: 1_000_000, multipartChunkSize: 1_000_000 } });
    const stack = s;
    const big = bytes(2_500_000, 3);
    const prefix = putModel(stack.s3, { 'config.json': '{}', 'model.safetensors': big });
    const reads: Array<[string, number, number]> = [];
    stack.executor.hooks.onRead = (key, start, end) => reads.push([key, start, end]);
    const done = await stack.settle((await stack.submit('models_deliver_model', deliveryInput())).id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    const size = Buffer.byteLength(big);
    expect(stack.hub.calls.part).toBe(Math.ceil(size / 1_000_000));
    expect(stack.hub.calls.complete).toBe(1);
    expect(stack.hub.lfs.get(createHash('sha256').update(Buffer.from(big)).digest('hex'))).toBe(size);
    const parts = reads
      .filter(([key, start, end]) => key === `${prefix}model.safetensors` && end - start <= 1_000_000)
      .map(([, start, end]) => [start, end])
      .sort((a, b) => (a[0] as number) - (b[0] as number));
    // The preupload sample (512 bytes), then one range per part.
    expect(parts).toEqual([
      [0, 512],
      [0, 1_000_000],
      [1_000_000, 2_000_000],
      [2_000_000, 3_000_000],
      [3_000_000, size],
    ]);
    expect(done.result).toMatchObject({ result: { model_files_uploaded: 2, total_size_bytes: size + 2 } });
  });

  it('reuses an existing private repository; refuses to deliver a private model into a public one', async () => {
    s = await startSmStack({}, {}, { hub: { lfsThreshold: 1_000_000 } });
    const stack = s;
    putModel(stack.s3, { 'config.json': '{}' });
    stack.hub.repos.set(REPO, { name: REPO, private: true, commits: [] });
    const ok = await stack.settle((await stack.submit('models_deliver_model', deliveryInput())).id);
    expect(ok.state, JSON.stringify(ok.failures)).toBe('completed');
    expect(stack.hub.repos.get(REPO)?.commits).toHaveLength(1);

    const other = `${NAMESPACE}/public-one`;
    stack.hub.repos.set(other, { name: other, private: false, commits: [] });
    const refused = await stack.settle(
      (await stack.submit('models_deliver_model', deliveryInput({ model_name: 'Public One' }))).id,
    );
    expect(refused.state).toBe('failed');
    expect(refused.failures[0]).toMatchObject({ code: 'HUB_REPOSITORY_PUBLIC', retryable: false });
    expect(stack.hub.repos.get(other)?.commits).toHaveLength(0);
  });

  it('retries 429 and 5xx with backoff; the delivery completes', async () => {
    s = await startSmStack({}, {}, { hub: { lfsThreshold: 1_000_000 } });
    const stack = s;
    putModel(stack.s3, MODEL_FILES);
    stack.hub.failNext('create', 503, 1);
    stack.hub.failNext('preupload', 502, 2);
    stack.hub.failNext('upload', 500, 1);
    stack.hub.failNext('commit', 429, 1, { 'retry-after': '0' });
    const job = await stack.submit('models_deliver_model', deliveryInput());
    const done = await stack.settle(job.id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    expect(done.failures).toEqual([]);
    expect(stack.hub.calls.preupload).toBe(3);
    expect(stack.hub.calls.commit).toBe(2);
    expect(stack.hub.repos.get(REPO)?.commits).toHaveLength(1);
    expect(await logsOf(stack, job.id)).toContain('Hub request retried');
  });

  it('a commit that landed although its answer was lost (5xx) is found, not sent again', async () => {
    let lost = 0;
    s = await startSmStack(
      {},
      {},
      {
        hub: {
          lfsThreshold: 1_000_000,
          afterCommit: () => {
            if (lost++ === 0) throw new Error('the answer is lost');
          },
        },
      },
    );
    const stack = s;
    putModel(stack.s3, MODEL_FILES);
    const job = await stack.submit('models_deliver_model', deliveryInput());
    const done = await stack.settle(job.id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    expect(done.failures).toEqual([]);
    expect(stack.hub.calls.commit).toBe(1);
    expect(stack.hub.repos.get(REPO)?.commits).toHaveLength(1);
    expect(done.result).toMatchObject({ result: { commit_oid: stack.hub.repos.get(REPO)?.commits[0]?.id } });
    expect(await logsOf(stack, job.id)).toContain('the commit landed although its answer was lost');
  });

  it('a refused token (401) fails without retry, naming the connection and never the token', async () => {
    s = await startSmStack();
    const stack = s;
    putModel(stack.s3, { 'config.json': '{}' });
    writeFileSync(stack.tokenPath, 'hf_revoked_token_value\n');
    const job = await stack.submit('models_deliver_model', deliveryInput(), { max_attempts: 3 });
    const done = await stack.settle(job.id);
    expect(done.state).toBe('failed');
    expect(done.failures).toHaveLength(1);
    expect(done.failures[0]).toMatchObject({ code: 'HUB_AUTH', retryable: false });
    expect(done.failures[0]?.message).toContain("connection 'conn-123'");
    expect(JSON.stringify(done)).not.toContain('hf_revoked_token_value');
    expect(await logsOf(stack, job.id)).not.toContain('hf_revoked_token_value');
    expect(stack.hub.calls.create).toBe(1);
  });

  it('an unknown connection or model fails without retry, before any Hub call', async () => {
    s = await startSmStack();
    const stack = s;
    const a = await stack.settle(
      (await stack.submit('models_deliver_model', deliveryInput({ connection_id: 'conn-nope' }))).id,
    );
    expect(a.failures[0]).toMatchObject({ code: 'HUB_CONNECTION_UNKNOWN', retryable: false });
    const b = await stack.settle((await stack.submit('models_deliver_model', deliveryInput())).id);
    expect(b.failures[0]).toMatchObject({ code: 'MODEL_NOT_FOUND', retryable: false });
    expect(Object.values(stack.hub.calls).reduce((x, y) => x + y, 0)).toBe(0);
  });
});

describe('offline', () => {
  it('a Hub beyond loopback is refused by the guard in this process (so no test can reach the network)', async () => {
    f = await startSmFakes();
    const fakes = f;
    putModel(fakes.s3, { 'config.json': '{}' });
    const executor = new SageMakerExecutor(
      loadSageMakerConfig({
        ...fakes.env,
        DPO_HF_ENDPOINT: 'http://10.1.2.3:8080',
        DPO_HF_MAX_ATTEMPTS: '2',
      }),
    );
    const t = createTestContext();
    await expect(
      executor.execute(testJob('models_deliver_model', deliveryInput()), t.ctx),
    ).rejects.toMatchObject({
      code: 'HUB_UNAVAILABLE',
      retryable: true,
    });
    await executor.close();
    expect(
      t.lines.some((l) => l.msg === 'Hub request retried' && /loopback guard/.test(String(l.fields?.why))),
    ).toBe(true);
  });
});

describe('a token without write access (403)', () => {
  it('fails without retry, naming the connection and never the token', async () => {
    f = await startSmFakes();
    const fakes = f;
    putModel(fakes.s3, { 'config.json': '{}' });
    fakes.hub.failNext('preupload', 403);
    const executor = new SageMakerExecutor(loadSageMakerConfig(fakes.env));
    const err = await executor
      .execute(testJob('models_deliver_model', deliveryInput()), createTestContext().ctx)
      .catch((e: unknown) => e);
    await executor.close();
    expect(err).toMatchObject({ code: 'HUB_AUTH', retryable: false, details: { status: 403 } });
    expect((err as Error).message).toContain("connection 'conn-123'");
    expect(JSON.stringify({ m: (err as Error).message, d: (err as any).details })).not.toContain(HUB_TOKEN);
    expect(fakes.hub.calls.preupload).toBe(1);
  });
});

describe('a delivery interrupted mid-way resumes', () => {
  it('after the LFS uploads: the next holder sends no object twice and makes one commit', async () => {
    f = await startSmFakes({}, { lfsThreshold: 1_000_000 });
    const fakes = f;
    putModel(fakes.s3, MODEL_FILES);
    const executor = new SageMakerExecutor(loadSageMakerConfig(fakes.env));
    const job = testJob('models_deliver_model', deliveryInput());
    const first = createTestContext();
    // The holder goes away just as it commits (its lease is lost: it stops, reports nothing).
    fakes.hub.options.beforeAnswer = (op) => {
      if (op === 'commit') first.abort('lost');
    };
    await expect(executor.execute(job, first.ctx)).rejects.toBeInstanceOf(JobAbort);
    expect(fakes.hub.repos.get(REPO)?.commits ?? []).toHaveLength(0);
    expect(fakes.hub.lfs.size).toBe(2);
    expect((first.checkpoint as any).delivery.uploaded.sort()).toEqual([
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
    ]);
    fakes.hub.options.beforeAnswer = undefined;
    const second = createTestContext({ checkpoint: first.checkpoint });
    const result = (await executor.execute(job, second.ctx)) as any;
    await executor.close();
    expect(result.result).toMatchObject({ model_files_uploaded: 5, total_size_bytes: TOTAL });
    expect(fakes.hub.repos.get(REPO)?.commits).toHaveLength(1);
    expect([...fakes.hub.uploads.values()]).toEqual([1, 1]);
    expect(fakes.hub.calls.create).toBe(2); // the second finds it (409) and reuses it
  });

  it('after the commit landed but before its checkpoint: the commit is found, not made again', async () => {
    f = await startSmFakes({}, { lfsThreshold: 1_000_000 });
    const fakes = f;
    putModel(fakes.s3, MODEL_FILES);
    const executor = new SageMakerExecutor(loadSageMakerConfig(fakes.env));
    const job = testJob('models_deliver_model', deliveryInput());
    // The holder dies while saving the commit's oid: the control plane never gets it.
    const first = createTestContext({
      onSaveCheckpoint: (c: any) => {
        if (c.delivery?.commit_oid) throw new Error('killed before the checkpoint landed');
      },
    });
    await expect(executor.execute(job, first.ctx)).rejects.toThrow('killed before the checkpoint landed');
    expect(fakes.hub.repos.get(REPO)?.commits).toHaveLength(1);
    const second = createTestContext({ checkpoint: first.checkpoint });
    const result = (await executor.execute(job, second.ctx)) as any;
    await executor.close();
    const commit = fakes.hub.repos.get(REPO)?.commits[0];
    expect(fakes.hub.repos.get(REPO)?.commits).toHaveLength(1);
    expect(fakes.hub.calls.commit).toBe(1);
    expect(fakes.hub.calls.batch).toBe(1);
    expect(result.result).toMatchObject({
      commit_oid: commit?.id,
      model_files_uploaded: 5,
      total_size_bytes: TOTAL,
    });
    expect(second.lines.map((l) => l.msg)).toContain(
      'the delivery commit landed before a restart: not committing again',
    );
  });
});
