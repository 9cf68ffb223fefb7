/**
 * The Spark executor on EMR Serverless: submit once, reattach after a crash, cancel for real, read
 * back a typed result. The protocol (intent before submission, reattach, polling, cancel and its
 * confirmation) is the shared remote-run one (src/executor/remote-run.ts); this file says what an
 * EMR job run is to it.
 *
 * Submission. A submission is `{nonce, submission}`: the nonce is drawn once per fresh start (no
 * checkpoint), the number counts submissions of that start (a retry after a failed run is the next
 * number). The clientToken `dpo-<job id>-<nonce>-<n>` is a pure function of the job and that record,
 * and the record is checkpointed BEFORE StartJobRun; the run id right after. So a crash before the
 * first save means no run was asked for; a crash between the saves repeats StartJobRun with the same
 * token, which EMR answers with the existing run (no lookup by intent is needed); a crash after
 * reattaches by run id. A `reschedule` clears the checkpoint, draws a new nonce and so really starts
 * again (a token derived from the job id alone would hand back the old run within EMR's idempotency
 * window).
 *
 * Time. The run's executionTimeoutMinutes is the time left until the job's deadline (`ctx.deadline`,
 * counted from the job's first start), at least a minute, and at most DPO_EMR_TIMEOUT_MS(S): that cap
 * still holds per run, counted from the run's creation; past it the run is stopped as for a timeout
 * and the job fails `TIMEOUT`.
 *
 * Abort reasons (src/executor): `cancel` and `timeout` cancel the run (CancelJobRun with a grace
 * period) and return only once EMR says the run ended; CancelJobRun is asked again when the run has
 * not ended after DPO_EMR_CANCEL_WAIT_MS, and a confirmation that fails (throttling, the network) is
 * retried with backoff for as long as the lease is held. `lost` and `shutdown` leave the run alone.
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
import type { Checkpoint } from '../../src/contract/index.ts';
import { parseJsonLossless } from '../../src/contract/json.ts';
import { awsClientOptions, awsError, callSignal, withOutageBudget } from '../../src/executor/aws.ts';
import {
  type ExecuteContext,
  type Executor,
  JobAbort,
  JobError,
  type JobHandle,
  type JobHandlers,
  runHandler,
} from '../../src/executor/index.ts';
import { type RemotePhase, type RemoteRunOps, runRemote } from '../../src/executor/remote-run.ts';
import type { EmrConfig } from './config.ts';
import type { EMR_JOB_TYPES } from './index.ts';
import { buildSpec, type JobSpec, RunnerError } from './spec.ts';

// Moved to src/executor/aws.ts (every AWS executor classifies SDK errors the same way).
export { awsError } from '../../src/executor/aws.ts';

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

/** A submission before EMR has answered: its clientToken is a function of the job and of this. */
interface Submission {
  readonly nonce: string;
  readonly submission: number;
  /** The attempt that made (or last resumed) the submission. */
  readonly attempt: number;
}

/** A job run, with the submission it belongs to (which says where its spec and result are). */
interface RunHandle {
  readonly jobRunId: string;
  readonly nonce: string;
  readonly submission: number;
}

/** One GetJobRun, and the run's dashboard link once asked for. */
interface RunStatus {
  readonly run: JobRun;
  readonly state: string;
  readonly dashboardUrl: string | undefined;
}

const ACTIVE = new Set(['SUBMITTED', 'PENDING', 'SCHEDULED', 'QUEUED', 'RUNNING', 'CANCELLING']);

function phaseOf(state: string): RemotePhase {
  if (state === 'SUCCESS') return 'succeeded';
  if (state === 'FAILED' || state === 'CANCELLED') return 'ended';
  return 'active';
}

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

export class EmrServerlessExecutor implements Executor {
  readonly name = 'emr-serverless';
  readonly config: EmrConfig;
  /**
   * One handler per job type: each runs its type's Spark job (the spec carries the type, its input
   * and the plan compiled for it).
   */
  readonly handlers = {
    forecast: (job, ctx) => this.spark(job, ctx),
    'forecast-internal': (job, ctx) => this.spark(job, ctx),
    costs: (job, ctx) => this.spark(job, ctx),
    'nql-forecast': (job, ctx) => this.spark(job, ctx),
    'materialize-view': (job, ctx) => this.spark(job, ctx),
    materialized_views_collect_access_rules_billing_data: (job, ctx) => this.spark(job, ctx),
    datasets_sample: (job, ctx) => this.spark(job, ctx),
  } satisfies JobHandlers<(typeof EMR_JOB_TYPES)[number]>;
  readonly jobTypes: readonly string[] = Object.keys(this.handlers);
  private emr: EMRServerlessClient | undefined;
  private s3: S3Client | undefined;

  constructor(config: EmrConfig) {
    this.config = config;
  }

