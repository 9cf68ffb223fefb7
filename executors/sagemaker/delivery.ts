/**
 * `models_deliver_model`: copies a trained model's files from S3 to a Hugging Face Hub repository in
 * one commit, streaming each file (see `s3-object.ts`), with `@huggingface/hub` doing the Hub's
 * protocol (repository creation, preupload, LFS batch and upload, the NDJSON commit).
 *
 * Where the files are. Training writes a manifest per model id (`<prefix>/models/<model_id>/
 * manifest.json`, naming the S3 prefix of the artefacts); delivery reads it and lists that prefix.
 *
 * Resuming after a crash. The checkpoint records the repository, the commit title (which carries the
 * job id), the paths whose upload finished, and, once the commit landed, its oid. A claim that
 * carries a commit oid only reads the result back. Otherwise, before committing, the repository's
 * commits are searched for our title: a commit that landed before the crash (and before its oid
 * could be checkpointed) is found and not made again. LFS objects already uploaded are not sent
 * again: the Hub's LFS batch answers them without an upload action, and the library skips them
 * (they are still read from S3 once, to hash them: the Hub names LFS objects by their sha256).
 *
 * The result (`model_files_uploaded`, `total_size_bytes`) is read back from the repository's tree at
 * the commit: what was actually committed, not what was meant to be.
 */
import { readFileSync } from 'node:fs';
import {
  GetObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  NoSuchKey,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { CommitOperation } from '@huggingface/hub';
import { z } from 'zod';
import type { ModelsDeliverModelInput } from '../../src/catalogue/models.ts';
import { awsError, callSignal } from '../../src/executor/aws.ts';
import { abortReasonOf, type ExecuteContext, JobError, type JobHandle } from '../../src/executor/index.ts';
import { registerSecret } from '../../src/lib/secrets.ts';
import { type SageMakerConfig, slug } from './config.ts';
import { hubError, hubFetch } from './hub-fetch.ts';
import { S3ObjectBlob } from './s3-object.ts';
import { ModelManifest, manifestKey } from './training.ts';

export const DeliveryCheckpoint = z.object({
  delivery: z.object({
    repo: z.string().min(1),
    title: z.string().min(1),
    /** Paths whose upload to the Hub's storage finished (LFS), as the library reported them. */
    uploaded: z.array(z.string()).default([]),
    commit_oid: z.string().min(1).optional(),
  }),
});
export type DeliveryCheckpoint = z.infer<typeof DeliveryCheckpoint>;

export interface DeliveryDeps {
  config: SageMakerConfig;
  s3: S3Client;
  /** The Hub library, loaded once by the executor. */
  hub: typeof import('@huggingface/hub');
  /** Test hook: told of each ranged S3 read of a model file. */
  onRead?: (key: string, start: number, end: number) => void;
}

interface ModelFile {
  key: string;
  /** Path in the repository: relative to the artefacts' prefix. */
  path: string;
  size: number;
}

/** The marker of this job in a commit title: how a commit that already landed is recognised. */
export const commitMarker = (jobId: string) => `[dpo job ${jobId}]`;

export async function runDelivery(
  deps: DeliveryDeps,
  job: JobHandle<ModelsDeliverModelInput>,
  ctx: ExecuteContext,
): Promise<unknown> {
  const c = deps.config;
  const input = job.input;
  const connection = c.connections[input.connection_id];
  if (!connection) {
    throw new JobError(
      'HUB_CONNECTION_UNKNOWN',
      `connection '${input.connection_id}' is not configured on this data plane (DPO_HF_CONNECTIONS)`,
      { retryable: false, details: { connection_id: input.connection_id } },
    );
  }
  const accessToken = readToken(connection.token_file, input.connection_id);
  const fetch = hubFetch({
    signal: ctx.signal,
    requestTimeoutMs: c.hubRequestTimeoutMs,
    uploadTimeoutMs: c.hubUploadTimeoutMs,
    maxAttempts: c.hubMaxAttempts,
    baseMs: c.hubRetryBaseMs,
    onRetry: (what, attempt, delayMs, why) =>
      ctx.log.warn('Hub request retried', { request: what, attempt, delay_ms: delayMs, why }),
    // A commit whose answer is lost may have landed: looked up below, never blindly sent again.
    ambiguous: (method, url) => method === 'POST' && /\/api\/models\/[^/]+\/[^/]+\/commit\//.test(url),
  });
  const saved = ctx.checkpoint ? DeliveryCheckpoint.safeParse(ctx.checkpoint) : undefined;
  if (ctx.checkpoint && !saved?.success) ctx.log.warn('ignoring a checkpoint this executor did not write');
  // A resumed delivery goes on where it started, even if the connection's namespace changed since.
  const repoName = saved?.success
    ? saved.data.delivery.repo
    : `${connection.namespace}/${slug(input.model_name)}`;
  const repo = { type: 'model' as const, name: repoName };
  const common = { hubUrl: c.hubUrl, accessToken, fetch };
  const destinationUrl = `${c.hubUrl}/${repoName}`;
  const state: DeliveryCheckpoint['delivery'] = saved?.success
    ? saved.data.delivery
    : {
        repo: repoName,
        title: `Deliver ${input.model_id} ${input.model_version} ${commitMarker(job.id)}`,
        uploaded: [],
      };
  const hub = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (abortReasonOf(ctx.signal)) throw ctx.signal.reason;
      throw hubError(err, what, input.connection_id);
    }
  };

  const files = await listModelFiles(deps, input.model_id, ctx.signal);
  if (state.commit_oid === undefined) {
    await hub('create the repository', () => ensureRepo(deps, common, repoName, input, ctx));
    state.commit_oid = await hub('list the commits', () => findCommit(deps, common, repo, job.id));
    if (state.commit_oid) {
      ctx.log.info('the delivery commit landed before a restart: not committing again', {
        commit: state.commit_oid,
      });
    } else {
      try {
        state.commit_oid = await hub('commit', () => commit(deps, common, repo, files, state, ctx));
        ctx.log.info('model files committed', { commit: state.commit_oid, files: files.length });
      } catch (err) {
        // A commit whose answer was lost (5xx, reset) may have landed all the same: look before
        // failing, so that a retry never commits twice.
        if (!(err instanceof JobError && err.retryable)) throw err;
        const landed = await hub('list the commits', () => findCommit(deps, common, repo, job.id));
        if (!landed) throw err;
        ctx.log.warn('the commit landed although its answer was lost', { commit: landed });
        state.commit_oid = landed;
      }
    }
    await ctx.saveCheckpoint({ delivery: { ...state } });
  }
  const oid = state.commit_oid;
  // What the commit holds, among the files we meant to deliver.
  const wanted = new Set(files.map((f) => f.path));
  let count = 0;
  let bytes = 0;
  await hub('list the committed files', async () => {
    for await (const entry of deps.hub.listFiles({ ...common, repo, recursive: true, revision: oid })) {
      if (entry.type !== 'file' || !wanted.has(entry.path)) continue;
      count++;
      bytes += entry.lfs?.size ?? entry.size;
    }
  });
  if (count !== files.length) {
    throw new JobError(
      'HUB_COMMIT_INCOMPLETE',
      `the commit ${oid} of ${repoName} holds ${count} of the ${files.length} model files`,
      // Not retryable: the next attempt would find the same commit and read the same tree.
      { retryable: false, details: { commit: oid, repo: repoName } },
    );
  }
  ctx.progress({ fraction: 1, message: `delivered ${count} files to ${repoName}` });
  return {
    type: 'models_deliver_model',
    result: {
      destination_url: destinationUrl,
      status: 'completed',
      model_files_uploaded: count,
      total_size_bytes: bytes,
      commit_oid: oid,
    },
  };
}

