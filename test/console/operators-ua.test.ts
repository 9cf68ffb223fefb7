/**
 * The operators table reads an operator's version from its User-Agent only when the header changes
 * (issue 27: it was parsed on every poll). What must hold: a new version is picked up at once, an
 * unreadable header keeps the last version read, and the same header keeps its version.
 */
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { OperatorTracker } from '../../src/control-plane/console/operators.ts';

const poll = { executor: 'op-a', data_plane_id: 'dp-u', job_types: ['datasets_truncate_table'], capacity: 2 };
const req = (ua: string | undefined) =>
  ({ headers: ua === undefined ? {} : { 'user-agent': ua } }) as IncomingMessage;

describe('operators table: User-Agent', () => {
  it('follows the header as it changes', () => {
    const t = new OperatorTracker(10_000, () => 1_000);
    const version = () => t.list([]).operators[0]?.version;
    t.polled(poll, req(undefined));
    expect(version()).toBeNull();
    t.polled(poll, req('dataplane-operator/1.2.3 (node 24)'));
    expect(version()).toBe('1.2.3');
    t.polled(poll, req('dataplane-operator/1.2.3 (node 24)'));
    expect(version()).toBe('1.2.3');
    t.polled(poll, req('dataplane-operator/1.3.0'));
    expect(version()).toBe('1.3.0');
    t.polled(poll, req('curl/8.0'));
    expect(version()).toBe('1.3.0');
    t.polled(poll, req('curl/8.0'));
    expect(version()).toBe('1.3.0');
    t.polled(poll, req('dataplane-operator/2.0.0'));
    expect(version()).toBe('2.0.0');
  });
});
