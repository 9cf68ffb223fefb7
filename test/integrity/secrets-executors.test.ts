/**
 * Secrets never leak, through every executor's failure paths (issue 15, item 8; the EMR Serverless
 * case is `secrets.test.ts`). For each executor a `dataplane-operator run` child process runs against
 * the bundled control plane and protocol-level fakes, with recognisable secret values configured
 * (the operator token always; the executor's own key, token or passphrase), through the executor's
 * failure paths, at least one of them a fake that ECHOES the secret back in its error message. No
 * value, nor a 16-character prefix of one, may appear in the daemon's stdout or stderr, any job's
 * failures or result, any job's log, or the metrics.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { answer, startFakeBedrock } from '../fakes/bedrock.ts';
import { startFakeHub } from '../fakes/hf-hub.ts';
import { chatAnswer, startFakeOpenAi } from '../fakes/openai.ts';
import { startFakeS3 } from '../fakes/s3.ts';
import { startFakeSageMaker } from '../fakes/sagemaker.ts';
import { startSnowflakeFake } from '../fakes/snowflake.ts';
import { waitFor } from '../helpers.ts';
import { seedInput } from '../inference/support.ts';
import { deliveryInput, putModel, smEnv, trainingInput } from '../sagemaker/support.ts';
import {
  AWS_SANDBOX,
  expectNoLeakAndEchoCaught,
  OPERATOR_TOKEN,
  startLeakStack,
  summary,
} from './secrets-support.ts';

let cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

const secretFile = (name: string, value: string): string => {
  const dir = mkdtempSync(join(tmpdir(), 'dpo-secret-'));
  const file = join(dir, name);
  writeFileSync(file, `${value}\n`, { mode: 0o600 });
  return file;
};

/** A model_inference_run input whose prompt carries `marker` (the fakes answer by marker). */
const inference = (marker: string) => {
  const i = seedInput();
  (i.messages[1] as { text: string }).text += ` [${marker}]`;
  return i;
};
const markerOf = (body: unknown) => /\[(m-[a-z0-9-]+)\]/.exec(JSON.stringify(body))?.[1];

it('openai-compatible: the API key leaks nowhere on 401 (echoed), a 429 burst, 500s, invalid output', async () => {
  const API_KEY = 'sk-SECRETAPIKEY-1f4e-do-not-log-0000';
  const fake = await startFakeOpenAi((req) => {
    switch (markerOf(req.body.messages)) {
      case 'm-401':
        // The server quotes the key it refused, as OpenAI's own 401 does.
        return { status: 401, message: `Incorrect API key provided: ${API_KEY}. Find your API key at …` };
      case 'm-429':
        return { status: 429, message: 'Rate limit reached', retryAfter: '0' };
      case 'm-500':
        return { status: 500, message: 'The server had an error while processing your request' };
      default:
        return chatAnswer(req, 'this is not JSON at all');
    }
  });
  cleanup.push(() => fake.close());
  const s = await startLeakStack({
    DPO_EXECUTORS: 'openai-compatible',
    DPO_OPENAI_COMPAT_BASE_URL: fake.url,
    DPO_OPENAI_COMPAT_API_KEY_FILE: secretFile('api-key', API_KEY),
    DPO_OPENAI_COMPAT_MAX_ATTEMPTS: '2',
    DPO_OPENAI_COMPAT_REQUEST_TIMEOUT_MS: '5000',
    DPO_OPENAI_COMPAT_MODELS: JSON.stringify({ 'anthropic.claude-sonnet-4.5': 'qwen2.5:7b-instruct' }),
  });
  cleanup.push(() => s.close());
  const ids = await Promise.all(
    ['m-401', 'm-429', 'm-500', 'm-invalid'].map((m) => s.submit('model_inference_run', inference(m))),
  );
  const jobs = await s.settle(ids);
  console.log(`secrets openai-compatible: ${summary(jobs)}`);
  // The key was sent (the fake saw it), and every path failed the attempt.
  expect(fake.requests.some((r) => r.authorization === `Bearer ${API_KEY}`)).toBe(true);
  for (const j of jobs) expect(j.failures.length, j.type).toBeGreaterThan(0);
  await expectNoLeakAndEchoCaught(s, ids, jobs, { apiKey: API_KEY });
}, 90_000);