function readToken(file: string, connectionId: string): string {
  try {
    const token = readFileSync(file, 'utf8').trim();
    registerSecret(token);
    if (token) return token;
  } catch {
    // fall through: the message names the connection and the file, never a token
  }
  throw new JobError(
    'HUB_TOKEN_UNREADABLE',
    `the token file of connection '${connectionId}' (${file}) is missing, unreadable or empty`,
    { retryable: false, details: { connection_id: connectionId } },
  );
}

interface HubCommon {
  hubUrl: string;
  accessToken: string;
  fetch: typeof fetch;
}

/** The model's files, from its manifest's S3 prefix. */
async function listModelFiles(deps: DeliveryDeps, model: string, signal: AbortSignal): Promise<ModelFile[]> {
  const c = deps.config;
  const key = manifestKey(c.prefix, model);
  let text: string | undefined;
  try {
    const out = await deps.s3.send(new GetObjectCommand({ Bucket: c.bucket, Key: key }), {
      abortSignal: callSignal(signal, c.requestTimeoutMs),
    });
    text = await out.Body?.transformToString();
  } catch (err) {
    if (!(err instanceof NoSuchKey || (err as { name?: string }).name === 'NoSuchKey')) {
      if (signal.aborted) throw err;
      throw awsError(err, `GetObject s3://${c.bucket}/${key}`);
    }
  }
  const manifest = text === undefined ? undefined : ModelManifest.safeParse(safeJson(text));
  if (!manifest?.success) {
    throw new JobError(
      'MODEL_NOT_FOUND',
      `no trained model '${model}' here: s3://${c.bucket}/${key} is ${text === undefined ? 'missing' : 'not a model manifest'}`,
      { retryable: false },
    );
  }
  const m = /^s3:\/\/([^/]+)\/(.*)$/.exec(manifest.data.artifacts_uri) as RegExpExecArray;
  const bucket = m[1] as string;
  const prefix = m[2] as string;
  if (bucket !== c.bucket) {
    throw new JobError('MODEL_NOT_FOUND', `the artefacts of '${model}' are outside the bucket ${c.bucket}`, {
      retryable: false,
    });
  }
  const files: ModelFile[] = [];
  let token: string | undefined;
  do {
    let out: ListObjectsV2CommandOutput;
    try {
      out = await deps.s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
        { abortSignal: callSignal(signal, c.requestTimeoutMs) },
      );
    } catch (err) {
      if (signal.aborted) throw err;
      throw awsError(err, `ListObjectsV2 ${manifest.data.artifacts_uri}`);
    }
    for (const o of out.Contents ?? []) {
      if (!o.Key || o.Key.endsWith('/')) continue;
      files.push({ key: o.Key, path: o.Key.slice(prefix.length).replace(/^\/+/, ''), size: o.Size ?? 0 });
    }
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  if (files.length === 0) {
    throw new JobError('MODEL_NOT_FOUND', `no files under ${manifest.data.artifacts_uri}`, {
      retryable: false,
    });
  }
  return files.sort((a, b) => a.path.localeCompare(b.path));
}

