/**
 * The SageMaker executor against protocol-level fakes on 127.0.0.1 (SageMaker, S3, a Hugging Face
 * Hub), through the real AWS SDK clients and the real `@huggingface/hub`, with the daemon and the
 * bundled control plane.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSageMakerConfig } from '../../executors/sagemaker/config.ts';
import { SageMakerExecutor } from '../../executors/sagemaker/executor.ts';
import type { Job } from '../../src/contract/index.ts';
import type { ControlPlaneOptions } from '../../src/control-plane/server.ts';
import { type FakeHub, type FakeHubOptions, startFakeHub } from '../fakes/hf-hub.ts';
import { type FakeS3, startFakeS3 } from '../fakes/s3.ts';
import { type FakeSageMaker, type FakeSageMakerOptions, startFakeSageMaker } from '../fakes/sagemaker.ts';
import { call, clients, startTestControlPlane, type TestControlPlane } from '../helpers.ts';
import { startTestDaemon, type TestDaemon } from '../support/daemon.ts';
// In this process too, any connection beyond 127.0.0.1 throws (the SDK, the Hub library, undici).
import '../support/loopback-guard.ts';

export const BUCKET = 'dpo-models';
export const HUB_TOKEN = 'hf_test_token_for_conn_123_never_log_me';
export const CONNECTION = 'conn-123';
export const NAMESPACE = 'company-56';

// The SDK's default credential chain finds these; nothing may look for real ones.
Object.assign(process.env, {
  AWS_ACCESS_KEY_ID: 'AKIAFAKEFAKEFAKEFAKE',
  AWS_SECRET_ACCESS_KEY: 'fake-secret-for-tests-only',
  AWS_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_CONFIG_FILE: '/nonexistent/aws-config',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
});

export const trainingInput = (overrides: Record<string, unknown> = {}) => ({
  company_id: 56,
  dataset_id: 1234,
  instance_type: 'ml.g5.2xlarge',
  base_model_id: 'meta-llama/Llama-2-7b-hf',
  base_model_repository: 'huggingface',
  trained_model_version: '1.0.0',
  trained_model: {
    name: 'Custom Llama',
    collaborators: { owner_company_id: 56, viewer_company_ids: [] },
  },
  ...overrides,
});
export const MODEL_ID = 'company-56-custom-llama-v1-0-0';

export const deliveryInput = (overrides: Record<string, unknown> = {}) => ({
  company_id: 56,
  app_id: 789,
  connection_id: CONNECTION,
  profile_id: '550e8400-e29b-41d4-a716-446655440000',
  model_id: MODEL_ID,
  model_name: 'Custom Llama Classifier',
  model_version: '1.0.0',
  quick_settings: { repository_visibility: 'private' },
  ...overrides,
});
export const REPO = `${NAMESPACE}/custom-llama-classifier`;

/** A token file for the connection, in a fresh directory. */
export function tokenFile(token = HUB_TOKEN): string {
  const dir = mkdtempSync(join(tmpdir(), 'dpo-hf-'));
  const file = join(dir, 'token');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return file;
}

export function smEnv(
  sm: FakeSageMaker,
  s3: FakeS3,
  hub: FakeHub,
  tokenPath: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    DPO_SAGEMAKER_REGION: 'us-east-1',
    DPO_SAGEMAKER_ROLE_ARN: 'arn:aws:iam::123456789012:role/dpo-training',
    DPO_SAGEMAKER_S3_URI: `s3://${BUCKET}/operator`,
    DPO_SAGEMAKER_SOURCE_URI: `s3://${BUCKET}/code/sourcedir.tar.gz`,
    DPO_SAGEMAKER_POLL_MIN_MS: '20',
    DPO_SAGEMAKER_POLL_MAX_MS: '60',
    DPO_SAGEMAKER_CANCEL_WAIT_MS: '15000',
    DPO_SAGEMAKER_REQUEST_TIMEOUT_MS: '5000',
    DPO_SAGEMAKER_MAX_ATTEMPTS: '2',
    DPO_SAGEMAKER_S3_FORCE_PATH_STYLE: 'true',
    DPO_HF_ENDPOINT: hub.url,
    DPO_HF_CONNECTIONS: JSON.stringify({ [CONNECTION]: { namespace: NAMESPACE, token_file: tokenPath } }),
    DPO_HF_MAX_ATTEMPTS: '4',
    DPO_HF_RETRY_BASE_MS: '10',
    DPO_HF_REQUEST_TIMEOUT_MS: '10000',
    AWS_ENDPOINT_URL_SAGEMAKER: sm.url,
    AWS_ENDPOINT_URL_S3: s3.url,
    ...extra,
  };
}

