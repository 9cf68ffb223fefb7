/**
 * `model_training_run` as a SageMaker training job, on the shared remote-run protocol
 * (src/executor/remote-run.ts); this file says what a training job is to it.
 *
 * Submission. A submission is `{nonce, submission, attempt, name}`: the nonce is drawn once per fresh
 * start (no checkpoint), the number counts submissions of that start (a retry after a failed job is
 * the next number), and the training job's name `dpo-<job id>-<nonce>-<n>` is a pure function of
 * them (≤ 63 characters of [a-zA-Z0-9-]). The record is checkpointed BEFORE CreateTrainingJob, so a
 * claim that carries it describes the job by name: found, it reattaches; not found (SageMaker answers
 * a ValidationException "Requested resource not found", not a ResourceNotFound), it creates it. A
 * Create that answers ResourceInUse is the same job created by an earlier holder: it reattaches.
 *
 * Time. MaxRuntimeInSeconds is the time left until the job's deadline (`ctx.deadline`), within
 * DPO_SAGEMAKER_MAX_RUNTIME_MS; with spot training, MaxWaitTimeInSeconds is the spot wait, within the
 * deadline too. A job SageMaker stopped at its maximum runtime (or maximum wait) is `TIMEOUT`, not a
 * cancel.
 *
 * Abort reasons: `cancel` and `timeout` call StopTrainingJob and return only once the job is Stopped
 * (or ended otherwise); `lost` and `shutdown` leave it running.
 */
import { createHash, randomBytes } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  CreateTrainingJobCommand,
  DescribeTrainingJobCommand,
  type DescribeTrainingJobCommandOutput,
  type SageMakerClient,
  StopTrainingJobCommand,
} from '@aws-sdk/client-sagemaker';
import { z } from 'zod';
import type { ModelTrainingRunInput } from '../../src/catalogue/models.ts';
import type { Checkpoint } from '../../src/contract/index.ts';
import { awsError, callSignal } from '../../src/executor/aws.ts';
import { type ExecuteContext, JobError, type JobHandle } from '../../src/executor/index.ts';
import {
  cancelledElsewhere,
  type RemotePhase,
  type RemoteRunOps,
  runRemote,
} from '../../src/executor/remote-run.ts';
import { modelId, type SageMakerConfig } from './config.ts';

/** What training checkpoints (the control plane keeps it across claims and retries). */
export const TrainingCheckpoint = z.object({
  nonce: z.string().regex(/^[0-9a-f]{8}$/),
  submission: z.number().int().min(1),
  attempt: z.number().int().min(1),
  name: z.string().regex(/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/),
  /** Present once CreateTrainingJob answered (or the job was found). */
  created: z.literal(true).optional(),
});
export type TrainingCheckpoint = z.infer<typeof TrainingCheckpoint>;

/** The metrics the training logs are scanned for (the reference script prints these lines). */
export const METRIC_DEFINITIONS = [
  { Name: 'training_loss', Regex: "'loss': ([0-9.eE+-]+)" },
  { Name: 'validation_loss', Regex: "'eval_loss': ([0-9.eE+-]+)" },
];

const NAME_RE = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;

/**
 * The training job's name: `dpo-<job id>-<nonce>-<n>`, or, when the job id does not fit the 63
 * characters or the alphabet, a hash of it in its place.
 */
export function trainingJobName(jobId: string, nonce: string, submission: number): string {
  const plain = `dpo-${jobId}-${nonce}-${submission}`;
  if (plain.length <= 63 && NAME_RE.test(plain)) return plain;
  const hash = createHash('sha256').update(jobId).digest('hex').slice(0, 32);
  return `dpo-${hash}-${nonce}-${submission}`;
}

type Described = DescribeTrainingJobCommandOutput;

const isNotFound = (err: unknown) => {
  const e = err as { name?: string; message?: string };
  return e.name === 'ValidationException' && /not found/i.test(e.message ?? '');
};

