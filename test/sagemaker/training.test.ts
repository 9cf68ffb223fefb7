/**
 * model_training_run through the daemon and the bundled control plane, on the real SageMaker and S3
 * clients against the fakes: completion with metrics, the allow-list, cancel (confirmed Stopped),
 * the maximum runtime (TIMEOUT), failure reasons, and reattachment by name.
 */
import { CreateTrainingJobCommand, SageMakerClient } from '@aws-sdk/client-sagemaker';
import { afterEach, describe, expect, it } from 'vitest';
import { loadSageMakerConfig } from '../../executors/sagemaker/config.ts';
import { SageMakerExecutor } from '../../executors/sagemaker/executor.ts';
import { trainingJobName } from '../../executors/sagemaker/training.ts';
import { createTestContext, testJob } from '../../src/executor/testing.ts';
import { call, waitFor } from '../helpers.ts';
import {
  BUCKET,
  MODEL_ID,
  type SmFakes,
  type SmStack,
  startSmFakes,
  startSmStack,
  trainingInput,
} from './support.ts';

let s: SmStack | undefined;
let f: SmFakes | undefined;
afterEach(async () => {
  await s?.stop();
  await f?.stop();
  s = undefined;
  f = undefined;
});

const created = (stack: SmStack) =>
  waitFor(() => stack.sm.jobs.values().next().value, { what: 'the training job' });

