/**
 * `npm run bench -- sagemaker`: model delivery through the real `@huggingface/hub` and S3 client
 * against the fakes on 127.0.0.1 (test/fakes: S3 serving a generated file, a Hub hashing each LFS
 * upload as it streams in), one process. Measures the end-to-end rate of one large file (read twice
 * from S3: once to hash it, once to upload it; both fakes work on the same cores) and how much the
 * process's peak RSS grew: the file is streamed, so it must stay far below the file's size.
 * Runs from the TypeScript sources (the fakes live with the tests).
 */
import { loadSageMakerConfig } from '../executors/sagemaker/config.ts';
import { SageMakerExecutor } from '../executors/sagemaker/executor.ts';
import { createTestContext, testJob } from '../src/executor/testing.ts';
import { GENERATED_BLOCK } from '../test/fakes/s3.ts';
import { BUCKET, deliveryInput, putModel, startSmFakes } from '../test/sagemaker/support.ts';
import { summary } from './lib.ts';

const RUNS = 3;
const SIZE = 512 * GENERATED_BLOCK;

const peakRss = () => process.resourceUsage().maxRSS * 1024;

export async function benchSageMaker(): Promise<void> {
  process.stdout.write('\n== SageMaker delivery (fake S3 → real @huggingface/hub → fake Hub, one process)\n');
  const pattern = Buffer.alloc(GENERATED_BLOCK);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 131 + (i >>> 13)) & 0xff;
  const block = (index: number) => {
    const b = Buffer.from(pattern);
    b.writeUInt32BE(index, 0);
    return b;
  };
  const rates: number[] = [];
  const growth: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const fakes = await startSmFakes({}, { lfsThreshold: 10_000_000 });
    const executor = new SageMakerExecutor(loadSageMakerConfig(fakes.env));
    try {
      const prefix = putModel(fakes.s3, { 'config.json': '{}' });
      fakes.s3.generate(BUCKET, `${prefix}model.safetensors`, SIZE, block);
      const before = peakRss();
      const t = createTestContext();
      const start = performance.now();
      await executor.execute(testJob('models_deliver_model', deliveryInput()), t.ctx);
      const seconds = (performance.now() - start) / 1000;
      rates.push(SIZE / 2 ** 20 / seconds);
      growth.push((peakRss() - before) / 2 ** 20);
    } finally {
      await executor.close();
      await fakes.stop();
    }
  }
  process.stdout.write(
    `| one ${SIZE / 2 ** 20} MiB model file delivered (hashed + uploaded, in one commit) | ${summary(rates)} MiB/s, ${RUNS} runs |\n`,
  );
  process.stdout.write(
    `| peak RSS growth of the process meanwhile (fakes included) | ${summary(growth)} MiB (the file: ${SIZE / 2 ** 20} MiB) |\n`,
  );
}
