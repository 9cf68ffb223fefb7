/**
 * A fake EMR Serverless on 127.0.0.1 speaking the restJson1 protocol of the real service:
 * StartJobRun (`POST /applications/{app}/jobruns`, idempotent on clientToken), GetJobRun,
 * CancelJobRun (`DELETE …?shutdownGracePeriodInSeconds=`), GetDashboardForJobRun. Job runs move
 * through EMR's states either one step per GetJobRun (`auto`) or when the test says (`manual`); on
 * SUCCESS in auto mode the fake plays the Spark runner and writes `resultFor(spec)` where the spec
 * says. Errors can be injected per operation (throttling, 5xx, expired credentials), and a hook
 * sees each call before it is answered (to abort the caller mid-call, or hold the answer back).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FakeS3 } from './s3.ts';

export type Op = 'StartJobRun' | 'GetJobRun' | 'CancelJobRun' | 'GetDashboardForJobRun';
export interface InjectedError {
  status: number;
  type: string;
  message?: string;
}

export interface FakeRun {
  id: string;
  clientToken: string;
  state: string;
  stateDetails: string;
  createdAt: Date;
  request: any;
  spec: any;
  cancels: number[];
}

export interface FakeEmrOptions {
  s3: FakeS3;
  applicationId?: string;
  /** `auto`: one state step per GetJobRun, ending SUCCESS; `manual`: states change by setState. */
  mode?: 'auto' | 'manual';
  /** What the runner would write on SUCCESS (auto mode); undefined writes nothing. */
  resultFor?: (spec: any) => unknown;
  /** Called when StartJobRun arrives, before the run exists or the answer goes out. */
  onStart?: (body: any) => void | Promise<void>;
  /** After CancelJobRun, the next GetJobRun shows CANCELLED (else the test calls setState). */
  autoCancel?: boolean;
  /**
   * Called for every request once it is counted, before any injected error or answer: a test acts
   * while a call is in flight (aborts the caller, holds the answer back until it resolves).
   */
  beforeAnswer?: (op: Op, runId: string | undefined) => void | Promise<void>;
}

export interface FakeEmr {
  url: string;
  applicationId: string;
  runs: Map<string, FakeRun>;
  calls: Record<Op, number>;
  /** Whether every request carried a SigV4 Authorization header (the real SDK signs). */
  allSigned(): boolean;
  options: FakeEmrOptions;
  failNext(op: Op, error: InjectedError, times?: number): void;
  setState(id: string, state: string, details?: string): void;
  /** The only run (throws unless exactly one exists). */
  onlyRun(): FakeRun;
  close(): Promise<void>;
}

const STEPS = ['SUBMITTED', 'PENDING', 'SCHEDULED', 'RUNNING', 'SUCCESS'];

async function readJson(req: IncomingMessage): Promise<any> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString();
  return text ? JSON.parse(text) : {};
}

function send(res: ServerResponse, status: number, body: unknown, errorType?: string) {
  res.writeHead(status, {
    'content-type': 'application/json',
    'x-amzn-requestid': randomBytes(8).toString('hex'),
    ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
  });
  res.end(JSON.stringify(body));
}