  async start(): Promise<void> {
    const c = this.config;
    const common = { region: c.region, maxAttempts: c.maxAttempts, requestTimeoutMs: c.requestTimeoutMs };
    this.emr ??= new EMRServerlessClient(awsClientOptions({ ...common, endpoint: c.emrEndpoint }));
    this.s3 ??= new S3Client({
      ...awsClientOptions({ ...common, endpoint: c.s3Endpoint }),
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

  execute(job: JobHandle, ctx: ExecuteContext): Promise<unknown> {
    return runHandler(this.handlers, job, ctx);
  }

  /** Runs (or reattaches to) the job's EMR job run until it ends, on the remote-run protocol. */
  private async spark(job: JobHandle, ctx: ExecuteContext): Promise<unknown> {
    await this.start();
    const c = this.config;
    const capMs = c.timeoutsMs[job.type] ?? c.timeoutMs;
    // The EMR cap (DPO_EMR_TIMEOUT_MS): a run older than it is stopped as at the job's deadline.
    const overCap = new AbortController();
    const inner: ExecuteContext = { ...ctx, signal: AbortSignal.any([ctx.signal, overCap.signal]) };
    const tracked: { runId?: string } = {};
    try {
      return await runRemote(job, inner, this.ops(job, inner, capMs, overCap, tracked), {
        pollMinMs: c.pollMinMs,
        pollMaxMs: c.pollMaxMs,
        recancelAfterMs: c.cancelWaitMs,
      });
    } catch (err) {
      // Stopped and confirmed for the cap, not for anything the runner decided: a TIMEOUT failure.
      if (overCap.signal.aborted && !ctx.signal.aborted) {
        throw new JobError(
          'TIMEOUT',
          `the EMR job run ${tracked.runId} exceeded the ${capMs} ms timeout of ${job.type} and was cancelled`,
          { retryable: false },
        );
      }
      // AWS out after the SDK's retries: ask for a retry delay that grows with the attempt.
      throw withOutageBudget(err, job.attempt);
    }
  }

  private ops(
    job: JobHandle,
    ctx: ExecuteContext,
    capMs: number,
    overCap: AbortController,
    tracked: { runId?: string },
  ): RemoteRunOps<Submission, RunHandle, RunStatus> {
    const c = this.config;
    /** The dashboard link is asked once per run ('' when there is none or the call failed). */
    let dashboard: { runId: string; url: string } | undefined;
    /** When this holder first saw the run (the cap's start when EMR gives no createdAt). */
    let seen: { runId: string; at: number } | undefined;
    return {
      what: 'EMR job run',
      read(checkpoint) {
        const cp = EmrCheckpoint.safeParse(checkpoint);
        if (!cp.success) return undefined;
        const { nonce, submission, attempt, job_run_id } = cp.data;
        return {
          intent: { nonce, submission, attempt },
          handle: job_run_id === undefined ? undefined : { jobRunId: job_run_id, nonce, submission },
        };
      },
      write(intent, handle): Checkpoint {
        const cp: EmrCheckpoint = {
          nonce: intent.nonce,
          submission: intent.submission,
          attempt: intent.attempt,
          ...(handle ? { job_run_id: handle.jobRunId } : {}),
        };
        return cp;
      },
      newIntent(attempt, previous) {
        return previous
          ? { nonce: previous.nonce, submission: previous.submission + 1, attempt }
          : { nonce: randomBytes(4).toString('hex'), submission: 1, attempt };
      },
      submit: async (intent, signal) => {
        const jobRunId = await this.startRun(job, intent, ctx, capMs, signal);
        ctx.log.info(
          `EMR job run ${jobRunId} started (submission ${intent.submission}, application ${c.applicationId})`,
          { job_run_id: jobRunId, submission: intent.submission },
        );
        return { jobRunId, nonce: intent.nonce, submission: intent.submission };
      },
      poll: async (handle, signal) => {
        const run = await this.getRun(handle.jobRunId, signal);
        const state = run.state ?? 'UNKNOWN';
        if (state === 'RUNNING' && dashboard?.runId !== handle.jobRunId) {
          dashboard = { runId: handle.jobRunId, url: (await this.dashboard(handle.jobRunId, signal)) ?? '' };
        }
        const url = dashboard?.runId === handle.jobRunId && dashboard.url ? dashboard.url : undefined;
        return { run, state, dashboardUrl: url };
      },
      phase: (status) => phaseOf(status.state),
      onStatus(handle, { run, state, dashboardUrl }) {
        tracked.runId = handle.jobRunId;
        ctx.progress({
          message: `EMR ${state}${run.stateDetails ? `: ${run.stateDetails}` : ''}`,
          emr_state: state,
          job_run_id: handle.jobRunId,
          ...(dashboardUrl ? { dashboard_url: dashboardUrl } : {}),
          ...(run.billedResourceUtilization
            ? { billed_resource_utilization: run.billedResourceUtilization }
            : {}),
        });
        if (phaseOf(state) !== 'active') return;
        if (!ACTIVE.has(state))
          ctx.log.warn(`EMR job run ${handle.jobRunId}: unknown state ${state}`, { state });
        if (seen?.runId !== handle.jobRunId) seen = { runId: handle.jobRunId, at: Date.now() };
        const started = run.createdAt instanceof Date ? run.createdAt.getTime() : seen.at;
        if (Date.now() - started > capMs && !overCap.signal.aborted) {
          ctx.log.warn(`EMR job run ${handle.jobRunId} exceeded its ${capMs} ms timeout; cancelling it`, {
            job_run_id: handle.jobRunId,
            timeout_ms: capMs,
          });
          overCap.abort(new JobAbort('timeout'));
        }
      },
      result: (handle, _status, signal) => {
        ctx.log.info(`EMR job run ${handle.jobRunId} succeeded; reading its result`);
        return this.readResult(this.spec(job, handle).output.result, signal);
      },
      failure: async (handle, { run, state }, signal) => {
        ctx.log.warn(`EMR job run ${handle.jobRunId} ended ${state}`, { state });
        if (state === 'CANCELLED') {
          return new JobError(
            'EMR_CANCELLED',
            `job run ${handle.jobRunId} was cancelled outside the operator`,
            { retryable: false },
          );
        }
        return this.failureOf(run, this.spec(job, handle).output.error, signal);
      },
      cancel: async (handle, signal) => {
        try {
          await (this.emr as EMRServerlessClient).send(
            new CancelJobRunCommand({
              applicationId: c.applicationId,
              jobRunId: handle.jobRunId,
              shutdownGracePeriodInSeconds: c.cancelGraceSeconds,
            }),
            { abortSignal: callSignal(signal, c.requestTimeoutMs) },
          );
        } catch (err) {
          if (signal.aborted) throw err;
          throw awsError(err, `CancelJobRun ${handle.jobRunId}`);
        }
        ctx.log.info(`EMR job run ${handle.jobRunId}: cancel requested (grace ${c.cancelGraceSeconds} s)`, {
          job_run_id: handle.jobRunId,
          grace_seconds: c.cancelGraceSeconds,
        });
      },
    };
  }

  /**
   * Writes the spec, then StartJobRun with the submission's clientToken (idempotent: the same
   * submission twice is the same run). `signal` is the lease's: once asked for, the run id is needed
   * even when a cancel arrives meanwhile, so the run can be cancelled rather than orphaned.
   */
  private async startRun(
    job: JobHandle,
    intent: Submission,
    ctx: ExecuteContext,
    capMs: number,
    signal: AbortSignal,
  ): Promise<string> {
    const c = this.config;
    const spec = this.spec(job, intent);
    const specKey = spec.output.result.replace(`s3://${c.bucket}/`, '').replace(/result\.json$/, 'spec.json');
    await this.put(specKey, JSON.stringify(spec), signal);
    // The time left until the job's deadline, within the EMR cap; EMR wants whole minutes, at least 1.
    const timeoutMs = Math.min(ctx.deadline - Date.now(), capMs);
    let out: { jobRunId?: string | undefined };
    try {
      out = await (this.emr as EMRServerlessClient).send(
        new StartJobRunCommand({
          applicationId: c.applicationId,
          clientToken: clientToken(job.id, intent.nonce, intent.submission),
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
            dpo_submission: String(intent.submission),
          },
        }),
        { abortSignal: callSignal(signal, c.requestTimeoutMs) },
      );
    } catch (err) {
      if (signal.aborted) throw err;
      throw awsError(err, 'StartJobRun');
    }
    if (!out.jobRunId) {
      throw new JobError('AWS_REQUEST_REJECTED', 'StartJobRun answered without a jobRunId', {
        retryable: true,
      });
    }
    return out.jobRunId;
  }

  private spec(job: JobHandle, submission: { nonce: string; submission: number }): JobSpec {
    const c = this.config;
    return buildSpec(job, {
      bucket: c.bucket,
      prefix: c.prefix,
      nonce: submission.nonce,
      submission: submission.submission,
      maxResultRows: c.maxResultRows,
    });
  }

  private async getRun(runId: string, signal: AbortSignal): Promise<JobRun> {
    try {
      const out = await (this.emr as EMRServerlessClient).send(
        new GetJobRunCommand({ applicationId: this.config.applicationId, jobRunId: runId }),
        { abortSignal: callSignal(signal, this.config.requestTimeoutMs) },
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
        { abortSignal: callSignal(signal, this.config.requestTimeoutMs) },
      );
      return out.url;
    } catch (err) {
      if (signal.aborted) throw err;
      return undefined; // a link for humans: its absence fails nothing
    }
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
        { abortSignal: callSignal(signal, this.config.requestTimeoutMs) },
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
        { abortSignal: callSignal(signal, this.config.requestTimeoutMs) },
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
      // Lossless: a 64-bit integer the runner wrote as a bare number stays exact (contract).
      return parseJsonLossless(text);
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
