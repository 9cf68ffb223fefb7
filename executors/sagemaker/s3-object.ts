/**
 * An S3 object as a `Blob` that holds none of its bytes: `size` is known from the listing, `stream()`
 * opens a ranged GetObject when first read, and `slice()` is another lazy view (a narrower range). So
 * `@huggingface/hub` hashes it (it reads `stream()` for anything over 10 MB), uploads it (`fetch`
 * sends a Blob body by reading `stream()`, with its `size` as content-length) and splits it into parts
 * for a multipart upload without a multi-gigabyte file ever being held in memory; a retried upload
 * simply reads the range again. `arrayBuffer()` buffers, and is only used by the library on small
 * things (the 512-byte sample of preupload, files under 10 MB).
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';

export interface ObjectSource {
  s3: S3Client;
  bucket: string;
  key: string;
  /** The job's signal: every read stops with it. */
  signal: AbortSignal;
  /** Bound on one ranged read, from the first byte asked to the last received. */
  readTimeoutMs: number;
  /** Told of each ranged GetObject (tests count them; logs). */
  onRead?: (key: string, start: number, end: number) => void;
}

export class S3ObjectBlob extends Blob {
  readonly source: ObjectSource;
  readonly start: number;
  readonly end: number;

  constructor(source: ObjectSource, start: number, end: number) {
    super([]);
    this.source = source;
    this.start = start;
    this.end = Math.max(start, end);
    // Blob's size and type are accessors of the native class: shadow them on the instance.
    Object.defineProperty(this, 'size', { value: this.end - this.start, enumerable: true });
    Object.defineProperty(this, 'type', { value: 'application/octet-stream', enumerable: true });
  }

  override slice(start?: number, end?: number, _type?: string): Blob {
    const size = this.end - this.start;
    const rel = (n: number | undefined, dflt: number) =>
      n === undefined ? dflt : n < 0 ? Math.max(size + n, 0) : Math.min(n, size);
    const from = rel(start, 0);
    const to = Math.max(from, rel(end, size));
    return new S3ObjectBlob(this.source, this.start + from, this.start + to);
  }

  override stream(): ReadableStream<Uint8Array<ArrayBuffer>> {
    const { s3, bucket, key, signal, readTimeoutMs } = this.source;
    const { start, end } = this;
    let chunks: AsyncIterator<Uint8Array> | undefined;
    return new ReadableStream<Uint8Array<ArrayBuffer>>(
      {
        pull: async (controller) => {
          if (end <= start) return controller.close();
          if (!chunks) {
            this.source.onRead?.(key, start, end);
            const out = await s3.send(
              new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${end - 1}` }),
              { abortSignal: AbortSignal.any([signal, AbortSignal.timeout(readTimeoutMs)]) },
            );
            const body = out.Body as unknown as AsyncIterable<Uint8Array> | undefined;
            if (!body) throw new Error(`GetObject s3://${bucket}/${key} answered without a body`);
            chunks = body[Symbol.asyncIterator]();
          }
          const next = await chunks.next();
          if (next.done) controller.close();
          else
            controller.enqueue(
              new Uint8Array(
                next.value.buffer,
                next.value.byteOffset,
                next.value.byteLength,
              ) as Uint8Array<ArrayBuffer>,
            );
        },
        cancel: async () => {
          await chunks?.return?.();
        },
      },
      { highWaterMark: 0 },
    );
  }

  override async arrayBuffer(): Promise<ArrayBuffer> {
    return (await this.bytes()).buffer;
  }

  override async bytes(): Promise<Uint8Array<ArrayBuffer>> {
    const out = new Uint8Array(this.size);
    let at = 0;
    for await (const chunk of this.stream() as unknown as AsyncIterable<Uint8Array>) {
      out.set(chunk, at);
      at += chunk.byteLength;
    }
    if (at !== this.size) {
      throw new Error(`s3://${this.source.bucket}/${this.source.key}: read ${at} bytes of ${this.size}`);
    }
    return out;
  }

  override async text(): Promise<string> {
    return new TextDecoder().decode(await this.bytes());
  }
}