function phaseOf(status: string | undefined): RemotePhase {
  if (status === 'Completed') return 'succeeded';
  if (status === 'Failed' || status === 'Stopped') return 'ended';
  return 'active';
}

/** A FailureReason of a Failed job, classified: capacity and service trouble are worth a retry. */
export function classifyFailureReason(reason: string): { code: string; retryable: boolean } {
  if (
    /capacity|ResourceLimitExceeded|InsufficientInstance|throttl|internal (server )?error|InternalServer|service unavailable|try again/i.test(
      reason,
    )
  ) {
    return { code: 'SAGEMAKER_CAPACITY', retryable: true };
  }
  return { code: 'SAGEMAKER_TRAINING_FAILED', retryable: false };
}

/** The latest value of each metric SageMaker has read from the logs. */
export function metricsOf(d: Described): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of d.FinalMetricDataList ?? []) {
    if (m.MetricName && typeof m.Value === 'number' && Number.isFinite(m.Value)) out[m.MetricName] = m.Value;
  }
  return out;
}

/** Where training writes a model's manifest (delivery reads it to find the files). */
export function manifestKey(prefix: string, model: string): string {
  return `${prefix ? `${prefix}/` : ''}models/${model}/manifest.json`;
}

/** The manifest of a trained model: where its files are. */
export const ModelManifest = z.object({
  model_id: z.string().min(1),
  artifacts_uri: z.string().regex(/^s3:\/\/[^/]+\/.+/),
  training_job_name: z.string().min(1),
  job_id: z.string().min(1),
  metrics: z.record(z.string(), z.number()),
});
export type ModelManifest = z.infer<typeof ModelManifest>;

export interface TrainingDeps {
  config: SageMakerConfig;
  sagemaker: SageMakerClient;
  s3: S3Client;
}

export async function runTraining(
  deps: TrainingDeps,
  job: JobHandle<ModelTrainingRunInput>,
  ctx: ExecuteContext,
): Promise<unknown> {
  const c = deps.config;
  const input = job.input;
  if (!c.instanceTypes.includes(input.instance_type)) {
    throw new JobError(
      'INVALID_INPUT',
      `instance type ${input.instance_type} is not allowed here (DPO_SAGEMAKER_INSTANCE_TYPES: ${c.instanceTypes.join(', ')})`,
      { retryable: false, details: { instance_type: input.instance_type, allowed: c.instanceTypes } },
    );
  }
  if (input.base_model_repository !== 'huggingface') {
    throw new JobError(
      'INVALID_INPUT',
      `base_model_repository '${input.base_model_repository}' is not supported by the sagemaker executor (only 'huggingface')`,
      { retryable: false },
    );
  }
  return runRemote(job, ctx, trainingOps(deps, job, ctx), {
    pollMinMs: c.pollMinMs,
    pollMaxMs: c.pollMaxMs,
    recancelAfterMs: c.cancelWaitMs,
  });
}