/**
 * Creates the repository with the job's visibility; one that exists already is reused when it is
 * ours to write (the connection's namespace, visible to its token) and not public when the job asks
 * for a private one (that would publish the model).
 */
async function ensureRepo(
  deps: DeliveryDeps,
  common: HubCommon,
  repoName: string,
  input: ModelsDeliverModelInput,
  ctx: ExecuteContext,
): Promise<void> {
  const visibility = input.quick_settings?.repository_visibility ?? 'private';
  try {
    await deps.hub.createRepo({ ...common, repo: { type: 'model', name: repoName }, visibility });
    ctx.log.info('Hub repository created', { repo: repoName, visibility });
    return;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 409) throw err;
  }
  const res = await common.fetch(`${common.hubUrl}/api/models/${repoName}`, {
    headers: { Authorization: `Bearer ${common.accessToken}` },
  });
  if (!res.ok) {
    await res.body?.cancel();
    throw Object.assign(
      new Error(`the repository ${repoName} exists but cannot be read (HTTP ${res.status})`),
      {
        statusCode: res.status === 404 ? 409 : res.status,
      },
    );
  }
  const info = z.looseObject({ private: z.boolean().optional() }).safeParse(await res.json());
  if (visibility === 'private' && info.success && info.data.private === false) {
    throw new JobError(
      'HUB_REPOSITORY_PUBLIC',
      `the repository ${repoName} exists and is public; the job asks for a private one (not delivering)`,
      { retryable: false },
    );
  }
  ctx.log.info('Hub repository exists: reusing it', { repo: repoName });
}

/** The oid of a commit of this job on main, when one landed already. */
async function findCommit(
  deps: DeliveryDeps,
  common: HubCommon,
  repo: { type: 'model'; name: string },
  jobId: string,
): Promise<string | undefined> {
  const marker = commitMarker(jobId);
  for await (const commit of deps.hub.listCommits({ ...common, repo, batchSize: 100 })) {
    if (commit.title.includes(marker)) return commit.oid;
  }
  return undefined;
}

async function commit(
  deps: DeliveryDeps,
  common: HubCommon,
  repo: { type: 'model'; name: string },
  files: ModelFile[],
  state: DeliveryCheckpoint['delivery'],
  ctx: ExecuteContext,
): Promise<string> {
  const c = deps.config;
  const operations: CommitOperation[] = files.map((f) => ({
    operation: 'addOrUpdate',
    path: f.path,
    content: new S3ObjectBlob(
      {
        s3: deps.s3,
        bucket: c.bucket,
        key: f.key,
        signal: ctx.signal,
        readTimeoutMs: c.hubUploadTimeoutMs,
        ...(deps.onRead ? { onRead: deps.onRead } : {}),
      },
      0,
      f.size,
    ),
  }));
  await ctx.saveCheckpoint({ delivery: { ...state } });
  const total = files.reduce((n, f) => n + f.size, 0);
  const sizes = new Map(files.map((f) => [f.path, f.size]));
  const done = new Set(state.uploaded);
  const it = deps.hub.commitIter({
    ...common,
    repo,
    title: state.title,
    description: 'Delivered by the dataplane-operator.',
    operations,
    useXet: false,
    abortSignal: ctx.signal,
  });
  for (;;) {
    const next = await it.next();
    if (next.done) {
      const oid = next.value?.commit.oid;
      if (!oid)
        throw new JobError('HUB_COMMIT_FAILED', 'the Hub answered the commit without an oid', {
          retryable: true,
        });
      return oid;
    }
    const ev = next.value;
    if (ev.event === 'phase') {
      ctx.log.info('delivery phase', { phase: ev.phase });
      ctx.progress({ message: `delivering to ${repo.name}: ${ev.phase}`, phase: ev.phase });
    } else if (ev.state === 'uploading' && ev.progress === 1 && !done.has(ev.path)) {
      done.add(ev.path);
      state.uploaded = [...done];
      const sent = [...done].reduce((n, p) => n + (sizes.get(p) ?? 0), 0);
      ctx.progress({
        fraction: total > 0 ? Math.min(0.99, sent / total) : 0,
        message: `uploaded ${done.size} of ${files.length} files to ${repo.name}`,
      });
      await ctx.saveCheckpoint({ delivery: { ...state, uploaded: [...done] } });
    }
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
