/**
 * A fake Hugging Face Hub on 127.0.0.1 serving what `@huggingface/hub`'s createRepo, commit (with
 * preupload, the LFS batch and basic LFS uploads) and listCommits / listFiles call:
 *
 * - `POST /api/repos/create` (409 when the repository exists)
 * - `GET /api/models/{ns}/{name}` (the repository's info, with `private`)
 * - `POST /api/models/{ns}/{name}/preupload/main` (files over `lfsThreshold` bytes are `lfs`)
 * - `POST /{ns}/{name}.git/info/lfs/objects/batch` (answers `transfer: "basic"`, so the client falls
 *   back from xet; objects stored already get no upload action)
 * - `PUT /lfs-upload/{oid}` (the body is hashed as it streams in, never held: the stored object is its
 *   sha256 and size, checked against the oid); with `multipartChunkSize`, larger objects go in parts
 *   (`PUT /lfs-part/{oid}/{n}`, then `POST /lfs-complete/{oid}`, checked against the oid)
 * - `POST /api/models/{ns}/{name}/commit/main` (NDJSON; every `lfsFile` must have been uploaded)
 * - `GET /api/models/{ns}/{name}/commits/main`, `GET /api/models/{ns}/{name}/tree/{rev}`
 *
 * Tokens: a request without one of `tokens` as its Bearer token is answered 401. Faults can be injected
 * per operation, and a hook sees each request before it is answered.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type HubOp =
  | 'create'
  | 'info'
  | 'preupload'
  | 'batch'
  | 'upload'
  | 'part'
  | 'complete'
  | 'commit'
  | 'commits'
  | 'tree';

export interface HubFile {
  path: string;
  size: number;
  /** sha256 of an LFS file; undefined for a regular one. */
  lfs?: string;
  /** Content of a regular file. */
  content?: Buffer;
}

export interface HubCommit {
  id: string;
  title: string;
  message: string;
  date: string;
  /** The whole tree after this commit. */
  files: Map<string, HubFile>;
}

export interface HubRepo {
  name: string;
  private: boolean;
  commits: HubCommit[];
}

export interface FakeHubOptions {
  tokens: string[];
  /** Files larger than this are LFS (default 1 MiB). */
  lfsThreshold?: number;
  /**
   * LFS objects larger than this are uploaded in parts of this size (the Hub's multipart transfer:
   * one PUT per part, then a completion POST); default: never.
   */
  multipartChunkSize?: number;
  beforeAnswer?: (op: HubOp, req: IncomingMessage) => void | Promise<void>;
  /** Called once a commit is recorded, before it is answered (to kill the committer right there). */
  afterCommit?: (commit: HubCommit) => void | Promise<void>;
}

