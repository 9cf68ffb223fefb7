/**
 * The secrets net (src/lib/secrets.ts): registered values are replaced in the daemon's log lines, in
 * failures (before they are cut), and in the forms they take inside JSON and URLs. End to end, per
 * executor: test/integrity/secrets*.test.ts.
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { coerceError } from '../../src/daemon/run-job.ts';
import { JobError } from '../../src/executor/index.ts';
import { createLogger } from '../../src/lib/logger.ts';
import {
  clearSecrets,
  REDACTED,
  redactSecrets,
  redactSecretsDeep,
  registerSecret,
} from '../../src/lib/secrets.ts';

const KEY = 'sk-live/5ecret+"quoted"\\back';

afterEach(() => clearSecrets());

describe('redaction', () => {
  it('replaces every occurrence, its JSON-escaped and URL-encoded forms, and leaves other text alone', () => {
    expect(redactSecrets(`a ${KEY} b`)).toBe(`a ${KEY} b`);
    registerSecret(`  ${KEY}\n`);
    expect(redactSecrets(`invalid key ${KEY}; again ${KEY}`)).toBe(
      `invalid key ${REDACTED}; again ${REDACTED}`,
    );
    expect(redactSecrets(JSON.stringify({ m: `key ${KEY}` }))).toBe(JSON.stringify({ m: `key ${REDACTED}` }));
    expect(redactSecrets(`https://x/?k=${encodeURIComponent(KEY)}`)).toBe(`https://x/?k=${REDACTED}`);
    expect(redactSecrets('nothing secret here')).toBe('nothing secret here');
  });

  it('ignores values too short to be credentials', () => {
    registerSecret('abc');
    registerSecret(undefined);
    expect(redactSecrets('abc abc')).toBe('abc abc');
  });

  it('a secret containing another is replaced whole', () => {
    registerSecret('token-1234');
    registerSecret('token-1234-extended');
    expect(redactSecrets('x token-1234-extended y')).toBe(`x ${REDACTED} y`);
  });

  it('works on nested values, keys included', () => {
    registerSecret(KEY);
    expect(redactSecretsDeep({ a: [{ [KEY]: `v ${KEY}` }], n: 1 })).toEqual({
      a: [{ [REDACTED]: `v ${REDACTED}` }],
      n: 1,
    });
  });
});

describe('where text leaves the process', () => {
  it("the daemon's log lines", async () => {
    registerSecret(KEY);
    const lines: string[] = [];
    const dest = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const log = createLogger({ destination: dest });
    log.error({ err: { message: `refused ${KEY}` } }, `backend said ${KEY}`);
    await new Promise((r) => setImmediate(r));
    expect(lines.join('')).toContain('backend said [redacted]');
    expect(lines.join('')).not.toContain('5ecret');
  });

  it('failures: message and details, redacted before they are cut', () => {
    const long = 'sk-0123456789abcdef0123456789abcdef';
    registerSecret(long);
    const f = coerceError(
      new JobError('MODEL_REQUEST_REJECTED', `${'x'.repeat(3_990)}${long}`, {
        retryable: false,
        details: { body: `{"error":"bad key ${long}"}` },
      }),
    );
    expect(f.message).not.toContain('sk-0123');
    expect(JSON.stringify(f.details)).not.toContain(long);
    expect(JSON.stringify(f.details)).toContain(REDACTED);
    expect(coerceError(new Error(`boom ${long}`)).message).toBe(`Error: boom ${REDACTED}`);
  });
});
