/**
 * A small S3 on 127.0.0.1 speaking the REST-XML protocol the AWS SDK uses with path-style addressing:
 * PutObject, GetObject (with `Range: bytes=a-b`), HeadObject, DeleteObject, ListObjectsV2. Enough for
 * the executors' specs and results; objects live in memory, except generated ones (`generate`): their
 * bytes are computed on the fly for each read, so a test can serve a file of gigabytes that exists
 * nowhere, neither on disk nor in memory.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeS3 {
  url: string;
  objects: Map<string, Buffer>;
  /** Every request as `METHOD /bucket/key`. */
  requests: string[];
  put(bucket: string, key: string, body: string): void;
  get(bucket: string, key: string): string | undefined;
  /**
   * An object of `size` bytes made of 1 MiB blocks, the i-th being `block(i)` (the last one cut short),
   * computed on each read.
   */
  generate(bucket: string, key: string, size: number, block: (index: number) => Buffer): void;
  /** Bytes served by GetObject, all objects together (what a reader really pulled). */
  bytesServed(): number;
  /**
   * The next `times` requests whose `METHOD /bucket/key` matches are answered with an S3 error
   * (`<Error><Code>…<Message>…`), before anything else.
   */
  failNext(match: RegExp, error: { status: number; code: string; message: string }, times?: number): void;
  close(): Promise<void>;
}

const xml = (res: ServerResponse, status: number, body: string) => {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
};
const esc = (s: string) => s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
const noSuchKey = (res: ServerResponse, key: string) =>
  xml(
    res,
    404,
    `<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>${esc(key)}</Key></Error>`,
  );

/** The block size of generated objects. */
export const GENERATED_BLOCK = 1 << 20;

interface Generated {
  size: number;
  block: (index: number) => Buffer;
}

/** Streams bytes [start, end) of a generated object block by block, honouring backpressure. */
async function streamGenerated(
  res: ServerResponse,
  g: Generated,
  start: number,
  end: number,
): Promise<number> {
  let sent = 0;
  for (let at = start; at < end; ) {
    const index = Math.floor(at / GENERATED_BLOCK);
    const from = at - index * GENERATED_BLOCK;
    const chunk = g.block(index).subarray(from, Math.min(GENERATED_BLOCK, from + (end - at)));
    at += chunk.length;
    sent += chunk.length;
    if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
    if (res.destroyed) break;
  }
  res.end();
  return sent;
}

/** The `[start, end)` of a `Range: bytes=a-b` header (a suffix or open range included), if any. */
function range(header: string | undefined, size: number): [number, number] | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header ?? '');
  if (!m) return undefined;
  if (m[1] === '') return [Math.max(0, size - Number(m[2])), size];
  return [Number(m[1]), m[2] === '' ? size : Math.min(size, Number(m[2]) + 1)];
}

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export async function startFakeS3(): Promise<FakeS3> {
  const objects = new Map<string, Buffer>();
  const generated = new Map<string, Generated>();
  const requests: string[] = [];
  let served = 0;
  const faults: Array<{ match: RegExp; status: number; code: string; message: string }> = [];
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const [, bucket = '', ...rest] = url.pathname.split('/');
      const key = decodeURIComponent(rest.join('/'));
      const id = `${bucket}/${key}`;
      requests.push(`${req.method} /${id}`);
      const fault = faults.findIndex((f) => f.match.test(`${req.method} /${id}`));
      if (fault >= 0) {
        const [f] = faults.splice(fault, 1) as [(typeof faults)[number]];
        await body(req);
        return xml(
          res,
          f.status,
          `<Error><Code>${esc(f.code)}</Code><Message>${esc(f.message)}</Message></Error>`,
        );
      }
      if (req.method === 'PUT' && key) {
        const data = await body(req);
        objects.set(id, data);
        generated.delete(id);
        res.writeHead(200, { etag: `"${data.length.toString(16)}"` });
        return res.end();
      }
      const gen = generated.get(id);
      if ((req.method === 'GET' || req.method === 'HEAD') && key && gen) {
        const [start, end] = range(req.headers.range, gen.size) ?? [0, gen.size];
        res.writeHead(req.headers.range ? 206 : 200, {
          'content-type': 'application/octet-stream',
          'content-length': req.method === 'HEAD' ? gen.size : end - start,
          ...(req.headers.range ? { 'content-range': `bytes ${start}-${end - 1}/${gen.size}` } : {}),
        });
        if (req.method === 'HEAD') return res.end();
        served += await streamGenerated(res, gen, start, end);
        return;
      }
      if ((req.method === 'GET' || req.method === 'HEAD') && key) {
        const data = objects.get(id);
        if (!data) {
          if (req.method === 'HEAD') {
            res.writeHead(404);
            return res.end();
          }
          return noSuchKey(res, key);
        }
        const r = req.method === 'GET' ? range(req.headers.range, data.length) : undefined;
        const part = r ? data.subarray(r[0], r[1]) : data;
        res.writeHead(r ? 206 : 200, {
          'content-type': 'application/octet-stream',
          'content-length': req.method === 'HEAD' ? data.length : part.length,
          ...(r ? { 'content-range': `bytes ${r[0]}-${r[1] - 1}/${data.length}` } : {}),
        });
        if (req.method === 'GET') served += part.length;
        return res.end(req.method === 'HEAD' ? undefined : part);
      }
      if (req.method === 'DELETE' && key) {
        objects.delete(id);
        generated.delete(id);
        res.writeHead(204);
        return res.end();
      }
      if (req.method === 'GET' && url.searchParams.get('list-type') === '2') {
        const prefix = url.searchParams.get('prefix') ?? '';
        const sizeOf = (k: string) => objects.get(k)?.length ?? generated.get(k)?.size ?? 0;
        const keys = [...objects.keys(), ...generated.keys()]
          .filter((k) => k.startsWith(`${bucket}/${prefix}`))
          .map((k) => k.slice(bucket.length + 1))
          .sort();
        return xml(
          res,
          200,
          `<ListBucketResult><Name>${esc(bucket)}</Name><Prefix>${esc(prefix)}</Prefix><KeyCount>${keys.length}</KeyCount><IsTruncated>false</IsTruncated>${keys
            .map((k) => `<Contents><Key>${esc(k)}</Key><Size>${sizeOf(`${bucket}/${k}`)}</Size></Contents>`)
            .join('')}</ListBucketResult>`,
        );
      }
      xml(res, 400, '<Error><Code>NotImplemented</Code><Message>not in the fake</Message></Error>');
    })().catch((err: unknown) => {
      res.writeHead(500);
      res.end(String(err));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    objects,
    requests,
    put: (bucket, key, text) => objects.set(`${bucket}/${key}`, Buffer.from(text)),
    get: (bucket, key) => objects.get(`${bucket}/${key}`)?.toString(),
    generate: (bucket, key, size, block) => generated.set(`${bucket}/${key}`, { size, block }),
    bytesServed: () => served,
    failNext(match, error, times = 1) {
      for (let i = 0; i < times; i++) faults.push({ match, ...error });
    },
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
