/**
 * What a user meets at the edges of the CLI: a usage error exits 2 in every command (1 is a crash),
 * the bin on a Node too old for its TypeScript sources says which Node it needs, and the logger
 * writes an error's message, code and cause.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { describeError } from '../src/client/transport.ts';
import { createLogger } from '../src/lib/logger.ts';
import { runCli } from './support/processes.ts';

async function cli(args: string[]) {
  const p = runCli(args, { DPO_DATA_DIR: tmpdir() });
  const code = await p.exited;
  return { code, err: p.stderr() };
}

describe('usage errors exit 2 everywhere, as in jobs', () => {
  it.each([
    [['bogus'], /unknown command 'bogus'/],
    [['job', 'list'], /unknown command 'job'/],
    [['run', '--bogus'], /unknown option '--bogus'/],
    [['config', 'chek'], /unknown command 'chek'/],
    [['control-plane', '--listen'], /option '--listen <host:port>' argument missing/],
    [['jobs', 'list', '--bogus'], /unknown option '--bogus'/],
  ])('%j', async (args, message) => {
    const r = await cli(args);
    expect(r.err).toMatch(message);
    expect(r.code).toBe(2);
  });

  it('help and --version exit 0', async () => {
    expect((await cli(['--help'])).code).toBe(0);
    expect((await cli(['--version'])).code).toBe(0);
    expect((await cli(['config', 'check', '--help'])).code).toBe(0);
  });
});

describe('bin/dataplane-operator.js on a Node older than 22.18', () => {
  it('says which Node it needs instead of an ERR_UNKNOWN_FILE_EXTENSION stack', () => {
    // The version as Node 20 reports it, set before the bin runs (the machine's own Node 20 shows the
    // same; this works wherever the tests run).
    const dir = mkdtempSync(join(tmpdir(), 'dpo-old-node-'));
    const preload = join(dir, 'node20.mjs');
    writeFileSync(preload, "Object.defineProperty(process.versions, 'node', { value: '20.20.2' });\n");
    const bin = join(import.meta.dirname, '..', 'bin', 'dataplane-operator.js');
    const r = spawnSync(process.execPath, ['--import', preload, '--', bin, 'run'], { encoding: 'utf8' });
    expect(r.stderr).toMatch(/dataplane-operator needs Node >= 22\.18 \(24 recommended\)/);
    expect(r.stderr).toMatch(/This is Node 20\.20\.2/);
    expect(r.stderr).not.toMatch(/ERR_UNKNOWN_FILE_EXTENSION/);
    expect(r.status).toBe(1);
  });
});

describe('the logger writes errors with their message, code and cause', () => {
  function capture() {
    const lines: any[] = [];
    const destination = new Writable({
      write(chunk, _enc, cb) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        cb();
      },
    });
    return { log: createLogger({ destination }), lines };
  }

  it('an Error with a code and a cause chain', () => {
    const { log, lines } = capture();
    const inner = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), {
      code: 'ECONNREFUSED',
      errno: -111,
    });
    const outer = Object.assign(new Error('the control plane is unreachable', { cause: inner }), {
      code: 'UND_ERR_CONNECT',
    });
    log.warn({ err: outer }, 'poll failed');
    expect(lines[0].err).toMatchObject({
      type: 'Error',
      message: 'the control plane is unreachable',
      code: 'UND_ERR_CONNECT',
      cause: {
        type: 'Error',
        message: 'connect ECONNREFUSED 127.0.0.1:9',
        code: 'ECONNREFUSED',
        errno: -111,
      },
    });
  });

  it('a described error stays as described (not {"type":"Object","stack":""})', () => {
    const { log, lines } = capture();
    log.warn({ err: describeError(Object.assign(new Error('refused'), { code: 'EPIPE' })) }, 'x');
    expect(lines[0].err).toEqual({ type: 'Error', message: 'refused', code: 'EPIPE' });
    log.error({ err: 'a string thrown' }, 'y');
    expect(lines[1].err).toEqual({ message: 'a string thrown' });
  });
});
