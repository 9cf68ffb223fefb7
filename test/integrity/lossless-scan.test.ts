/**
 * The lossless parse takes its reviver path only for a run of 16 digits outside the string literals
 * (issue 27: a report of 50 entries took it ~20 % of the time for the digit runs of its lease tokens).
 */
import { describe, expect, it } from 'vitest';
import { mayHoldLongInteger, parseJsonLossless } from '../../src/contract/json.ts';

describe('the lossless parse scans outside strings', () => {
  it('ignores digit runs inside strings: lease tokens, escaped quotes', () => {
    const token = '1234567890123456789012345678abcd';
    const body = JSON.stringify({
      reports: [{ id: 'x', lease_token: token, outcome: 'complete', result: { n: 1 } }],
    });
    expect(/\d{16}/.test(body)).toBe(true);
    expect(mayHoldLongInteger(body)).toBe(false);
    expect(parseJsonLossless(body)).toEqual(JSON.parse(body));
    const escaped = '{"a":"say \\"12345678901234567\\" twice","b":2}';
    expect(mayHoldLongInteger(escaped)).toBe(false);
    expect(parseJsonLossless(escaped)).toEqual({ a: 'say "12345678901234567" twice', b: 2 });
  });

  it('still finds a long integer after strings that hold digits and escapes', () => {
    const text = '{"t":"1234567890123456789","q":"\\\\","id":5815932129282598819,"s":"\\"x"}';
    expect(mayHoldLongInteger(text)).toBe(true);
    expect(parseJsonLossless(text)).toEqual({
      t: '1234567890123456789',
      q: '\\',
      id: '5815932129282598819',
      s: '"x',
    });
    expect(mayHoldLongInteger('[-9007199254740993]')).toBe(true);
    expect(parseJsonLossless('[-9007199254740993]')).toEqual(['-9007199254740993']);
  });
});
