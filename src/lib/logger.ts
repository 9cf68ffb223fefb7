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

export function createLogger(
  options: { level?: string; name?: string; destination?: pino.DestinationStream } = {},
): Logger {
  const opts: pino.LoggerOptions = {
    level: options.level ?? 'info',
    ...(options.name ? { name: options.name } : {}),
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // Every secret value the process holds (src/lib/secrets.ts), wherever it appears in a line.
    hooks: { streamWrite: redactSecrets },
  };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}

export type { Logger };
