/**
 * `dataplane-operator emr upload-runner --env-file config/aws.env`: puts the PySpark runner
 * (executors/emr-serverless/runner/job_runner.py, shipped in the image too) at DPO_EMR_ENTRY_POINT,
 * with the executor's own configuration and S3 client settings (region, endpoint, path style, bounded
 * retries, timeouts), and prints where it went and its SHA-256. Run it once per release of the
 * operator: the runner and the operator's spec format go together.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadEmrConfig } from '../daemon/builtin-executors.ts';
import { awsClientOptions, awsError, callSignal } from '../executor/aws.ts';
import { ConfigError, mergeEnv, userPath } from '../lib/config.ts';

/** The runner as shipped: beside the executor in the sources, and in the image's dist/ tree. */
export const RUNNER_PATH = join(
  import.meta.dirname,
  '..',
  '..',
  'executors',
  'emr-serverless',
  'runner',
  'job_runner.py',
);

export interface UploadResult {
  uri: string;
  bytes: number;
  sha256: string;
}

/** Uploads `file` to the configured entry point; throws a ConfigError or a JobError (with its cause). */
export async function uploadRunner(
  env: Record<string, string | undefined>,
  file = RUNNER_PATH,
): Promise<UploadResult> {
  const c = loadEmrConfig(env);
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(c.entryPoint);
  if (!m) throw new ConfigError([`DPO_EMR_ENTRY_POINT: expected s3://bucket/key, got '${c.entryPoint}'`]);
  let body: Buffer;
  try {
    body = readFileSync(file);
  } catch (err) {
    throw new ConfigError([`--file ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`]);
  }
  const { PutObjectCommand, S3Client } = await import('@aws-sdk/client-s3');
  const s3 = new S3Client({
    ...awsClientOptions({
      region: c.region,
      maxAttempts: c.maxAttempts,
      requestTimeoutMs: c.requestTimeoutMs,
      endpoint: c.s3Endpoint,
    }),
    forcePathStyle: c.forcePathStyle,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const sha256 = createHash('sha256').update(body).digest('hex');
  try {
    await s3.send(
      new PutObjectCommand({
        Bucket: m[1],
        Key: m[2],
        Body: body,
        ContentType: 'text/x-python',
        Metadata: { 'dpo-sha256': sha256 },
      }),
      { abortSignal: callSignal(new AbortController().signal, c.requestTimeoutMs) },
    );
  } catch (err) {
    throw awsError(err, `PutObject ${c.entryPoint}`);
  } finally {
    s3.destroy();
  }
  return { uri: c.entryPoint, bytes: body.length, sha256 };
}

export function registerEmrCommand(program: Command): void {
  const emr = program.command('emr').description('EMR Serverless setup helpers.');
  emr
    .command('upload-runner')
    .description("Upload the PySpark runner to DPO_EMR_ENTRY_POINT (S3), with the executor's settings.")
    .option('--env-file <file...>', 'read variables from env files (the environment wins)')
    .option('--file <path>', 'upload this runner instead of the shipped one')
    .action(async (opts: { envFile?: string[]; file?: string }) => {
      try {
        const env = mergeEnv(opts.envFile ?? []);
        const r = await uploadRunner(env, opts.file ? resolve(userPath(opts.file)) : RUNNER_PATH);
        process.stdout.write(`uploaded ${r.bytes} bytes to ${r.uri} (sha256 ${r.sha256})\n`);
      } catch (err) {
        process.stderr.write(`${(err as Error).message}\n`);
        process.exit(err instanceof ConfigError ? 2 : 1);
      }
    });
}