export interface SmFakes {
  sm: FakeSageMaker;
  s3: FakeS3;
  hub: FakeHub;
  tokenPath: string;
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startSmFakes(
  fake: Omit<FakeSageMakerOptions, 's3'> = {},
  hubOptions: Partial<FakeHubOptions> = {},
): Promise<SmFakes> {
  const s3 = await startFakeS3();
  const sm = await startFakeSageMaker({ s3, ...fake });
  const hub = await startFakeHub({ tokens: [HUB_TOKEN], ...hubOptions });
  const tokenPath = tokenFile();
  return {
    sm,
    s3,
    hub,
    tokenPath,
    env: smEnv(sm, s3, hub, tokenPath),
    async stop() {
      await sm.close();
      await s3.close();
      await hub.close();
    },
  };
}

/** A trained model's manifest and files in the fake S3, as training leaves them. */
export function putModel(s3: FakeS3, files: Record<string, string>, model = MODEL_ID): string {
  const prefix = `operator/training/job-x/dpo-job-x/output/model/`;
  for (const [path, content] of Object.entries(files)) s3.put(BUCKET, `${prefix}${path}`, content);
  s3.put(
    BUCKET,
    `operator/models/${model}/manifest.json`,
    JSON.stringify({
      model_id: model,
      artifacts_uri: `s3://${BUCKET}/${prefix}`,
      training_job_name: 'dpo-job-x',
      job_id: 'job-x',
      metrics: {},
    }),
  );
  return prefix;
}

export interface SmStack extends SmFakes {
  cp: TestControlPlane;
  td: TestDaemon;
  executor: SageMakerExecutor;
  submit(type: string, input: unknown, extra?: Record<string, unknown>): Promise<Job>;
  get(id: string): Promise<Job>;
  settle(id: string, timeoutMs?: number): Promise<Job>;
}

export async function startSmStack(
  fake: Omit<FakeSageMakerOptions, 's3'> = {},
  env: Record<string, string> = {},
  options: { cp?: Partial<ControlPlaneOptions>; jobTimeoutMs?: number; hub?: Partial<FakeHubOptions> } = {},
): Promise<SmStack> {
  const fakes = await startSmFakes(fake, options.hub);
  const cp = await startTestControlPlane(options.cp ?? {});
  const executor = new SageMakerExecutor(loadSageMakerConfig({ ...fakes.env, ...env }));
  const td = await startTestDaemon(cp, {
    executors: [executor],
    jobTimeoutMs: options.jobTimeoutMs ?? 6 * 3_600_000,
  });
  const c = clients(cp);
  return {
    ...fakes,
    cp,
    td,
    executor,
    submit: (type, input, extra) => c.submit(type, input, extra),
    async get(id) {
      return (await c.user<Job>('GET', `/v1/jobs/${id}`)).body;
    },
    async settle(id, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`job ${id} did not end in ${timeoutMs} ms`);
        const r = await call<Job>(cp.url, 'GET', `/v1/jobs/${id}/wait?timeout_ms=${Math.min(left, 10_000)}`, {
          token: cp.adminToken,
        });
        if (['completed', 'failed', 'cancelled'].includes(r.body.state)) return r.body;
      }
    },
    async stop() {
      await td.stop();
      await executor.close();
      await cp.close();
      await fakes.stop();
    },
  };
}
