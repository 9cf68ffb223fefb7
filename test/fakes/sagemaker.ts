/**
 * A fake SageMaker on 127.0.0.1 speaking the awsJson1_1 protocol of the real service (`POST /` with
 * `X-Amz-Target: SageMaker.<Op>`, errors as `{__type, message}`, timestamps as epoch seconds):
 * CreateTrainingJob (a second Create of a name answers ResourceInUse), DescribeTrainingJob (a missing
 * job answers ValidationException "Requested resource not found", as SageMaker does), and
 * StopTrainingJob. Jobs move one step per Describe (`auto`) or when the test says (`manual`); on
 * Completed the fake plays the training script: it writes the model files where SageMaker would
 * (`<S3OutputPath>/<name>/output/model/`, uncompressed) and reports the final metrics.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FakeS3 } from './s3.ts';

export type SmOp = 'CreateTrainingJob' | 'DescribeTrainingJob' | 'StopTrainingJob';

export interface FakeTrainingJob {
  name: string;
  status: string;
  secondary: string;
  failureReason: string;
  createdAt: number;
  request: any;
  metrics: Record<string, number>;
  stops: number;
}

export interface FakeSageMakerOptions {
  s3: FakeS3;
  /** `auto`: one step per Describe, ending Completed; `manual`: states change by setState. */
  mode?: 'auto' | 'manual';
  /** After StopTrainingJob, the next Describe shows Stopped (else the test calls setState). */
  autoStop?: boolean;
  /** The model files written on Completed: relative path → content. */
  artifacts?: Record<string, string>;
  /** The final metrics reported on Completed (and, in part, while Training). */
  metrics?: Record<string, number>;
  /** Called when CreateTrainingJob arrives, before the job exists or the answer goes out. */
  onCreate?: (body: any) => void | Promise<void>;
  /** Called for every request once counted, before injected errors or the answer. */
  beforeAnswer?: (op: SmOp, name: string | undefined) => void | Promise<void>;
}

export interface FakeSageMaker {
  url: string;
  jobs: Map<string, FakeTrainingJob>;
  calls: Record<SmOp, number>;
  allSigned(): boolean;
  failNext(op: SmOp, error: { status: number; type: string; message?: string }, times?: number): void;
  setState(name: string, status: string, secondary: string, failureReason?: string): void;
  onlyJob(): FakeTrainingJob;
  close(): Promise<void>;
}

const STEPS: Array<[string, string]> = [
  ['InProgress', 'Starting'],
  ['InProgress', 'Downloading'],
  ['InProgress', 'Training'],
  ['InProgress', 'Uploading'],
  ['Completed', 'Completed'],
];

async function readJson(req: IncomingMessage): Promise<any> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString();
  return text ? JSON.parse(text) : {};
}

function send(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'x-amzn-requestid': randomBytes(8).toString('hex'),
  });
  res.end(JSON.stringify(body));
}