describe('model_training_run', () => {
  it('completes with the final metrics, the model id and where its files are; submitted as configured', async () => {
    s = await startSmStack({}, {}, { jobTimeoutMs: 2 * 3_600_000 });
    const stack = s;
    const job = await stack.submit('model_training_run', trainingInput());
    const done = await stack.settle(job.id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    const tj = stack.sm.onlyJob();
    expect(done.result).toEqual({
      type: 'model_training_run',
      result: {
        model_id: MODEL_ID,
        status: 'completed',
        metrics: { training_loss: 0.15, validation_loss: 0.18 },
        artifacts_uri: `s3://${BUCKET}/operator/training/${job.id}/${tj.name}/output/model/`,
        training_job_name: tj.name,
      },
    });
    // The name: deterministic from the job and its submission, within SageMaker's rules.
    const cp = done.checkpoint as { nonce: string; submission: number; name: string };
    expect(tj.name).toBe(trainingJobName(job.id, cp.nonce, 1));
    expect(tj.name).toMatch(/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/);
    expect(done.checkpoint).toMatchObject({ submission: 1, attempt: 1, name: tj.name, created: true });
    const r = tj.request;
    expect(r.Tags).toContainEqual({ Key: 'dpo_job_id', Value: job.id });
    expect(r.AlgorithmSpecification.TrainingImage).toBe(
      '763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-training:2.1.0-transformers4.36.0-gpu-py310-cu121-ubuntu20.04',
    );
    expect(r.AlgorithmSpecification.MetricDefinitions.map((m: { Name: string }) => m.Name)).toEqual([
      'training_loss',
      'validation_loss',
    ]);
    expect(r.OutputDataConfig).toEqual({
      S3OutputPath: `s3://${BUCKET}/operator/training/${job.id}/`,
      CompressionType: 'NONE',
    });
    expect(r.CheckpointConfig.S3Uri).toBe(`s3://${BUCKET}/operator/checkpoints/${job.id}/${cp.nonce}/`);
    expect(r.InputDataConfig[0].DataSource.S3DataSource.S3Uri).toBe(
      `s3://${BUCKET}/operator/datasets/56/1234/`,
    );
    expect(r.ResourceConfig).toMatchObject({ InstanceType: 'ml.g5.2xlarge', InstanceCount: 1 });
    expect(r.HyperParameters).toMatchObject({
      base_model_id: 'meta-llama/Llama-2-7b-hf',
      sagemaker_program: '"train.py"',
    });
    // The runtime is the time left until the job's deadline (2 h), spot off: no wait time.
    expect(r.StoppingCondition.MaxRuntimeInSeconds).toBeGreaterThan(7_100);
    expect(r.StoppingCondition.MaxRuntimeInSeconds).toBeLessThanOrEqual(7_200);
    expect(r.StoppingCondition.MaxWaitTimeInSeconds).toBeUndefined();
    expect(r.EnableManagedSpotTraining).toBe(false);
    // The manifest delivery reads.
    expect(
      JSON.parse(stack.s3.get(BUCKET, `operator/models/${MODEL_ID}/manifest.json`) ?? '{}'),
    ).toMatchObject({
      model_id: MODEL_ID,
      training_job_name: tj.name,
      job_id: job.id,
    });
    expect(stack.sm.allSigned()).toBe(true);
  });

  it('reports the secondary status and the latest metrics as progress; spot sets a maximum wait', async () => {
    s = await startSmStack(
      { mode: 'manual' },
      { DPO_SAGEMAKER_SPOT: 'true', DPO_SAGEMAKER_SPOT_MAX_WAIT_MS: '3600000' },
    );
    const stack = s;
    const job = await stack.submit('model_training_run', trainingInput());
    const tj = await created(stack);
    tj.metrics = { training_loss: 0.9 };
    stack.sm.setState(tj.name, 'InProgress', 'Training');
    const progress = await waitFor(
      async () => {
        const p = (await stack.get(job.id)).progress as Record<string, any> | null;
        return p?.secondary_status === 'Training' ? p : undefined;
      },
      { what: 'progress with the Training status' },
    );
    expect(progress).toMatchObject({ status: 'InProgress', metrics: { training_loss: 0.9 } });
    expect(progress.message).toContain('Training');
    expect(tj.request.EnableManagedSpotTraining).toBe(true);
    expect(tj.request.StoppingCondition.MaxWaitTimeInSeconds).toBe(3_600);
    expect(tj.request.StoppingCondition.MaxRuntimeInSeconds).toBeLessThanOrEqual(3_600);
    stack.sm.setState(tj.name, 'Completed', 'Completed');
    expect((await stack.settle(job.id)).state).toBe('completed');
  });

  it('an instance type outside the allow-list is INVALID_INPUT, and nothing is created', async () => {
    s = await startSmStack({}, { DPO_SAGEMAKER_INSTANCE_TYPES: 'ml.g5.xlarge' });
    const job = await s.submit('model_training_run', trainingInput());
    const done = await s.settle(job.id);
    expect(done.state).toBe('failed');
    expect(done.failures[0]).toMatchObject({ code: 'INVALID_INPUT', retryable: false });
    expect(done.failures[0]?.message).toContain('ml.g5.2xlarge');
    expect(s.sm.calls.CreateTrainingJob).toBe(0);
  });

  it('a cancel stops the training job and reports cancelled only once SageMaker says Stopped', async () => {
    s = await startSmStack({ mode: 'manual' });
    const stack = s;
    const job = await stack.submit('model_training_run', trainingInput());
    const tj = await created(stack);
    await waitFor(async () => (await stack.get(job.id)).checkpoint?.created, { what: 'the checkpoint' });
    const r = await call(stack.cp.url, 'POST', `/v1/jobs/${job.id}/cancel`, {
      token: stack.cp.adminToken,
      body: {},
    });
    expect(r.status).toBe(200);
    await waitFor(() => tj.stops > 0 && tj.status === 'Stopping', { what: 'StopTrainingJob' });
    // Still stopping: not cancelled yet.
    const polls = stack.sm.calls.DescribeTrainingJob;
    await waitFor(() => stack.sm.calls.DescribeTrainingJob > polls + 2, { what: 'polls while stopping' });
    expect((await stack.get(job.id)).state).toBe('pending_cancellation');
    stack.sm.setState(tj.name, 'Stopped', 'Stopped');
    const done = await stack.settle(job.id);
    expect(done.state).toBe('cancelled');
    expect(stack.sm.jobs.size).toBe(1);
  });

  it('a job SageMaker stopped at its maximum runtime fails TIMEOUT, not cancelled, without retry', async () => {
    s = await startSmStack({ mode: 'manual' });
    const stack = s;
    const job = await stack.submit('model_training_run', trainingInput());
    const tj = await created(stack);
    stack.sm.setState(tj.name, 'Stopped', 'MaxRuntimeExceeded');
    const done = await stack.settle(job.id);
    expect(done.state).toBe('failed');
    expect(done.failures).toHaveLength(1);
    expect(done.failures[0]).toMatchObject({ code: 'TIMEOUT', retryable: false });
    expect(done.failures[0]?.message).toContain('maximum runtime');
  });

  it('a training failure fails with SageMaker’s reason; a capacity failure is retried as a new submission', async () => {
    s = await startSmStack({ mode: 'manual' });
    const stack = s;
    const bad = await stack.submit('model_training_run', trainingInput());
    const first = await created(stack);
    stack.sm.setState(first.name, 'Failed', 'Failed', 'AlgorithmError: CUDA out of memory, exit code 1');
    const failed = await stack.settle(bad.id);
    expect(failed.state).toBe('failed');
    expect(failed.failures).toHaveLength(1);
    expect(failed.failures[0]).toMatchObject({ code: 'SAGEMAKER_TRAINING_FAILED', retryable: false });
    expect(failed.failures[0]?.message).toContain('CUDA out of memory');

    const job = await stack.submit('model_training_run', trainingInput({ dataset_id: 99 }), {
      max_attempts: 3,
    });
    const a = await waitFor(
      () => [...stack.sm.jobs.values()].find((j) => j.request.Tags.some((t: any) => t.Value === job.id)),
      { what: 'the second job’s training job' },
    );
    stack.sm.setState(
      a.name,
      'Failed',
      'Failed',
      'CapacityError: Unable to provision requested ML compute capacity',
    );
    const b = await waitFor(
      () =>
        [...stack.sm.jobs.values()].find(
          (j) => j.name !== a.name && j.request.Tags.some((t: any) => t.Value === job.id),
        ),
      { what: 'the retry’s training job', timeoutMs: 15_000 },
    );
    expect(b.name).toMatch(/-2$/);
    stack.sm.setState(b.name, 'Completed', 'Completed');
    const done = await stack.settle(job.id);
    expect(done.state, JSON.stringify(done.failures)).toBe('completed');
    expect(done.failures.map((x) => x.code)).toEqual(['SAGEMAKER_CAPACITY']);
    expect(done.checkpoint).toMatchObject({ submission: 2, name: b.name });
  });
});

describe('reattachment by name', () => {
  it('a checkpointed name whose Describe first answers "not found" is created; ResourceInUse reattaches', async () => {
    f = await startSmFakes({ mode: 'auto' });
    const fakes = f;
    const executor = new SageMakerExecutor(loadSageMakerConfig(fakes.env));
    const job = testJob('model_training_run', trainingInput());
    const name = trainingJobName(job.id, 'abcdef01', 1);
    // An earlier holder created the job but died before checkpointing that it did…
    const client = new SageMakerClient({ region: 'us-east-1', endpoint: fakes.sm.url, maxAttempts: 1 });
    await client.send(
      new CreateTrainingJobCommand({
        TrainingJobName: name,
        RoleArn: 'arn:aws:iam::123456789012:role/dpo-training',
        AlgorithmSpecification: { TrainingImage: 'img', TrainingInputMode: 'File' },
        OutputDataConfig: { S3OutputPath: `s3://${BUCKET}/operator/training/${job.id}/` },
        ResourceConfig: { InstanceType: 'ml.g5.2xlarge', InstanceCount: 1, VolumeSizeInGB: 1 },
        StoppingCondition: { MaxRuntimeInSeconds: 3600 },
        Tags: [{ Key: 'dpo_job_id', Value: job.id }],
      }),
    );
    client.destroy();
    // …and SageMaker's Describe, eventually consistent, does not see it yet.
    fakes.sm.failNext('DescribeTrainingJob', {
      status: 400,
      type: 'ValidationException',
      message: 'Requested resource not found.',
    });
    const t = createTestContext({ checkpoint: { nonce: 'abcdef01', submission: 1, attempt: 1, name } });
    const result = (await executor.execute(job, t.ctx)) as any;
    await executor.close();
    expect(result.result).toMatchObject({ model_id: MODEL_ID, status: 'completed', training_job_name: name });
    expect(fakes.sm.calls.CreateTrainingJob).toBe(2);
    expect(fakes.sm.jobs.size).toBe(1);
    expect(t.lines.map((l) => l.msg)).toContain('the training job exists already: reattaching');
    expect(t.checkpoint).toMatchObject({ name, created: true });
  });

  it('a claim with a created checkpoint only describes: no CreateTrainingJob', async () => {
    f = await startSmFakes({ mode: 'manual' });
    const fakes = f;
    const executor = new SageMakerExecutor(loadSageMakerConfig(fakes.env));
    const first = createTestContext();
    const job = testJob('model_training_run', trainingInput());
    const running = executor.execute(job, first.ctx);
    await waitFor(() => (first.checkpoint as any)?.created, { what: 'the created checkpoint' });
    first.abort('lost');
    await expect(running).rejects.toMatchObject({ reason: 'lost' });
    expect(fakes.sm.onlyJob().status).toBe('InProgress');
    const second = createTestContext({ checkpoint: first.checkpoint });
    const again = executor.execute({ ...job, attempt: 1 }, second.ctx);
    await waitFor(() => fakes.sm.calls.DescribeTrainingJob > 2, { what: 'the reattached polls' });
    fakes.sm.setState(fakes.sm.onlyJob().name, 'Completed', 'Completed');
    expect(((await again) as any).result.status).toBe('completed');
    await executor.close();
    expect(fakes.sm.calls.CreateTrainingJob).toBe(1);
  });
});

describe('the daemon’s own timeout', () => {
  it('stops the training job and returns only once it is Stopped (the daemon then fails it TIMEOUT)', async () => {
    f = await startSmFakes({ mode: 'manual' });
    const fakes = f;
    const executor = new SageMakerExecutor(loadSageMakerConfig(fakes.env));
    const t = createTestContext();
    const running = executor.execute(testJob('model_training_run', trainingInput()), t.ctx);
    const tj = await waitFor(() => (t.checkpoint as any)?.created && fakes.sm.onlyJob(), { what: 'the job' });
    t.abort('timeout');
    await waitFor(() => tj.status === 'Stopping', { what: 'StopTrainingJob' });
    let settled = false;
    void running
      .catch(() => undefined)
      .finally(() => {
        settled = true;
      });
    const polls = fakes.sm.calls.DescribeTrainingJob;
    await waitFor(() => fakes.sm.calls.DescribeTrainingJob > polls + 2, { what: 'polls while stopping' });
    expect(settled).toBe(false);
    fakes.sm.setState(tj.name, 'Stopped', 'Stopped');
    await expect(running).rejects.toMatchObject({ reason: 'timeout' });
    await executor.close();
    expect(tj.stops).toBe(1);
  });
});
