/**
 * The SageMaker executor: `model_training_run` as a SageMaker training job (training.ts), and
 * `models_deliver_model`, the trained model's files copied from S3 to a Hugging Face Hub repository
 * (delivery.ts). This file holds the clients and routes each type to its handler.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { SageMakerClient } from '@aws-sdk/client-sagemaker';
import { awsClientOptions, withOutageBudget } from '../../src/executor/aws.ts';
import {
  type ExecuteContext,
  type Executor,
  type JobHandle,
  type JobHandlers,
  runHandler,
} from '../../src/executor/index.ts';
import type { SageMakerConfig } from './config.ts';
import { runDelivery } from './delivery.ts';
import type { SAGEMAKER_JOB_TYPES } from './index.ts';
import { runTraining } from './training.ts';

export class SageMakerExecutor implements Executor {
  readonly name = 'sagemaker';
  readonly config: SageMakerConfig;
  readonly handlers = {
    model_training_run: async (job, ctx) => {
      const { sagemaker, s3 } = await this.clients();
      return runTraining({ config: this.config, sagemaker, s3 }, job, ctx);
    },
    models_deliver_model: async (job, ctx) => {
      const { s3 } = await this.clients();
      this.hub ??= await import('@huggingface/hub');
      return runDelivery({ config: this.config, s3, hub: this.hub, ...this.hooks }, job, ctx);
    },
  } satisfies JobHandlers<(typeof SAGEMAKER_JOB_TYPES)[number]>;
  readonly jobTypes: readonly string[] = Object.keys(this.handlers);
  /** Test hooks passed to delivery (S3 reads of model files). */
  hooks: { onRead?: (key: string, start: number, end: number) => void } = {};
  private sagemaker: SageMakerClient | undefined;
  private s3: S3Client | undefined;
  private hub: typeof import('@huggingface/hub') | undefined;

  constructor(config: SageMakerConfig) {
    this.config = config;
  }

  async start(): Promise<void> {
    await this.clients();
  }

  private async clients(): Promise<{ sagemaker: SageMakerClient; s3: S3Client }> {
    const c = this.config;
    const common = { region: c.region, maxAttempts: c.maxAttempts, requestTimeoutMs: c.requestTimeoutMs };
    this.sagemaker ??= new SageMakerClient(awsClientOptions({ ...common, endpoint: c.sagemakerEndpoint }));
    // Model files are streamed: the socket timeout is per idle period, the read as a whole is bounded
    // by DPO_HF_UPLOAD_TIMEOUT_MS (s3-object.ts).
    this.s3 ??= new S3Client({
      ...awsClientOptions({ ...common, endpoint: c.s3Endpoint }),
      forcePathStyle: c.forcePathStyle,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    return { sagemaker: this.sagemaker, s3: this.s3 };
  }

  async close(): Promise<void> {
    this.sagemaker?.destroy();
    this.s3?.destroy();
    this.sagemaker = undefined;
    this.s3 = undefined;
  }

  async execute(job: JobHandle, ctx: ExecuteContext): Promise<unknown> {
    try {
      return await runHandler(this.handlers, job, ctx);
    } catch (err) {
      // AWS out after the SDK's retries: ask for a retry delay that grows with the attempt.
      throw withOutageBudget(err, job.attempt);
    }
  }
}