export async function startFakeSageMaker(options: FakeSageMakerOptions): Promise<FakeSageMaker> {
  const jobs = new Map<string, FakeTrainingJob>();
  const calls: Record<SmOp, number> = { CreateTrainingJob: 0, DescribeTrainingJob: 0, StopTrainingJob: 0 };
  const injected: Record<SmOp, Array<{ status: number; type: string; message?: string }>> = {
    CreateTrainingJob: [],
    DescribeTrainingJob: [],
    StopTrainingJob: [],
  };
  let unsigned = 0;
  const metrics = options.metrics ?? { training_loss: 0.15, validation_loss: 0.18 };

  const outputPrefix = (j: FakeTrainingJob) =>
    `${String(j.request.OutputDataConfig.S3OutputPath).replace(/\/?$/, '/')}${j.name}/output/model/`;

  const finish = (j: FakeTrainingJob) => {
    if (j.status !== 'Completed') return;
    j.metrics = { ...metrics };
    const m = /^s3:\/\/([^/]+)\/(.*)$/.exec(outputPrefix(j)) as RegExpExecArray;
    for (const [path, content] of Object.entries(options.artifacts ?? { 'config.json': '{}' })) {
      options.s3.put(m[1] as string, `${m[2]}${path}`, content);
    }
  };

  const view = (j: FakeTrainingJob) => ({
    TrainingJobName: j.name,
    TrainingJobArn: `arn:aws:sagemaker:us-east-1:123456789012:training-job/${j.name}`,
    TrainingJobStatus: j.status,
    SecondaryStatus: j.secondary,
    ...(j.failureReason ? { FailureReason: j.failureReason } : {}),
    AlgorithmSpecification: j.request.AlgorithmSpecification,
    RoleArn: j.request.RoleArn,
    HyperParameters: j.request.HyperParameters,
    InputDataConfig: j.request.InputDataConfig,
    OutputDataConfig: j.request.OutputDataConfig,
    ResourceConfig: j.request.ResourceConfig,
    StoppingCondition: j.request.StoppingCondition,
    EnableManagedSpotTraining: j.request.EnableManagedSpotTraining,
    CreationTime: j.createdAt,
    LastModifiedTime: Date.now() / 1000,
    ...(j.status !== 'InProgress' ? { TrainingEndTime: Date.now() / 1000 } : {}),
    ...(j.status === 'Completed' ? { ModelArtifacts: { S3ModelArtifacts: outputPrefix(j) } } : {}),
    FinalMetricDataList: Object.entries(j.metrics).map(([MetricName, Value]) => ({
      MetricName,
      Value,
      Timestamp: Date.now() / 1000,
    })),
  });

  const server: Server = createServer((req, res) => {
    void (async () => {
      if (!/^AWS4-HMAC-SHA256 /.test(req.headers.authorization ?? '')) unsigned++;
      const target = String(req.headers['x-amz-target'] ?? '');
      const op = target.replace(/^SageMaker\./, '') as SmOp;
      if (req.method !== 'POST' || !(op in calls)) {
        return send(res, 400, { __type: 'UnknownOperationException', message: `not in the fake: ${target}` });
      }
      const body = await readJson(req);
      calls[op]++;
      await options.beforeAnswer?.(op, body.TrainingJobName);
      const fault = injected[op].shift();
      if (fault) return send(res, fault.status, { __type: fault.type, message: fault.message ?? fault.type });
      const name: string = body.TrainingJobName;
      if (op === 'CreateTrainingJob') {
        await options.onCreate?.(body);
        if (jobs.has(name)) {
          return send(res, 400, { __type: 'ResourceInUse', message: `Training job ${name} already exists` });
        }
        const j: FakeTrainingJob = {
          name,
          status: 'InProgress',
          secondary: 'Starting',
          failureReason: '',
          createdAt: Math.floor(Date.now() / 1000),
          request: body,
          metrics: {},
          stops: 0,
        };
        jobs.set(name, j);
        return send(res, 200, { TrainingJobArn: view(j).TrainingJobArn });
      }
      const j = jobs.get(name);
      if (!j)
        return send(res, 400, { __type: 'ValidationException', message: 'Requested resource not found.' });
      if (op === 'DescribeTrainingJob') {
        if (j.status === 'Stopping' && options.autoStop) {
          j.status = 'Stopped';
          j.secondary = 'Stopped';
        } else if (options.mode !== 'manual' && j.status === 'InProgress') {
          const i = STEPS.findIndex(([, s]) => s === j.secondary);
          const next = STEPS[Math.min(i + 1, STEPS.length - 1)] as [string, string];
          [j.status, j.secondary] = next;
          if (j.secondary === 'Training') j.metrics = { training_loss: (metrics.training_loss ?? 0) * 2 };
          finish(j);
        }
        return send(res, 200, view(j));
      }
      j.stops++;
      if (j.status !== 'InProgress') {
        return send(res, 400, {
          __type: 'ValidationException',
          message: `The training job ${name} is not in a stoppable state (${j.status})`,
        });
      }
      j.status = 'Stopping';
      j.secondary = 'Stopping';
      return send(res, 200, {});
    })().catch((err: unknown) => send(res, 500, { __type: 'InternalFailure', message: String(err) }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    jobs,
    calls,
    allSigned: () => unsigned === 0,
    failNext(op, error, times = 1) {
      for (let i = 0; i < times; i++) injected[op].push(error);
    },
    setState(name, status, secondary, failureReason = '') {
      const j = jobs.get(name);
      if (!j) throw new Error(`no training job ${name}`);
      j.status = status;
      j.secondary = secondary;
      j.failureReason = failureReason;
      finish(j);
    },
    onlyJob() {
      if (jobs.size !== 1) throw new Error(`expected one training job, found ${jobs.size}`);
      return [...jobs.values()][0] as FakeTrainingJob;
    },
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
