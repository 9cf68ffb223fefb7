/**
 * The parts the `jobs` CLI and `dev` share, in process: the job formatting both print with, and
 * where `jobs` finds its token (the project's one secret-file reader, its errors as usage errors).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  duration,
  lastFailure,
  outcomeSummary,
  progressBar,
  progressText,
  seconds,
} from '../src/cli/format.ts';
import { UsageError } from '../src/cli/jobs/exit-codes.ts';
import { resolveToken, resolveUrl } from '../src/cli/jobs.ts';
import type { Job } from '../src/contract/index.ts';

const job = (fields: Partial<Job>): Job => ({ failures: [], progress: null, result: null, ...fields }) as Job;

describe('format', () => {
  it('writes durations for people and ticking seconds for live counters', () => {
    expect([4_200, 42_000, 185_000, 7_620_000, 273_600_000].map(duration)).toEqual([
      '4.2s',
      '42s',
      '3m05s',
      '2h07m',
      '3d4h',
    ]);
    expect(seconds(12_345)).toBe('12.3 s');
  });

  it('says how far a job is and why it failed, one way for `jobs` and `dev`', () => {
    const running = job({ state: 'running', progress: { fraction: 0.5, message: 'scanning' } });
    expect(progressText(running)).toBe('50% scanning');
    expect(progressBar(0.5, 4)).toBe('██░░');
    expect(progressBar(undefined, 4)).toBe('    ');
    expect(outcomeSummary(running)).toBe('scanning');
    const failed = job({
      state: 'failed',
      failures: [{ code: 'TIMEOUT', message: 'too slow' }] as Job['failures'],
    });
    expect(lastFailure(failed)).toBe('TIMEOUT: too slow');
    expect(outcomeSummary(failed)).toBe('(TIMEOUT: too slow)');
    expect(outcomeSummary(job({ state: 'completed', result: { affected_rows: 3 } }))).toBe('3 rows affected');
  });
});

describe('jobs connection', () => {
  it('reads the token from a file, and reports a missing or empty one as a usage error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpo-cli-parts-'));
    writeFileSync(join(dir, 'admin.token'), 'secret-token\n');
    writeFileSync(join(dir, 'empty.token'), '\n');
    expect(resolveToken({ tokenFile: join(dir, 'admin.token') }, {})).toBe('secret-token');
    expect(resolveToken({}, { DPO_DATA_DIR: dir })).toBe('secret-token');
    expect(() => resolveToken({ tokenFile: join(dir, 'missing') }, {})).toThrow(UsageError);
    expect(() => resolveToken({}, { DPO_API_TOKEN_FILE: join(dir, 'empty.token') })).toThrow(
      /DPO_API_TOKEN_FILE: .*empty/,
    );
  });

  it('defaults to the bundled control plane and refuses what is not an http URL', () => {
    expect(resolveUrl({}, {})).toBe('http://127.0.0.1:8700');
    expect(resolveUrl({ url: 'http://cp.example:8700/' }, {})).toBe('http://cp.example:8700');
    expect(() => resolveUrl({ url: 'ftp://cp' }, {})).toThrow(UsageError);
  });
});
