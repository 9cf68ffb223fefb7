/**
 * Logs on a terminal are readable lines; anywhere else, JSON (what a collector reads). Redaction
 * happens before either.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { prettyDestination, prettyLine } from '../src/cli/pretty-log.ts';
import { createLogger } from '../src/lib/logger.ts';
import { waitFor } from './helpers.ts';

const MAIN = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');

describe('the pretty destination', () => {
  it('writes time, level, message and fields, after redaction', () => {
    const lines: string[] = [];
    const out = { write: (s: string) => lines.push(s) } as unknown as NodeJS.WritableStream;
    const log = createLogger({ name: 'x', destination: prettyDestination(out, false) });
    log.info({ job_id: 'j-1', token: 'secret-value', note: 'two words' }, 'job started');
    log.warn('careful');
    expect(lines[0]).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}job started {2}job_id=j-1 token=\[redacted\] note="two words"\n$/,
    );
    expect(lines[1]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN {2}careful\n$/);
    expect(lines.join('')).not.toContain('secret-value');
    expect(prettyLine('not json', true)).toBe('not json');
    const esc = String.fromCharCode(27);
    expect(prettyLine('{"level":"error","time":"2026-11-29T10:11:12.345Z","msg":"boom"}', true)).toBe(
      `10:11:12.345 ${esc}[31mERROR${esc}[0m boom`,
    );
  });
});

function firstLine(args: string[], viaTerminal: boolean): Promise<string> {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME };
  const command = [process.execPath, MAIN, ...args].join(' ');
  // `script` gives the child a pseudo-terminal (util-linux); otherwise stdout is a pipe.
  const child = viaTerminal
    ? spawn('script', ['-qec', command, '/dev/null'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, [MAIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return waitFor(() => /[^\n]*control plane listening[^\n]*\n/.exec(out)?.[0], {
    timeoutMs: 20_000,
    what: 'the first log line',
  }).finally(() => child.kill('SIGKILL'));
}

describe('control-plane logs', () => {
  it('are readable on a terminal and JSON through a pipe', async () => {
    const args = ['control-plane', '--db', ':memory:', '--listen', '127.0.0.1:0', '--data-dir'];
    const [tty, pipe] = await Promise.all([
      firstLine([...args, mkdtempSync(join(tmpdir(), 'dpo-log-'))], true),
      firstLine([...args, mkdtempSync(join(tmpdir(), 'dpo-log-'))], false),
    ]);
    const esc = String.fromCharCode(27);
    expect(tty.startsWith('{')).toBe(false);
    expect(tty).toContain(`${esc}[32mINFO ${esc}[0m control plane listening  url=http://127.0.0.1:`);
    expect(tty).toMatch(/^\d\d:\d\d:\d\d\.\d{3} /);
    expect(JSON.parse(pipe)).toMatchObject({ level: 'info', msg: 'control plane listening' });
  });
});