it('bedrock: the AWS secret key and session token leak nowhere on access denied and expired credentials (echoed), throttling, 5xx, invalid output', async () => {
  const AWS_SECRET = 'SECRETAWSKEY/2b7d+do+not+log+1111111111';
  const AWS_SESSION = 'SECRETSESSIONTOKEN-8e1f-do-not-log';
  const fake = await startFakeBedrock({
    respond: (req) => {
      switch (markerOf(req.body.messages)) {
        case 'm-denied':
          return {
            status: 403,
            errorType: 'AccessDeniedException',
            message: `User is not authorized to perform bedrock:InvokeModel with session ${AWS_SESSION}`,
          };
        case 'm-expired':
          return {
            status: 403,
            errorType: 'ExpiredTokenException',
            message: `The security token included in the request is expired: ${AWS_SESSION} (key ${AWS_SECRET})`,
          };
        case 'm-throttled':
          return { status: 429, errorType: 'ThrottlingException', message: 'Too many requests' };
        case 'm-5xx':
          return { status: 500, errorType: 'InternalServerException', message: 'boom' };
        default:
          return answer(req, 'not JSON, not even after a repair');
      }
    },
  });
  cleanup.push(() => fake.close());
  const s = await startLeakStack({
    DPO_EXECUTORS: 'bedrock',
    ...AWS_SANDBOX,
    AWS_SECRET_ACCESS_KEY: AWS_SECRET,
    AWS_SESSION_TOKEN: AWS_SESSION,
    AWS_ENDPOINT_URL_BEDROCK_RUNTIME: fake.url,
    DPO_BEDROCK_MAX_ATTEMPTS: '2',
    DPO_BEDROCK_REQUEST_TIMEOUT_MS: '5000',
  });
  cleanup.push(() => s.close());
  const ids = await Promise.all(
    ['m-denied', 'm-expired', 'm-throttled', 'm-5xx', 'm-invalid'].map((m) =>
      s.submit('model_inference_run', inference(m)),
    ),
  );
  const jobs = await s.settle(ids);
  console.log(`secrets bedrock: ${summary(jobs)}`);
  expect(fake.requests.every((r) => r.signed)).toBe(true);
  for (const j of jobs) expect(j.failures.length, j.type).toBeGreaterThan(0);
  await expectNoLeakAndEchoCaught(s, ids, jobs, { awsSecret: AWS_SECRET, awsSession: AWS_SESSION });
}, 90_000);