export async function startFakeEmr(options: FakeEmrOptions): Promise<FakeEmr> {
  const applicationId = options.applicationId ?? '00fabcd1234567';
  const runs = new Map<string, FakeRun>();
  const byToken = new Map<string, string>();
  const calls: Record<Op, number> = {
    StartJobRun: 0,
    GetJobRun: 0,
    CancelJobRun: 0,
    GetDashboardForJobRun: 0,
  };
  const injected: Record<Op, InjectedError[]> = {
    StartJobRun: [],
    GetJobRun: [],
    CancelJobRun: [],
    GetDashboardForJobRun: [],
  };
  let unsigned = 0;

  const view = (r: FakeRun) => ({
    applicationId,
    jobRunId: r.id,
    arn: `arn:aws:emr-serverless:us-east-1:123456789012:/applications/${applicationId}/jobruns/${r.id}`,
    name: r.request.name,
    createdBy: 'arn:aws:sts::123456789012:assumed-role/operator',
    createdAt: r.createdAt.getTime() / 1000,
    updatedAt: Date.now() / 1000,
    executionRole: r.request.executionRoleArn,
    state: r.state,
    stateDetails: r.stateDetails,
    releaseLabel: 'emr-7.5.0',
    jobDriver: r.request.jobDriver,
    tags: r.request.tags,
    executionTimeoutMinutes: r.request.executionTimeoutMinutes,
    ...(r.state === 'SUCCESS' || r.state === 'FAILED'
      ? { billedResourceUtilization: { vCPUHour: 0.5, memoryGBHour: 2, storageGBHour: 1 } }
      : {}),
  });

  const finish = (r: FakeRun) => {
    if (r.state !== 'SUCCESS' || !options.resultFor) return;
    const result = options.resultFor(r.spec);
    const uri: string | undefined = r.spec?.output?.result;
    if (result === undefined || !uri) return;
    const m = /^s3:\/\/([^/]+)\/(.*)$/.exec(uri);
    if (m) options.s3.put(m[1] as string, m[2] as string, JSON.stringify(result));
  };

  const server: Server = createServer((req, res) => {
    void (async () => {
      if (!/^AWS4-HMAC-SHA256 /.test(req.headers.authorization ?? '')) unsigned++;
      const url = new URL(req.url ?? '/', 'http://localhost');
      const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
      if (parts[0] !== 'applications' || parts[1] !== applicationId || parts[2] !== 'jobruns') {
        return send(res, 404, { message: `no application ${parts[1]}` }, 'ResourceNotFoundException');
      }
      const op: Op | undefined =
        req.method === 'POST' && parts.length === 3
          ? 'StartJobRun'
          : req.method === 'GET' && parts.length === 4
            ? 'GetJobRun'
            : req.method === 'DELETE' && parts.length === 4
              ? 'CancelJobRun'
              : req.method === 'GET' && parts[4] === 'dashboard'
                ? 'GetDashboardForJobRun'
                : undefined;
      if (!op) return send(res, 404, { message: 'not in the fake' }, 'ResourceNotFoundException');
      calls[op]++;
      await options.beforeAnswer?.(op, op === 'StartJobRun' ? undefined : parts[3]);
      const fault = injected[op].shift();
      if (fault) return send(res, fault.status, { message: fault.message ?? fault.type }, fault.type);

      if (op === 'StartJobRun') {
        const body = await readJson(req);
        await options.onStart?.(body);
        const existing = byToken.get(body.clientToken);
        const run = existing ? runs.get(existing) : undefined;
        if (run) return send(res, 200, { applicationId, jobRunId: run.id, arn: view(run).arn });
        const specUri: string = body.jobDriver?.sparkSubmit?.entryPointArguments?.[1] ?? '';
        const m = /^s3:\/\/([^/]+)\/(.*)$/.exec(specUri);
        const specText = m ? options.s3.get(m[1] as string, m[2] as string) : undefined;
        const created: FakeRun = {
          id: `00f${randomBytes(6).toString('hex')}`,
          clientToken: body.clientToken,
          state: 'SUBMITTED',
          stateDetails: '',
          createdAt: new Date(),
          request: body,
          spec: specText ? JSON.parse(specText) : undefined,
          cancels: [],
        };
        runs.set(created.id, created);
        byToken.set(body.clientToken, created.id);
        return send(res, 200, { applicationId, jobRunId: created.id, arn: view(created).arn });
      }
      const run = runs.get(parts[3] as string);
      if (!run)
        return send(res, 404, { message: `job run ${parts[3]} not found` }, 'ResourceNotFoundException');
      if (op === 'GetJobRun') {
        if (run.state === 'CANCELLING' && options.autoCancel) run.state = 'CANCELLED';
        else if (options.mode !== 'manual') {
          const i = STEPS.indexOf(run.state);
          if (i >= 0 && i < STEPS.length - 1) {
            run.state = STEPS[i + 1] as string;
            finish(run);
          }
        }
        return send(res, 200, { jobRun: view(run) });
      }
      if (op === 'CancelJobRun') {
        run.cancels.push(Number(url.searchParams.get('shutdownGracePeriodInSeconds') ?? -1));
        if (!['SUCCESS', 'FAILED', 'CANCELLED'].includes(run.state)) run.state = 'CANCELLING';
        return send(res, 200, { applicationId, jobRunId: run.id });
      }
      return send(res, 200, { url: `https://p-${run.id}.emrappui-prod.us-east-1.amazonaws.com/shs/` });
    })().catch((err: unknown) => send(res, 500, { message: String(err) }, 'InternalServerException'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    applicationId,
    runs,
    calls,
    options,
    allSigned: () => unsigned === 0,
    failNext(op, error, times = 1) {
      for (let i = 0; i < times; i++) injected[op].push(error);
    },
    setState(id, state, details = '') {
      const r = runs.get(id);
      if (!r) throw new Error(`no run ${id}`);
      r.state = state;
      r.stateDetails = details;
      finish(r);
    },
    onlyRun() {
      if (runs.size !== 1) throw new Error(`expected one job run, found ${runs.size}`);
      return [...runs.values()][0] as FakeRun;
    },
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