function trainingOps(
  deps: TrainingDeps,
  job: JobHandle<ModelTrainingRunInput>,
  ctx: ExecuteContext,
): RemoteRunOps<TrainingCheckpoint, string, Described> {
  const c = deps.config;
  const input = job.input;
  const model = modelId(
    c.modelIdTemplate,
    input.company_id,
    input.trained_model.name,
    input.trained_model_version,
  );
  let last = '';
  const describe = async (name: string, signal: AbortSignal): Promise<Described | undefined> => {
    try {
      return await deps.sagemaker.send(new DescribeTrainingJobCommand({ TrainingJobName: name }), {
        abortSignal: callSignal(signal, c.requestTimeoutMs),
      });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      if (signal.aborted) throw err;
      throw awsError(err, `DescribeTrainingJob ${name}`);
    }
  };
  return {
    what: 'SageMaker training job',
    read(checkpoint: Checkpoint) {
      const r = TrainingCheckpoint.safeParse(checkpoint);
      if (!r.success) return undefined;
      return { intent: r.data, handle: r.data.created ? r.data.name : undefined };
    },
    write(intent, handle) {
      const { created: _created, ...rest } = intent;
      return handle === undefined ? rest : { ...rest, created: true };
    },
    newIntent(attempt, previous) {
      const nonce = previous?.nonce ?? randomBytes(4).toString('hex');
      const submission = previous ? previous.submission + 1 : 1;
      return { nonce, submission, attempt, name: trainingJobName(job.id, nonce, submission) };
    },
    async findByIntent(intent, signal) {
      return (await describe(intent.name, signal)) ? intent.name : undefined;
    },
    async submit(intent, signal) {
      const left = Math.floor((ctx.deadline - Date.now()) / 1000);
      let maxRuntime = Math.max(60, Math.min(left, Math.floor(c.maxRuntimeMs / 1000)));
      const maxWait = c.spot ? Math.max(60, Math.min(left, Math.floor(c.spotMaxWaitMs / 1000))) : undefined;
      if (maxWait !== undefined) maxRuntime = Math.min(maxRuntime, maxWait);
      const base = `s3://${c.bucket}/${c.prefix ? `${c.prefix}/` : ''}`;
      const dataset = c.datasetUriTemplate
        .replaceAll('{company_id}', String(input.company_id))
        .replaceAll('{dataset_id}', String(input.dataset_id));
      try {
        await deps.sagemaker.send(
          new CreateTrainingJobCommand({
            TrainingJobName: intent.name,
            RoleArn: c.roleArn,
            AlgorithmSpecification: {
              TrainingImage: c.imageUri,
              TrainingInputMode: 'File',
              MetricDefinitions: METRIC_DEFINITIONS,
            },
            HyperParameters: {
              ...c.hyperparameters,
              // The Hugging Face container's script-mode contract: which script, from where.
              sagemaker_program: JSON.stringify(c.entryPoint),
              sagemaker_submit_directory: JSON.stringify(c.sourceUri),
              sagemaker_region: JSON.stringify(c.region),
              base_model_id: input.base_model_id,
              model_id: model,
            },
            InputDataConfig: [
              {
                ChannelName: 'train',
                DataSource: {
                  S3DataSource: {
                    S3DataType: 'S3Prefix',
                    S3Uri: dataset,
                    S3DataDistributionType: 'FullyReplicated',
                  },
                },
              },
            ],
            OutputDataConfig: { S3OutputPath: `${base}training/${job.id}/`, CompressionType: 'NONE' },
            CheckpointConfig: {
              S3Uri: `${base}checkpoints/${job.id}/${intent.nonce}/`,
              LocalPath: '/opt/ml/checkpoints',
            },
            ResourceConfig: {
              InstanceType: input.instance_type as never,
              InstanceCount: c.instanceCount,
              VolumeSizeInGB: c.volumeGb,
            },
            StoppingCondition: {
              MaxRuntimeInSeconds: maxRuntime,
              ...(maxWait !== undefined ? { MaxWaitTimeInSeconds: maxWait } : {}),
            },
            EnableManagedSpotTraining: c.spot,
            Tags: [
              { Key: 'dpo_job_id', Value: job.id },
              { Key: 'dpo_job_type', Value: job.type },
              { Key: 'dpo_company_id', Value: String(job.companyId) },
              { Key: 'dpo_submission', Value: String(intent.submission) },
              { Key: 'dpo_model_id', Value: model },
            ],
          }),
          { abortSignal: callSignal(signal, c.requestTimeoutMs) },
        );
      } catch (err) {
        // The same name was created before (an earlier holder died before its checkpoint): reattach.
        if ((err as { name?: string }).name === 'ResourceInUse') {
          ctx.log.info('the training job exists already: reattaching', { training_job_name: intent.name });
          return intent.name;
        }
        if (signal.aborted) throw err;
        throw awsError(err, 'CreateTrainingJob');
      }
      return intent.name;
    },
    async poll(name, signal) {
      const d = await describe(name, signal);
      if (!d) {
        throw new JobError('SAGEMAKER_JOB_MISSING', `SageMaker knows no training job ${name}`, {
          retryable: true,
        });
      }
      return d;
    },
    phase: (d) => phaseOf(d.TrainingJobStatus),
    onStatus(name, d) {
      const metrics = metricsOf(d);
      const key = `${d.TrainingJobStatus}/${d.SecondaryStatus}/${JSON.stringify(metrics)}`;
      if (key === last) return;
      if (!last.startsWith(`${d.TrainingJobStatus}/${d.SecondaryStatus}/`)) {
        ctx.log.info('training job status', {
          training_job_name: name,
          status: d.TrainingJobStatus,
          secondary_status: d.SecondaryStatus,
        });
      }
      last = key;
      ctx.progress({
        message: `SageMaker training job ${name}: ${d.TrainingJobStatus} (${d.SecondaryStatus})`,
        training_job_name: name,
        status: d.TrainingJobStatus ?? null,
        secondary_status: d.SecondaryStatus ?? null,
        metrics,
      });
    },
    async result(name, d, signal) {
      const metrics = metricsOf(d);
      const artifacts =
        d.ModelArtifacts?.S3ModelArtifacts ??
        `s3://${c.bucket}/${c.prefix ? `${c.prefix}/` : ''}training/${job.id}/${name}/output/model/`;
      const manifest: ModelManifest = {
        model_id: model,
        artifacts_uri: artifacts.endsWith('/') ? artifacts : `${artifacts}/`,
        training_job_name: name,
        job_id: job.id,
        metrics,
      };
      const key = manifestKey(c.prefix, model);
      try {
        await deps.s3.send(
          new PutObjectCommand({
            Bucket: c.bucket,
            Key: key,
            Body: JSON.stringify(manifest),
            ContentType: 'application/json',
          }),
          { abortSignal: callSignal(signal, c.requestTimeoutMs) },
        );
      } catch (err) {
        if (signal.aborted) throw err;
        throw awsError(err, `PutObject s3://${c.bucket}/${key}`);
      }
      return {
        type: 'model_training_run',
        result: {
          model_id: model,
          status: 'completed',
          metrics,
          artifacts_uri: manifest.artifacts_uri,
          training_job_name: name,
        },
      };
    },
    async failure(name, d) {
      const reason = d.FailureReason ?? '';
      const details = {
        training_job_name: name,
        status: d.TrainingJobStatus,
        secondary_status: d.SecondaryStatus,
        failure_reason: reason || undefined,
      };
      if (d.TrainingJobStatus === 'Stopped') {
        if (d.SecondaryStatus === 'MaxRuntimeExceeded' || d.SecondaryStatus === 'MaxWaitTimeExceeded') {
          return new JobError(
            'TIMEOUT',
            `the SageMaker training job ${name} was stopped at its maximum ${d.SecondaryStatus === 'MaxRuntimeExceeded' ? 'runtime' : 'wait time'} (${d.StoppingCondition?.[d.SecondaryStatus === 'MaxRuntimeExceeded' ? 'MaxRuntimeInSeconds' : 'MaxWaitTimeInSeconds'] ?? '?'} s)`,
            { retryable: false, details },
          );
        }
        const e = cancelledElsewhere('SageMaker training job', name);
        return new JobError(e.code, e.message, { retryable: false, details });
      }
      const { code, retryable } = classifyFailureReason(reason);
      return new JobError(code, `SageMaker training job ${name} failed: ${reason || '(no reason given)'}`, {
        retryable,
        details,
      });
    },
    async cancel(name, signal) {
      try {
        await deps.sagemaker.send(new StopTrainingJobCommand({ TrainingJobName: name }), {
          abortSignal: callSignal(signal, c.requestTimeoutMs),
        });
      } catch (err) {
        // Already stopping or ended: the poll that follows says which.
        if ((err as { name?: string }).name === 'ValidationException' && !isNotFound(err)) return;
        if (signal.aborted) throw err;
        throw awsError(err, `StopTrainingJob ${name}`);
      }
    },
  };
}
