/**
 * Logs for a person at a terminal: pino's JSON lines (already redacted) rewritten as
 * `12:03:04.567 INFO  message  key=value …`, level in colour. `run` and `control-plane` use it when
 * stdout is a terminal, JSON otherwise (a collector reads JSON). Written here rather than taken from
 * pino-pretty, which is not a dependency and brings eight packages for what this does in forty lines.
 */
import type { DestinationStream } from 'pino';

const COLOURS: Record<string, string> = {
  trace: '\x1b[90m',
  debug: '\x1b[36m',
  info: '\x1b[32m',
  warn: '\x1b[33m',
  error: '\x1b[31m',
  fatal: '\x1b[35m',
};
const RESET = '\x1b[0m';
/** Fields every line has, or that the prefix shows: not repeated as key=value. */
const SKIP = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name']);

function value(v: unknown): string {
  if (typeof v === 'string') return /[\s="]/.test(v) || v === '' ? JSON.stringify(v) : v;
  return JSON.stringify(v) ?? String(v);
}

/** One JSON log line as a readable line (unparseable input is passed through as it came). */
export function prettyLine(json: string, colour: boolean): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const level = String(o.level ?? 'info');
  const time = typeof o.time === 'string' ? o.time.slice(11, 23) : '';
  const tag = level.toUpperCase().padEnd(5);
  const fields = Object.entries(o)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => `${k}=${value(v)}`)
    .join(' ');
  const coloured = colour ? `${COLOURS[level] ?? ''}${tag}${RESET}` : tag;
  return `${time} ${coloured} ${String(o.msg ?? '')}${fields ? `  ${fields}` : ''}`;
}

/** A pino destination writing readable lines to `out` (stdout by default). */
export function prettyDestination(
  out: NodeJS.WritableStream = process.stdout,
  colour = true,
): DestinationStream {
  return {
    write(chunk: string) {
      for (const line of chunk.split('\n')) if (line) out.write(`${prettyLine(line, colour)}\n`);
    },
  };
}

/** JSON unless stdout is a terminal. */
export function logDestination(): DestinationStream | undefined {
  return process.stdout.isTTY ? prettyDestination(process.stdout, !process.env.NO_COLOR) : undefined;
}
