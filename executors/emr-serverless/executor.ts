/**
 * The Spark executor on EMR Serverless: submit once, reattach after a crash, cancel for real, read
 * back a typed result.
 *
 * Submission. A submission is `{nonce, submission}`: the nonce is drawn once per fresh start (no
 * checkpoint), the number counts submissions of that start (a retry after a failed run is the next
 * number). The clientToken `dpo-<job id>-<nonce>-<n>` is a pure function of the job and that record,
 * and the record is checkpointed BEFORE StartJobRun; the run id right after. So a crash before the
 * first save means no run was asked for; a crash between the saves repeats StartJobRun with the same
 * token, which EMR answers with the existing run; a crash after reattaches by run id. A `reschedule`
 * clears the checkpoint, draws a new nonce and so really starts again (a token derived from the job
 * id alone would hand back the old run within EMR's idempotency window).
 *
 * Abort reasons (src/executor): `cancel` and `timeout` cancel the run (CancelJobRun with a grace
 * period) and return only once EMR says CANCELLED; `lost` and `shutdown` leave the run alone.
 */
import { randomBytes } from 'node:crypto';
import {
  CancelJobRunCommand,
  EMRServerlessClient,
  GetDashboardForJobRunCommand,
  GetJobRunCommand,
  type JobRun,
  StartJobRunCommand,
} from '@aws-sdk/client-emr-serverless';
import { GetObjectCommand, NoSuchKey, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import {
  abortReasonOf,
  type ExecuteContext,
  type Executor,
  JobError,
  type JobHandle,
} from '../../src/executor/index.ts';
import { backoffDelay, sleep } from '../../src/lib/retry.ts';
import type { EmrConfig } from './config.ts';
import { EMR_JOB_TYPES } from './job-types.ts';
import { buildSpec, type JobSpec, RunnerError } from './spec.ts';

/** What the executor checkpoints (the control plane keeps it across claims and retries). */
export const EmrCheckpoint = z.object({
  nonce: z.string().regex(/^[0-9a-f]{8}$/),
  submission: z.number().int().min(1),
  attempt: z.number().int().min(1),
  job_run_id: z.string().min(1).optional(),
});
export type EmrCheckpoint = z.infer<typeof EmrCheckpoint>;

export function clientToken(jobId: string, nonce: string, submission: number): string {
  return `dpo-${jobId}-${nonce}-${submission}`;
}

const ACTIVE = new Set(['SUBMITTED', 'PENDING', 'SCHEDULED', 'QUEUED', 'RUNNING', 'CANCELLING']);
const ENDED = new Set(['SUCCESS', 'FAILED', 'CANCELLED']);

/** EMR's stateDetails of a FAILED run, classified: capacity and service trouble are worth a retry. */
export function classifyStateDetails(details: string): { code: string; retryable: boolean } {
  if (
    /capacity|quota|limit exceeded|throttl|insufficient|internal (service )?error|internalserver|service unavailable|please try again|spot|executor lost/i.test(
      details,
    )
  ) {
    return { code: 'EMR_CAPACITY', retryable: true };
  }
  return { code: 'EMR_JOB_FAILED', retryable: false };
}

/** An AWS SDK error as a JobError with a retry decision and a message a user can act on. */
export function awsError(err: unknown, what: string): JobError {
  const e = err as {
    name?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
    $retryable?: unknown;
  };
  const name = e.name ?? 'Error';
  const status = e.$metadata?.httpStatusCode;
  const message = `${what}: ${name}${e.message ? `: ${e.message}` : ''}`;
  if (
    /ExpiredToken|InvalidClientTokenId|UnrecognizedClient|InvalidSignature|SignatureDoesNotMatch|CredentialsProviderError|TokenRefreshRequired|InvalidAccessKeyId/.test(
      name,
    )
  ) {
    return new JobError(
      'AWS_CREDENTIALS',
      `${message} — the AWS credentials are missing, expired or rejected; check the default credential chain (IRSA role, AWS_PROFILE)`,
      { retryable: false, cause: err },
    );
  }
  if (/AccessDenied/.test(name) || status === 403) {
    return new JobError(
      'AWS_ACCESS_DENIED',
      `${message} — the operator's role lacks a permission (README: IAM policy)`,
      {
        retryable: false,
        cause: err,
      },
    );
  }
  if (
    /Throttl|TooManyRequests|ServiceUnavailable|InternalServer|RequestTimeout|TimeoutError|SlowDown/.test(
      name,
    ) ||
    (status !== undefined && (status >= 500 || status === 429)) ||
    status === undefined
  ) {
    return new JobError('AWS_UNAVAILABLE', `${message} (after the SDK's bounded retries)`, {
      retryable: true,
      cause: err,
    });
  }
  return new JobError('AWS_REQUEST_REJECTED', message, { retryable: false, cause: err });
}

export class EmrServerlessExecutor implements Executor {
  readonly name = 'emr-serverless';
  readonly jobTypes = EMR_JOB_TYPES;
  readonly config: EmrConfig;
  private emr: EMRServerlessClient | undefined;
  private s3: S3Client | undefined;

  constructor(config: EmrConfig) {
    this.config = config;
  }

  async start(): Promise<void> {
    const c = this.config;
    const common = {
      region: c.region,
      maxAttempts: c.maxAttempts,
      retryMode: 'standard' as const,
      requestHandler: { connectionTimeout: 5_000, requestTimeout: c.requestTimeoutMs },
    };
    this.emr ??= new EMRServerlessClient({
      ...common,
      ...(c.emrEndpoint ? { endpoint: c.emrEndpoint } : {}),
    });
    this.s3 ??= new S3Client({
      ...common,
      ...(c.s3Endpoint ? { endpoint: c.s3Endpoint } : {}),
      forcePathStyle: c.forcePathStyle,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  async close(): Promise<void> {
    this.emr?.destroy();
    this.s3?.destroy();
    this.emr = undefined;
    this.s3 = undefined;
  }

  async execute(job: JobHandle, ctx: ExecuteContext): Promise<unknown> {
    await this.start();
    const cp = ctx.checkpoint ? EmrCheckpoint.safeParse(ctx.checkpoint) : undefined;
    if (cp && !cp.success) ctx.log.warn('ignoring a checkpoint this executor did not write');
    let record = cp?.success ? cp.data : undefined;

    let runId: string | undefined;
    try {
      if (record?.job_run_id) {
        const run = await this.getRun(record.job_run_id, ctx.signal);
        if (run.state && ['FAILED', 'CANCELLED'].includes(run.state) && record.attempt < job.attempt) {
          // The previous attempt's run failed: this attempt is the next submission.
          ctx.log.info('previous job run ended; submitting again', {
            job_run_id: record.job_run_id,
            state: run.state,
          });
          record = { nonce: record.nonce, submission: record.submission + 1, attempt: job.attempt };
        } else {
          ctx.log.info('reattaching to the job run', { job_run_id: record.job_run_id, state: run.state });
          runId = record.job_run_id;
        }
      }
      if (runId === undefined) {
        const fresh = record ?? {
          nonce: randomBytes(4).toString('hex'),
          submission: 1,
          attempt: job.attempt,
        };
        record = { ...fresh, attempt: job.attempt };
        runId = await this.submit(job, ctx, record);
        record = { ...record, job_run_id: runId };
      }
      return await this.track(job, ctx, runId, record as EmrCheckpoint);
    } catch (err) {
      const reason = abortReasonOf(ctx.signal);
      if ((reason === 'cancel' || reason === 'timeout') && runId !== undefined) {
        await this.cancelAndWait(runId, ctx);
      }
      if (reason !== undefined) throw ctx.signal.reason;
      throw err;
    }
  }

  /** Writes the spec, checkpoints, starts the run (idempotently), checkpoints the run id. */
  private async submit(job: JobHandle, ctx: ExecuteContext, record: EmrCheckpoint): Promise<string> {
    const c = this.config;
    const spec = this.spec(job, record);
    const specKey = spec.output.result.replace(`s3://${c.bucket}/`, '').replace(/result\.json$/, 'spec.json');
    await this.put(specKey, JSON.stringify(spec), ctx.signal);
    await ctx.saveCheckpoint({ nonce: record.nonce, submission: record.submission, attempt: record.attempt });
    const timeoutMs = c.timeoutsMs[job.type] ?? c.timeoutMs;
    let out: { jobRunId?: string | undefined };
    try {
      // Not the job's signal: once asked for, the answer (the run id) is needed even when a cancel
      // arrives meanwhile, so the run can be cancelled rather than orphaned.
      out = await (this.emr as EMRServerlessClient).send(
        new StartJobRunCommand({
          applicationId: c.applicationId,
          clientToken: clientToken(job.id, record.nonce, record.submission),
          executionRoleArn: c.executionRoleArn,
          name: `dpo-${job.type}-${job.id.slice(0, 8)}`,
          executionTimeoutMinutes: Math.max(1, Math.ceil(timeoutMs / 60_000)),
          jobDriver: {
            sparkSubmit: {
              entryPoint: c.entryPoint,
              entryPointArguments: ['--spec', `s3://${c.bucket}/${specKey}`],
              sparkSubmitParameters: c.sparkParamsByType[job.type] ?? c.sparkParams,
            },
          },
          configurationOverrides: {
            monitoringConfiguration: {
              s3MonitoringConfiguration: {
                logUri: `s3://${c.bucket}/${c.prefix ? `${c.prefix}/` : ''}logs/`,
              },
            },
          },
          tags: {
            dpo_job_id: job.id,
            dpo_job_type: job.type,
            dpo_company_id: String(job.companyId),
            dpo_submission: String(record.submission),
          },
        }),
        { abortSignal: AbortSignal.timeout(c.requestTimeoutMs) },
      );
    } catch (err) {
      throw awsError(err, 'StartJobRun');
    }
    const runId = out.jobRunId;
    if (!runId)
      throw new JobError('AWS_REQUEST_REJECTED', 'StartJobRun answered without a jobRunId', {
        retryable: true,
      });
    await ctx.saveCheckpoint({ ...record, job_run_id: runId });
    ctx.log.info('job run started', { job_run_id: runId, submission: record.submission });
    return runId; // a cancel that arrived meanwhile surfaces at the first poll, with the run id known
  }

  private spec(job: JobHandle, record: EmrCheckpoint): JobSpec {
    const c = this.config;
    return buildSpec(job, {
      bucket: c.bucket,
      prefix: c.prefix,
      nonce: record.nonce,
      submission: record.submission,
      maxResultRows: c.maxResultRows,
    });
  }

  /** Polls the run with growing, jittered intervals until it ends; then its result or its failure. */
  private async track(
    job: JobHandle,
    ctx: ExecuteContext,
    runId: string,
    record: EmrCheckpoint,
  ): Promise<unknown> {
    const c = this.config;
    const spec = this.spec(job, record);
    const timeoutMs = c.timeoutsMs[job.type] ?? c.timeoutMs;
    const localStart = Date.now();
    let dashboard: string | undefined;
    for (let poll = 0; ; poll++) {
      const run = await this.getRun(runId, ctx.signal);
      const state = run.state ?? 'UNKNOWN';
      // Asked once: a run without a dashboard (or a refused call) is not asked again every poll.
      if (state === 'RUNNING' && dashboard === undefined) {
        dashboard = (await this.dashboard(runId, ctx.signal)) ?? '';
      }
      ctx.progress({
        message: `EMR ${state}${run.stateDetails ? `: ${run.stateDetails}` : ''}`,
        emr_state: state,
        job_run_id: runId,
        ...(dashboard ? { dashboard_url: dashboard } : {}),
        ...(run.billedResourceUtilization
          ? { billed_resource_utilization: run.billedResourceUtilization }
          : {}),
      });
      if (state === 'SUCCESS') return this.readResult(spec.output.result, ctx.signal);
      if (state === 'FAILED') throw await this.failureOf(run, spec.output.error, ctx.signal);
      if (state === 'CANCELLED') {
        throw new JobError('EMR_CANCELLED', `job run ${runId} was cancelled outside the operator`, {
          retryable: false,
        });
      }
      const started = run.createdAt instanceof Date ? run.createdAt.getTime() : localStart;
      if (Date.now() - started > timeoutMs) {
        ctx.log.warn('job run exceeded its execution timeout; cancelling it', {
          job_run_id: runId,
          timeout_ms: timeoutMs,
        });
        await this.cancelAndWait(runId, ctx);
        throw new JobError(
          'TIMEOUT',
          `the EMR job run ${runId} exceeded the ${timeoutMs} ms timeout of ${job.type} and was cancelled`,
          {
            retryable: false,
          },
        );
      }
      if (!ACTIVE.has(state)) ctx.log.warn('unknown job run state', { state });
      await sleep(c.pollMinMs + backoffDelay(poll, c.pollMinMs, c.pollMaxMs - c.pollMinMs), ctx.signal);
    }
  }

  private async getRun(runId: string, signal: AbortSignal): Promise<JobRun> {
    try {
      const out = await (this.emr as EMRServerlessClient).send(
        new GetJobRunCommand({ applicationId: this.config.applicationId, jobRunId: runId }),
        { abortSignal: this.deadline(signal) },
      );
      if (!out.jobRun)
        throw new JobError('AWS_REQUEST_REJECTED', 'GetJobRun answered without a jobRun', {
          retryable: true,
        });
      return out.jobRun;
    } catch (err) {
      if (signal.aborted || err instanceof JobError) throw err;
      throw awsError(err, `GetJobRun ${runId}`);
    }
  }

  private async dashboard(runId: string, signal: AbortSignal): Promise<string | undefined> {
    try {
      const out = await (this.emr as EMRServerlessClient).send(
        new GetDashboardForJobRunCommand({ applicationId: this.config.applicationId, jobRunId: runId }),
        { abortSignal: this.deadline(signal) },
      );
      return out.url;
    } catch (err) {
      if (signal.aborted) throw err;
      return undefined; // a link for humans: its absence fails nothing
    }
  }

  /**
   * CancelJobRun, then wait (bounded by DPO_EMR_CANCEL_WAIT_MS) until EMR says the run ended. Uses
   * its own deadline: the job's signal is already aborted when this runs.
   */
  private async cancelAndWait(runId: string, ctx: ExecuteContext): Promise<void> {
    const c = this.config;
    const deadline = AbortSignal.timeout(c.cancelWaitMs);
    try {
      const before = await this.getRun(runId, deadline);
      if (before.state && ENDED.has(before.state)) return; // nothing left to stop
      await (this.emr as EMRServerlessClient).send(
        new CancelJobRunCommand({
          applicationId: c.applicationId,
          jobRunId: runId,
          shutdownGracePeriodInSeconds: c.cancelGraceSeconds,
        }),
        { abortSignal: this.deadline(deadline) },
      );
      ctx.log.info('job run cancel requested', { job_run_id: runId, grace_seconds: c.cancelGraceSeconds });
      for (let poll = 0; ; poll++) {
        const run = await this.getRun(runId, deadline);
        if (run.state && ENDED.has(run.state)) {
          ctx.log.info('job run ended after cancel', { job_run_id: runId, state: run.state });
          return;
        }
        await sleep(c.pollMinMs + backoffDelay(poll, c.pollMinMs, c.pollMaxMs - c.pollMinMs), deadline);
      }
    } catch (err) {
      ctx.log.error('could not confirm that the job run stopped', {
        job_run_id: runId,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  private deadline(signal: AbortSignal): AbortSignal {
    return AbortSignal.any([signal, AbortSignal.timeout(this.config.requestTimeoutMs)]);
  }

  private async put(key: string, body: string, signal: AbortSignal): Promise<void> {
    try {
      await (this.s3 as S3Client).send(
        new PutObjectCommand({
          Bucket: this.config.bucket,
          Key: key,
          Body: body,
          ContentType: 'application/json',
        }),
        { abortSignal: this.deadline(signal) },
      );
    } catch (err) {
      if (signal.aborted) throw err;
      throw awsError(err, `PutObject s3://${this.config.bucket}/${key}`);
    }
  }

  /** The object's text, or undefined when it does not exist. */
  private async get(uri: string, signal: AbortSignal): Promise<string | undefined> {
    const key = uri.replace(`s3://${this.config.bucket}/`, '');
    try {
      const out = await (this.s3 as S3Client).send(
        new GetObjectCommand({ Bucket: this.config.bucket, Key: key }),
        {
          abortSignal: this.deadline(signal),
        },
      );
      return await out.Body?.transformToString();
    } catch (err) {
      if (err instanceof NoSuchKey || (err as { name?: string }).name === 'NoSuchKey') return undefined;
      if (signal.aborted) throw err;
      throw awsError(err, `GetObject ${uri}`);
    }
  }

  private async readResult(uri: string, signal: AbortSignal): Promise<unknown> {
    const text = await this.get(uri, signal);
    if (text === undefined) {
      throw new JobError('EMR_RESULT_MISSING', `the job run succeeded but wrote no result at ${uri}`, {
        retryable: false,
      });
    }
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new JobError(
        'EMR_RESULT_INVALID',
        `the result at ${uri} is not JSON: ${(err as Error).message}`,
        {
          retryable: false,
        },
      );
    }
  }

  /** The runner's own account of the failure when it wrote one, else EMR's stateDetails, classified. */
  private async failureOf(run: JobRun, errorUri: string, signal: AbortSignal): Promise<JobError> {
    const details = run.stateDetails ?? '';
    const text = await this.get(errorUri, signal).catch(() => undefined);
    const parsed = text === undefined ? undefined : RunnerError.safeParse(safeJson(text));
    if (parsed?.success) {
      const { kind, message } = parsed.data;
      return new JobError(kind === 'query' ? 'EMR_QUERY_FAILED' : 'EMR_JOB_FAILED', message, {
        retryable: kind !== 'query',
        details: { job_run_id: run.jobRunId, state_details: details, runner: parsed.data },
      });
    }
    const { code, retryable } = classifyStateDetails(details);
    return new JobError(code, `EMR job run ${run.jobRunId} failed: ${details || '(no details)'}`, {
      retryable,
      details: { job_run_id: run.jobRunId, state_details: details },
    });
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