it('snowflake: the OAuth token leaks nowhere on a refused login, a failed statement (echoed), a session expiring, a cancel', async () => {
  const OAUTH = 'SECRETOAUTHTOKEN-3a9c-do-not-log-2222';
  const { publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  // The fake reads the accepted token at each login: a wrong one first (a refused login).
  const options = {
    account: 'myorg-test',
    user: 'DPO_OPERATOR',
    publicKeyPem: publicKey,
    oauthToken: 'another-token-entirely',
    database: 'NARRATIVE',
  };
  const fake = await startSnowflakeFake(options);
  cleanup.push(() => fake.close());
  await fake.sql('CREATE SCHEMA IF NOT EXISTS company_56');
  for (const id of [21, 22, 23, 24]) {
    await fake.sql(
      `CREATE TABLE company_56.dataset_${id} AS SELECT i AS id, i * 1.5 AS x FROM range(1, 101) t(i)`,
    );
  }
  const s = await startLeakStack({
    DPO_EXECUTORS: 'snowflake',
    SNOWFLAKE_DISABLE_PLATFORM_DETECTION: 'true',
    DPO_SNOWFLAKE_ACCOUNT: options.account,
    DPO_SNOWFLAKE_USER: options.user,
    DPO_SNOWFLAKE_ROLE: 'DPO_ROLE',
    DPO_SNOWFLAKE_DATABASE: options.database,
    DPO_SNOWFLAKE_WAREHOUSE: 'DPO_WH',
    DPO_SNOWFLAKE_AUTHENTICATOR: 'OAUTH',
    DPO_SNOWFLAKE_OAUTH_TOKEN_FILE: secretFile('oauth-token', OAUTH),
    DPO_SNOWFLAKE_URL: fake.url,
    DPO_SNOWFLAKE_POLL_MIN_MS: '10',
    DPO_SNOWFLAKE_POLL_MAX_MS: '50',
    DPO_SNOWFLAKE_CANCEL_WAIT_MS: '500',
    DPO_SNOWFLAKE_REQUEST_TIMEOUT_MS: '5000',
    DPO_SNOWFLAKE_POOL_SIZE: '2',
  });
  cleanup.push(() => s.close());
  const dml = (id: number, sql: string) => ({
    dataset_id: id,
    nql: 'n/a',
    compiled_sql: sql,
    nio_last_modified_at: '2024-01-15T10:30:00Z',
  });

  // A refused login.
  const refused = await s.submit(
    'datasets_execute_dml',
    dml(21, 'DELETE FROM company_56.dataset_21 WHERE id > 90'),
  );
  const [refusedJob] = await s.settle([refused]);
  expect(fake.logins.refused.length).toBeGreaterThan(0);
  options.oauthToken = OAUTH;

  // A failed statement whose error quotes the token; a session expiring mid-statement; a cancel.
  fake.failures.push({
    match: /^DELETE FROM company_56\.dataset_22/,
    at: 'execute',
    code: '100090',
    message: `Session token ${OAUTH} may not run this statement`,
  });
  fake.delays.push({ match: /^DELETE FROM company_56\.dataset_23/, ms: 1_500 });
  fake.delays.push({ match: /^UPDATE company_56\.dataset_24/, ms: 20_000 });
  const failed = await s.submit(
    'datasets_execute_dml',
    dml(22, 'DELETE FROM company_56.dataset_22 WHERE id > 90'),
  );
  const expiring = await s.submit(
    'datasets_execute_dml',
    dml(23, 'DELETE FROM company_56.dataset_23 WHERE id > 95'),
  );
  const cancelled = await s.submit('datasets_execute_dml', dml(24, 'UPDATE company_56.dataset_24 SET x = 0'));
  await waitFor(() => fake.executions(/^DELETE FROM company_56\.dataset_23/)[0], {
    what: 'the delete submitted',
    timeoutMs: 20_000,
  });
  const loginsBefore = fake.logins.ok;
  fake.expireSessions('390114');
  await waitFor(() => fake.executions(/^UPDATE company_56\.dataset_24/)[0], {
    what: 'the update submitted',
    timeoutMs: 20_000,
  });
  await s.cancel(cancelled);
  const rest = await s.settle([failed, expiring, cancelled]);
  const jobs = [refusedJob as (typeof rest)[number], ...rest];
  console.log(`secrets snowflake: ${summary(jobs)}`);
  expect(refusedJob?.failures.length).toBeGreaterThan(0);
  expect(rest[0]?.failures.length).toBeGreaterThan(0);
  expect(rest[2]?.state).toBe('cancelled');
  // The expired session was met (the executor logged in again).
  expect(fake.logins.ok).toBeGreaterThan(loginsBefore);
  await expectNoLeakAndEchoCaught(s, [refused, failed, expiring, cancelled], jobs, { oauthToken: OAUTH });
}, 90_000);

it('sagemaker: the Hub token and AWS secrets leak nowhere on a training failure (echoed), Hub 401, 403 and 5xx (echoed), S3 errors (echoed)', async () => {
  const HF_TOKEN = 'hf_SECRETHUBTOKEN_6d2b_do_not_log';
  const AWS_SECRET = 'SECRETAWSKEY/7c3a+do+not+log+3333333333';
  const AWS_SESSION = 'SECRETSESSIONTOKEN-1d5e-do-not-log';
  const s3 = await startFakeS3();
  const sm = await startFakeSageMaker({ s3, mode: 'manual' });
  const hub = await startFakeHub({ tokens: [HF_TOKEN] });
  cleanup.push(
    () => hub.close(),
    () => sm.close(),
    () => s3.close(),
  );
  const s = await startLeakStack({
    DPO_EXECUTORS: 'sagemaker',
    ...AWS_SANDBOX,
    AWS_SECRET_ACCESS_KEY: AWS_SECRET,
    AWS_SESSION_TOKEN: AWS_SESSION,
    ...smEnv(sm, s3, hub, secretFile('token', HF_TOKEN), { DPO_HF_MAX_ATTEMPTS: '2' }),
  });
  cleanup.push(() => s.close());

  // Training: one refused at create (the error quotes the session token), one that fails (its
  // failure reason quotes the Hub token, as a training script printing its environment would).
  sm.failNext('CreateTrainingJob', {
    status: 400,
    type: 'ExpiredTokenException',
    message: `The security token included in the request is expired: ${AWS_SESSION}`,
  });
  const refusedTraining = await s.submit(
    'model_training_run',
    trainingInput({ trained_model_version: '1.0.1' }),
  );
  const [refusedJob] = await s.settle([refusedTraining]);
  const failingTraining = await s.submit(
    'model_training_run',
    trainingInput({ trained_model_version: '1.0.2' }),
  );
  const training = await waitFor(() => [...sm.jobs.values()][0], { what: 'the training job created' });
  sm.setState(training.name, 'Failed', 'Failed', `AlgorithmError: login failed with HF_TOKEN=${HF_TOKEN}`);

  // Delivery: Hub 401 quoting the token, 403, 5xx; a manifest missing from S3.
  putModel(s3, { 'config.json': '{"a":1}', 'model.safetensors': 'weights' });
  hub.failNext('create', 401, 1, {}, `Invalid credentials in Authorization header: Bearer ${HF_TOKEN}`);
  const d401 = await s.submit('models_deliver_model', deliveryInput({ model_name: 'Leak A' }));
  const [d401Job] = await s.settle([d401]);
  hub.failNext('create', 403, 1);
  const d403 = await s.submit('models_deliver_model', deliveryInput({ model_name: 'Leak B' }));
  const [d403Job] = await s.settle([d403]);
  // A 5xx whose body quotes the token: HUB_UNAVAILABLE quotes the library's message (HUB_AUTH never does).
  hub.failNext('create', 503, 2, {}, `upstream unavailable for Bearer ${HF_TOKEN}`);
  const d5xx = await s.submit('models_deliver_model', deliveryInput({ model_name: 'Leak C' }));
  const [d5xxJob] = await s.settle([d5xx]);
  const s3Missing = await s.submit(
    'models_deliver_model',
    deliveryInput({ model_id: 'company-56-nowhere-v1-0-0' }),
  );
  // S3 refusing the manifest's read, its message quoting the session token.
  s3.failNext(/^GET \/dpo-models\/operator\/models\/company-56-denied/, {
    status: 403,
    code: 'AccessDenied',
    message: `Access Denied for session ${AWS_SESSION}`,
  });
  const s3Denied = await s.submit(
    'models_deliver_model',
    deliveryInput({ model_id: 'company-56-denied-v1-0-0' }),
  );
  const rest = await s.settle([failingTraining, s3Missing, s3Denied]);
  const ids = [refusedTraining, d401, d403, d5xx, failingTraining, s3Missing, s3Denied];
  const jobs = [refusedJob, d401Job, d403Job, d5xxJob, ...rest].map((j) => j as NonNullable<typeof j>);
  console.log(`secrets sagemaker: ${summary(jobs)}`);
  for (const j of jobs) expect(j.failures.length, `${j.type} ${j.id}`).toBeGreaterThan(0);
  // The Hub saw the deliveries' attempts: 401, 403, then 503 twice (DPO_HF_MAX_ATTEMPTS=2).
  // The Hub's and S3's echoes reached the failures, redacted.
  expect(JSON.stringify(d5xxJob?.failures)).toContain('[redacted]');
  expect(JSON.stringify(jobs.at(-1)?.failures)).toContain('[redacted]');
  expect(hub.calls.create).toBeGreaterThanOrEqual(4);
  await expectNoLeakAndEchoCaught(s, ids, jobs, {
    hfToken: HF_TOKEN,
    awsSecret: AWS_SECRET,
    awsSession: AWS_SESSION,
  });
}, 90_000);

it('snowflake key pair: the private key passphrase leaks nowhere on a failed statement that quotes it', async () => {
  const PASSPHRASE = 'SECRETPASSPHRASE-9b4f-do-not-log-4444';
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: PASSPHRASE },
  });
  const fake = await startSnowflakeFake({
    account: 'myorg-test',
    user: 'DPO_OPERATOR',
    publicKeyPem: publicKey,
    database: 'NARRATIVE',
  });
  cleanup.push(() => fake.close());
  await fake.sql('CREATE SCHEMA IF NOT EXISTS company_56');
  await fake.sql('CREATE TABLE company_56.dataset_31 AS SELECT i AS id FROM range(1, 11) t(i)');
  fake.failures.push({
    match: /^DELETE FROM company_56\.dataset_31/,
    at: 'submit',
    code: '002003',
    message: `Object does not exist, or operation cannot be performed (passphrase ${PASSPHRASE})`,
    sqlState: '02000',
  });
  const s = await startLeakStack({
    DPO_EXECUTORS: 'snowflake',
    SNOWFLAKE_DISABLE_PLATFORM_DETECTION: 'true',
    DPO_SNOWFLAKE_ACCOUNT: 'myorg-test',
    DPO_SNOWFLAKE_USER: 'DPO_OPERATOR',
    DPO_SNOWFLAKE_ROLE: 'DPO_ROLE',
    DPO_SNOWFLAKE_DATABASE: 'NARRATIVE',
    DPO_SNOWFLAKE_WAREHOUSE: 'DPO_WH',
    DPO_SNOWFLAKE_PRIVATE_KEY_FILE: secretFile('rsa_key.p8', privateKey),
    DPO_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE: secretFile('passphrase', PASSPHRASE),
    DPO_SNOWFLAKE_URL: fake.url,
    DPO_SNOWFLAKE_POLL_MIN_MS: '10',
    DPO_SNOWFLAKE_POLL_MAX_MS: '50',
    DPO_SNOWFLAKE_REQUEST_TIMEOUT_MS: '5000',
  });
  cleanup.push(() => s.close());
  const ids = [
    await s.submit('datasets_execute_dml', {
      dataset_id: 31,
      nql: 'n/a',
      compiled_sql: 'DELETE FROM company_56.dataset_31 WHERE id > 5',
      nio_last_modified_at: '2024-01-15T10:30:00Z',
    }),
  ];
  const jobs = await s.settle(ids);
  console.log(`secrets snowflake key pair: ${summary(jobs)}`);
  // The key opened with the passphrase (a login succeeded), and the statement failed.
  expect(fake.logins.ok).toBeGreaterThan(0);
  for (const j of jobs) expect(j.failures.length, j.type).toBeGreaterThan(0);
  await expectNoLeakAndEchoCaught(s, ids, jobs, { passphrase: PASSPHRASE });
}, 90_000);

it('local: the operator token leaks nowhere on bad SQL (quoting it) and a forbidden write', async () => {
  const s = await startLeakStack({
    DPO_EXECUTORS: 'local',
    DPO_DATA_DIR: mkdtempSync(join(tmpdir(), 'dpo-secrets-local-')),
  });
  cleanup.push(() => s.close());
  const ids = [
    // DuckDB's error quotes the statement's text, here the token (an echo through the engine).
    await s.submit('datasets_create_table', {
      dataset_id: 1,
      compiled_sql: `CREATE TABLE company_56.dataset_1 (id INTEGER) '${OPERATOR_TOKEN}'`,
    }),
    // Another company's table: refused.
    await s.submit('datasets_create_table', {
      dataset_id: 2,
      compiled_sql: 'CREATE TABLE company_57.dataset_2 (id INTEGER)',
    }),
  ];
  const jobs = await s.settle(ids);
  console.log(`secrets local: ${summary(jobs)}`);
  for (const j of jobs) expect(j.failures.length, j.type).toBeGreaterThan(0);
  await expectNoLeakAndEchoCaught(s, ids, jobs, {});
}, 90_000);
