/**
 * A small S3 on 127.0.0.1 speaking the REST-XML protocol the AWS SDK uses with path-style addressing:
 * PutObject, GetObject, HeadObject, DeleteObject, ListObjectsV2. Enough for the executors' specs and
 * results; objects live in memory.
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

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export async function startFakeS3(): Promise<FakeS3> {
  const objects = new Map<string, Buffer>();
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const [, bucket = '', ...rest] = url.pathname.split('/');
      const key = decodeURIComponent(rest.join('/'));
      const id = `${bucket}/${key}`;
      requests.push(`${req.method} /${id}`);
      if (req.method === 'PUT' && key) {
        const data = await body(req);
        objects.set(id, data);
        res.writeHead(200, { etag: `"${data.length.toString(16)}"` });
        return res.end();
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
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': data.length });
        return res.end(req.method === 'HEAD' ? undefined : data);
      }
      if (req.method === 'DELETE' && key) {
        objects.delete(id);
        res.writeHead(204);
        return res.end();
      }
      if (req.method === 'GET' && url.searchParams.get('list-type') === '2') {
        const prefix = url.searchParams.get('prefix') ?? '';
        const keys = [...objects.keys()]
          .filter((k) => k.startsWith(`${bucket}/${prefix}`))
          .map((k) => k.slice(bucket.length + 1))
          .sort();
        return xml(
          res,
          200,
          `<ListBucketResult><Name>${esc(bucket)}</Name><Prefix>${esc(prefix)}</Prefix><KeyCount>${keys.length}</KeyCount><IsTruncated>false</IsTruncated>${keys
            .map(
              (k) =>
                `<Contents><Key>${esc(k)}</Key><Size>${objects.get(`${bucket}/${k}`)?.length ?? 0}</Size></Contents>`,
            )
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
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