export interface FakeHub {
  url: string;
  /** The options, live: a test may swap `beforeAnswer` between phases. */
  options: FakeHubOptions;
  repos: Map<string, HubRepo>;
  /** Stored LFS objects: oid → size. */
  lfs: Map<string, number>;
  /** Completed uploads per oid (a resumed delivery must not upload an object twice). */
  uploads: Map<string, number>;
  calls: Record<HubOp, number>;
  /** Every Authorization header value seen (tests check no other token was sent). */
  authorizations: Set<string>;
  /** The next `times` requests of `op` are answered `status`, with `message` as the body's error if given. */
  failNext(
    op: HubOp,
    status: number,
    times?: number,
    headers?: Record<string, string>,
    message?: string,
  ): void;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

export async function startFakeHub(options: FakeHubOptions): Promise<FakeHub> {
  const repos = new Map<string, HubRepo>();
  const lfs = new Map<string, number>();
  const uploads = new Map<string, number>();
  const authorizations = new Set<string>();
  const calls: Record<HubOp, number> = {
    create: 0,
    info: 0,
    preupload: 0,
    batch: 0,
    upload: 0,
    part: 0,
    complete: 0,
    commit: 0,
    commits: 0,
    tree: 0,
  };
  const injected = new Map<
    HubOp,
    Array<{ status: number; headers: Record<string, string>; message?: string | undefined }>
  >();
  const threshold = options.lfsThreshold ?? 1 << 20;
  /** Multipart uploads in progress: oid → part number → bytes (test files only: small). */
  const parts = new Map<string, Map<number, Buffer>>();
  let url = '';
  const uploadAction = (oid: string, size: number) => {
    const chunk = options.multipartChunkSize;
    if (!chunk || size <= chunk) return { href: `${url}/lfs-upload/${oid}?size=${size}`, header: {} };
    const header: Record<string, string> = { chunk_size: String(chunk) };
    for (let n = 1; n <= Math.ceil(size / chunk); n++) {
      header[String(n).padStart(5, '0')] = `${url}/lfs-part/${oid}/${n}`;
    }
    return { href: `${url}/lfs-complete/${oid}`, header };
  };

  const route = (method: string, path: string): { op: HubOp; repo?: string; rest?: string } | undefined => {
    if (method === 'POST' && path === '/api/repos/create') return { op: 'create' };
    if (method === 'PUT' && path.startsWith('/lfs-upload/')) return { op: 'upload', rest: path.slice(12) };
    if (method === 'PUT' && path.startsWith('/lfs-part/')) return { op: 'part', rest: path.slice(10) };
    if (method === 'POST' && path.startsWith('/lfs-complete/'))
      return { op: 'complete', rest: path.slice(14) };
    let m = /^\/([^/]+\/[^/.]+)\.git\/info\/lfs\/objects\/batch$/.exec(path);
    if (method === 'POST' && m) return { op: 'batch', repo: m[1] as string };
    m = /^\/api\/models\/([^/]+\/[^/]+)(?:\/(preupload|commit|commits|tree)\/([^/]+))?$/.exec(path);
    if (!m) return undefined;
    const repo = m[1] as string;
    if (!m[2] && method === 'GET') return { op: 'info', repo };
    if (m[2] === 'preupload' && method === 'POST') return { op: 'preupload', repo };
    if (m[2] === 'commit' && method === 'POST') return { op: 'commit', repo };
    if (m[2] === 'commits' && method === 'GET') return { op: 'commits', repo };
    if (m[2] === 'tree' && method === 'GET')
      return { op: 'tree', repo, rest: decodeURIComponent(m[3] as string) };
    return undefined;
  };

  const server: Server = createServer((req, res) => {
    void (async () => {
      const u = new URL(req.url ?? '/', 'http://localhost');
      const r = route(req.method ?? 'GET', u.pathname);
      if (!r) return json(res, 404, { error: `not in the fake: ${req.method} ${u.pathname}` });
      calls[r.op]++;
      await options.beforeAnswer?.(r.op, req);
      const fault = injected.get(r.op)?.shift();
      if (fault) {
        await readBody(req);
        return json(res, fault.status, { error: fault.message ?? `injected ${fault.status}` }, fault.headers);
      }
      // LFS uploads go to storage with a pre-signed URL, not the token.
      if (r.op !== 'upload' && r.op !== 'part' && r.op !== 'complete') {
        const auth = req.headers.authorization ?? '';
        authorizations.add(auth);
        const token = auth.replace(/^Bearer /, '');
        if (!options.tokens.includes(token)) {
          await readBody(req);
          return json(res, 401, { error: 'Invalid credentials in Authorization header' });
        }
      }
      const repo = r.repo ? repos.get(r.repo) : undefined;
      if (r.repo && !repo) return json(res, 404, { error: `Repository not found: ${r.repo}` });
      switch (r.op) {
        case 'create': {
          const b = JSON.parse((await readBody(req)).toString());
          const name = `${b.organization}/${b.name}`;
          if (repos.has(name)) return json(res, 409, { error: 'You already created this model repo' });
          repos.set(name, { name, private: b.visibility !== 'public', commits: [] });
          return json(res, 200, { url: `${url}/${name}`, id: name });
        }
        case 'info':
          return json(res, 200, { id: repo?.name, private: repo?.private });
        case 'preupload': {
          const b = JSON.parse((await readBody(req)).toString());
          return json(res, 200, {
            files: b.files.map((f: { path: string; size: number }) => ({
              path: f.path,
              uploadMode: f.size > threshold ? 'lfs' : 'regular',
              shouldIgnore: false,
            })),
          });
        }
        case 'batch': {
          const b = JSON.parse((await readBody(req)).toString());
          return json(res, 200, {
            transfer: 'basic',
            objects: b.objects.map((o: { oid: string; size: number }) => ({
              oid: o.oid,
              size: o.size,
              ...(lfs.get(o.oid) === o.size ? {} : { actions: { upload: uploadAction(o.oid, o.size) } }),
            })),
          });
        }
        case 'upload': {
          const oid = r.rest as string;
          const hash = createHash('sha256');
          let size = 0;
          for await (const c of req) {
            hash.update(c as Buffer);
            size += (c as Buffer).length;
          }
          const digest = hash.digest('hex');
          if (digest !== oid || String(size) !== u.searchParams.get('size')) {
            return json(res, 400, { error: `upload does not match: sha ${digest}, ${size} bytes` });
          }
          lfs.set(oid, size);
          uploads.set(oid, (uploads.get(oid) ?? 0) + 1);
          res.writeHead(200, { etag: `"${oid}"` });
          return res.end();
        }
        case 'part': {
          const [oid = '', n = ''] = (r.rest as string).split('/');
          const data = await readBody(req);
          const list = parts.get(oid) ?? new Map<number, Buffer>();
          list.set(Number(n), data);
          parts.set(oid, list);
          res.writeHead(200, { etag: `"${createHash('md5').update(data).digest('hex')}"` });
          return res.end();
        }
        case 'complete': {
          const oid = r.rest as string;
          const b = JSON.parse((await readBody(req)).toString());
          const list = parts.get(oid) ?? new Map<number, Buffer>();
          const ordered = (b.parts as Array<{ partNumber: number; etag: string }>).map((p) => {
            const data = list.get(p.partNumber);
            const etag = data && `"${createHash('md5').update(data).digest('hex')}"`;
            return etag === p.etag ? data : undefined;
          });
          if (ordered.some((d) => d === undefined))
            return json(res, 400, { error: 'a part is missing or its etag differs' });
          const all = Buffer.concat(ordered as Buffer[]);
          if (createHash('sha256').update(all).digest('hex') !== oid) {
            return json(res, 400, { error: 'the parts do not make up the object' });
          }
          parts.delete(oid);
          lfs.set(oid, all.length);
          uploads.set(oid, (uploads.get(oid) ?? 0) + 1);
          return json(res, 200, {});
        }
        case 'commit': {
          const lines = (await readBody(req))
            .toString()
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l));
          const header = lines.find((l) => l.key === 'header')?.value ?? {};
          const parent = repo?.commits.at(-1);
          const files = new Map(parent?.files ?? []);
          for (const l of lines) {
            if (l.key === 'file') {
              const content = Buffer.from(l.value.content, 'base64');
              files.set(l.value.path, { path: l.value.path, size: content.length, content });
            } else if (l.key === 'lfsFile') {
              if (lfs.get(l.value.oid) !== l.value.size) {
                return json(res, 422, {
                  error: `LFS object ${l.value.oid} of ${l.value.path} was not uploaded`,
                });
              }
              files.set(l.value.path, { path: l.value.path, size: l.value.size, lfs: l.value.oid });
            } else if (l.key === 'deletedFile') files.delete(l.value.path);
          }
          const commit: HubCommit = {
            id: randomBytes(20).toString('hex'),
            title: header.summary ?? '',
            message: header.description ?? '',
            date: new Date().toISOString(),
            files,
          };
          repo?.commits.push(commit);
          await options.afterCommit?.(commit);
          return json(res, 200, {
            commitOid: commit.id,
            commitUrl: `${url}/${repo?.name}/commit/${commit.id}`,
            success: true,
          });
        }
        case 'commits':
          return json(
            res,
            200,
            [...(repo?.commits ?? [])].reverse().map((c) => ({
              id: c.id,
              title: c.title,
              message: c.message,
              authors: [{ user: 'operator', avatar: '' }],
              date: c.date,
            })),
          );
        case 'tree': {
          const rev = r.rest as string;
          const commit = rev === 'main' ? repo?.commits.at(-1) : repo?.commits.find((c) => c.id === rev);
          if (!commit && rev !== 'main') return json(res, 404, { error: `revision ${rev} not found` });
          return json(
            res,
            200,
            [...(commit?.files.values() ?? [])].map((f) => ({
              type: 'file',
              path: f.path,
              size: f.lfs ? 134 : f.size,
              oid: randomBytes(20).toString('hex'),
              ...(f.lfs ? { lfs: { oid: f.lfs, size: f.size, pointerSize: 134 } } : {}),
            })),
          );
        }
      }
    })().catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, { error: String(err) });
      else res.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    options,
    repos,
    lfs,
    uploads,
    calls,
    authorizations,
    failNext(op, status, times = 1, headers = {}, message = undefined) {
      const list = injected.get(op) ?? [];
      for (let i = 0; i < times; i++) list.push({ status, headers, message });
      injected.set(op, list);
    },
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
