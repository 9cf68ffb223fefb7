/**
 * Structured logs (pino, JSON on stdout). Secret-looking keys are redacted at the top level and
 * one level down, as a last line of defence: code never logs a secret on purpose. (Deeper
 * wildcards made every child logger several times more expensive than a no-op job.)
 */
import pino, { type Logger } from 'pino';
import { redactSecrets } from './secrets.ts';

const SECRET_KEYS = [
  'token',
  'lease_token',
  'password',
  'private_key',
  'privateKey',
  'secret',
  'authorization',
  'secretAccessKey',
  'sessionToken',
  'accessKeyId',
];

export const REDACT_PATHS = SECRET_KEYS.flatMap((k) => [k, `*.${k}`]).concat([
  'req.headers.authorization',
  'headers.authorization',
]);

/** Fields of an error worth a line: what failed, its code, how the transport or backend put it. */
const ERROR_FIELDS = ['code', 'errno', 'syscall', 'status', 'statusCode', 'retryable', 'kind'] as const;
const MAX_CAUSE_DEPTH = 4;

/**
 * The `err` (and `error`) field of a log line: an Error as `{type, message, code…, stack, cause}`, its
 * cause chain (and an AggregateError's errors) serialized the same way, a few levels deep. An object
 * that already describes an error (describeError's `{type, message, code}`) is kept as it is: pino's
 * standard serializer took it for an error and wrote `{"type":"Object","stack":""}`. Anything else
 * becomes `{message}`.
 */
export function serializeError(err: unknown, depth = 0): unknown {
  if (err instanceof Error) {
    const out: Record<string, unknown> = { type: err.name, message: err.message };
    for (const k of ERROR_FIELDS) {
      const v = (err as unknown as Record<string, unknown>)[k];
      if (v !== undefined && (typeof v !== 'object' || v === null)) out[k] = v;
    }
    if (err.stack) out.stack = err.stack;
    if (depth < MAX_CAUSE_DEPTH) {
      if (err.cause !== undefined) out.cause = serializeError(err.cause, depth + 1);
      if (err instanceof AggregateError)
        out.errors = err.errors.slice(0, 5).map((e) => serializeError(e, depth + 1));
    }
    return out;
  }
  if (typeof err === 'object' && err !== null) {
    const o = err as Record<string, unknown>;
    return o.cause instanceof Error && depth < MAX_CAUSE_DEPTH
      ? { ...o, cause: serializeError(o.cause, depth + 1) }
      : o;
  }
  return err === undefined ? err : { message: String(err) };
}

export function createLogger(
  options: { level?: string; name?: string; destination?: pino.DestinationStream } = {},
): Logger {
  const opts: pino.LoggerOptions = {
    level: options.level ?? 'info',
    ...(options.name ? { name: options.name } : {}),
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    serializers: { err: serializeError, error: serializeError },
    // Every secret value the process holds (src/lib/secrets.ts), wherever it appears in a line.
    hooks: { streamWrite: redactSecrets },
  };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}

export type { Logger };
