/**
 * Fuzzing the bundled control plane (fast-check, seeded: FUZZ_SEED reproduces a run):
 * 1. random and mutated bodies (and garbage, and hostile strings) against every endpoint never get a
 *    5xx, and afterwards every job still reads back valid (state, input and result schemas);
 * 2. random sequences of operations against a model of the contract's state machine (no
 *    checkpoints, so every transition is determined): each answer and each resulting state matches;
 * 3. every job type's input schema, given generated and mutated inputs, answers (never throws).
 */

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogue, JOB_TYPES, validateInput } from '../../src/catalogue/index.ts';
import { Job } from '../../src/contract/index.ts';
import { startTestControlPlane, type TestControlPlane, TRUNCATE } from '../helpers.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_129);
const SEED_DIR = join(import.meta.dirname, '..', 'fixtures', 'seed');
const fixture = (type: string): unknown => {
  const file = join(SEED_DIR, `${type}.input.json`);
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
};

let cp: TestControlPlane;
beforeAll(async () => {
  cp = await startTestControlPlane({ retryBaseMs: 0, retryMaxMs: 0, leaseTtlMs: 60_000 });
});
afterAll(async () => {
  await cp?.close();
});

interface Answer {
  status: number;
  body: any;
}
async function send(method: 'GET' | 'POST', path: string, token: string, body?: string): Promise<Answer> {
  const r = await fetch(`${cp.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body,
    // A fuzzed poll may ask to park (wait_ms): not waited for, and not a failure of the server.
    signal: AbortSignal.timeout(path.startsWith('/v1/operators/poll') ? 300 : 5_000),
  }).catch((err: unknown) => {
    if ((err as Error).name === 'TimeoutError') return undefined;
    throw err;
  });
  if (!r) return { status: 0, body: undefined };
  const text = await r.text().catch(() => '');
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: r.status, body: parsed };
}
const admin = (m: 'GET' | 'POST', p: string, b?: unknown) =>
  send(m, p, cp.adminToken, b === undefined ? undefined : JSON.stringify(b));
const op = (m: 'GET' | 'POST', p: string, b?: unknown) =>
  send(m, p, cp.operatorToken, b === undefined ? undefined : JSON.stringify(b));

/** Hostile strings: SQL-shaped, unicode, control characters, huge, path- and JSON-shaped. */
const hostile = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom(
    "'; DROP TABLE jobs; --",
    '" OR 1=1 --',
    '\u0000',
    '\uD800',
    '𝕏'.repeat(1000),
    '../../etc/passwd',
    '%00%2e%2e/',
    '{"$ne":null}',
    '__proto__',
    'constructor',
    '9'.repeat(400),
    '-0',
    'NaN',
    'x'.repeat(200_000),
  ),
);
/** JSON values, deeply nested ones included. */
const anyJson = fc.oneof(
  { depthSize: 'small' },
  fc.jsonValue(),
  hostile,
  fc.integer({ min: 1, max: 800 }).map((d) => JSON.parse(`${'['.repeat(d)}${']'.repeat(d)}`)),
);
/** A valid template with keys dropped, replaced by anything, or added (`__proto__` among them). */
function mutated(template: Record<string, unknown>) {
  const keys = Object.keys(template);
  return fc
    .record({
      drop: fc.subarray(keys),
      replace: fc.dictionary(fc.constantFrom(...keys, '__proto__', 'extra'), anyJson, { maxKeys: 3 }),
    })
    .map(({ drop, replace }) => {
      const out: Record<string, unknown> = { ...template };
      for (const k of drop) delete out[k];
      for (const [k, v] of Object.entries(replace))
        Object.defineProperty(out, k, { value: v, enumerable: true });
      return out;
    });
}
const bodyFor = (template: Record<string, unknown>) =>
  fc.oneof(
    mutated(template).map((b) => JSON.stringify(b)),
    anyJson.map((v) => JSON.stringify(v)),
    fc.string(), // not JSON at all
    fc.constantFrom('', '{', '[1,', '{"a":1}{"b":2}', '\uFEFF{}', 'null', '1e999999'),
  );

describe('every endpoint, fuzzed', () => {
  it('never answers 5xx, and every job stays valid', async () => {
    const submitted = await admin('POST', '/v1/jobs', {
      type: TRUNCATE,
      company_id: 56,
      data_plane_id: cp.dataPlaneId,
      input: { dataset_id: 1 },
    });
    const id = submitted.body.id as string;
    const polled = await op('POST', '/v1/operators/poll', {
      executor: 'fuzz',
      data_plane_id: cp.dataPlaneId,
      job_types: [TRUNCATE],
      capacity: 1,
      wait_ms: 0,
      held: [],
    });
    const lease = polled.body.claimed?.[0]?.lease?.token ?? 'x';
    const templates: Array<[string, 'admin' | 'operator', Record<string, unknown>]> = [
      [
        '/v1/jobs',
        'admin',
        { type: TRUNCATE, company_id: 56, data_plane_id: cp.dataPlaneId, input: { dataset_id: 2 } },
      ],
      [`/v1/jobs/${id}/cancel`, 'admin', { reason: 'fuzz' }],
      [`/v1/jobs/${id}/reschedule`, 'admin', { force: false }],
      [
        '/v1/operators/poll',
        'operator',
        {
          executor: 'fuzz',
          data_plane_id: cp.dataPlaneId,
          job_types: [TRUNCATE],
          capacity: 0,
          wait_ms: 0,
          held: [],
        },
      ],
      [
        '/v1/operators/report',
        'operator',
        {
          executor: 'fuzz',
          reports: [{ kind: 'complete', id, lease_token: lease, result: { type: TRUNCATE } }],
        },
      ],
      [
        '/v1/operators/logs',
        'operator',
        { executor: 'fuzz', entries: [{ id, lease_token: lease, lines: [{ level: 'info', msg: 'x' }] }] },
      ],
      [
        `/v1/jobs/${id}/checkpoint`,
        'operator',
        { lease_token: lease, checkpoint: { a: 1 }, progress: { fraction: 0.5 } },
      ],
      [`/v1/jobs/${id}/complete`, 'operator', { lease_token: lease, result: { type: TRUNCATE } }],
      [
        `/v1/jobs/${id}/fail`,
        'operator',
        { lease_token: lease, failure: { code: 'X', message: 'm', retryable: true } },
      ],
      [`/v1/jobs/${id}/cancelled`, 'operator', { lease_token: lease }],
      [`/v1/jobs/${id}/release`, 'operator', { lease_token: lease, reason: 'drain' }],
      [`/v1/jobs/${id}/logs`, 'operator', { lease_token: lease, lines: [{ level: 'info', msg: 'x' }] }],
    ];
    const bad: string[] = [];
    for (const [path, role, template] of templates) {
      await fc.assert(
        fc.asyncProperty(bodyFor(template), async (body) => {
          const r = await send('POST', path, role === 'admin' ? cp.adminToken : cp.operatorToken, body);
          if (r.status >= 500)
            bad.push(
              `POST ${path} ${body.slice(0, 200)} → ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`,
            );
          return r.status < 500;
        }),
        { seed: SEED, numRuns: 60, endOnFailure: true },
      );
    }
    // GET endpoints: fuzzed ids and query strings, on a job that is over (so `wait` answers at once).
    const over = (
      await admin('POST', '/v1/jobs', {
        type: TRUNCATE,
        company_id: 56,
        data_plane_id: cp.otherDataPlaneId,
        input: { dataset_id: 3 },
      })
    ).body.id as string;
    await admin('POST', `/v1/jobs/${over}/cancel`, {});
    const query = fc
      .array(
        fc.tuple(
          fc.constantFrom(
            'state',
            'type',
            'data_plane_id',
            'company_id',
            'per_page',
            'cursor',
            'timeout_ms',
            'after',
            'limit',
            'x',
          ),
          hostile,
        ),
        { maxLength: 4 },
      )
      .map((pairs) =>
        new URLSearchParams(pairs.map(([k, v]): [string, string] => [k, v.slice(0, 500)])).toString(),
      );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/v1/jobs', `/v1/jobs/${over}`, `/v1/jobs/${over}/wait`, `/v1/jobs/${over}/logs`),
        fc.oneof(
          fc.constant(''),
          hostile.map((s) => `/${encodeURIComponent(s.slice(0, 300))}`),
        ),
        query,
        async (path, suffix, q) => {
          const p = path === '/v1/jobs' ? `${path}${suffix}` : path;
          const r = await send('GET', `${p}?${q}`, cp.adminToken);
          if (r.status >= 500)
            bad.push(`GET ${p}?${q} → ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
          return r.status < 500;
        },
      ),
      { seed: SEED, numRuns: 120, endOnFailure: true },
    );
    expect(bad).toEqual([]);
    // Nothing is corrupted: every job parses, and its input is valid for its type.
    const all = await admin('GET', '/v1/jobs?per_page=1000');
    expect(all.status).toBe(200);
    expect(all.body.jobs.length).toBeGreaterThan(1);
    for (const j of all.body.jobs) {
      const parsed = Job.safeParse(j);
      expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
      expect(validateInput(j.type, j.input).ok).toBe(true);
    }
  }, 120_000);
});

describe('the contract state machine, against a model', () => {
  type State = 'pending' | 'running' | 'pending_cancellation' | 'completed' | 'failed' | 'cancelled';
  interface M {
    state: State;
    attempt: number;
    max: number;
    lease?: string;
  }
  const TERMINAL = new Set<State>(['completed', 'failed', 'cancelled']);
  type Op =
    | { kind: 'submit'; max: number }
    | { kind: 'claim' }
    | {
        kind: 'complete' | 'fail' | 'release' | 'cancelled' | 'cancel' | 'reschedule';
        j: number;
        retryable: boolean;
      };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant('submit' as const), max: fc.integer({ min: 1, max: 3 }) }),
    fc.record({ kind: fc.constant('claim' as const) }),
    fc.record({
      kind: fc.constantFrom('complete', 'fail', 'release', 'cancelled', 'cancel', 'reschedule'),
      j: fc.nat(),
      retryable: fc.boolean(),
    }),
  );

  it('every answer and state follows the model', async () => {
    const dataPlaneId = cp.otherDataPlaneId;
    const other = (m: 'GET' | 'POST', p: string, b?: unknown) =>
      send(m, p, cp.otherOperatorToken, b === undefined ? undefined : JSON.stringify(b));
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
        const type = 'datasets_delete_table';
        const ids: string[] = [];
        const model = new Map<string, M>();
        const mismatch: string[] = [];
        for (const o of ops) {
          if (o.kind === 'submit') {
            const r = await admin('POST', '/v1/jobs', {
              type,
              company_id: 56,
              data_plane_id: dataPlaneId,
              input: { external_id: 'company_56.dataset_1', is_narrative_managed: true },
              max_attempts: o.max,
            });
            if (r.status !== 201) return false;
            ids.push(r.body.id);
            model.set(r.body.id, { state: 'pending', attempt: 0, max: o.max });
            continue;
          }
          if (o.kind === 'claim') {
            const r = await other('POST', '/v1/operators/poll', {
              executor: 'model',
              data_plane_id: dataPlaneId,
              job_types: [type],
              capacity: 100,
              wait_ms: 0,
              held: [],
            });
            const claimed = new Set<string>((r.body.claimed ?? []).map((j: any) => j.id));
            for (const j of r.body.claimed ?? []) {
              const m = model.get(j.id);
              if (!m) continue; // another run's job (jobs of earlier sequences end terminal)
              m.lease = j.lease.token;
            }
            for (const [id, m] of model) {
              if (m.state === 'pending') {
                if (!claimed.has(id)) mismatch.push(`${id} pending but not claimed`);
                m.state = 'running';
                m.attempt++;
              } else if (claimed.has(id)) mismatch.push(`${id} ${m.state} but claimed`);
            }
            continue;
          }
          const id = ids[o.j % Math.max(1, ids.length)];
          if (id === undefined) continue;
          const m = model.get(id) as M;
          const before = m.state;
          const held = m.lease !== undefined && (m.state === 'running' || m.state === 'pending_cancellation');
          let r: Answer;
          if (o.kind === 'cancel') {
            r = await admin('POST', `/v1/jobs/${id}/cancel`, {});
            const want = TERMINAL.has(before)
              ? 'skipped_terminal'
              : before === 'pending'
                ? 'cancelled'
                : 'cancellation_requested';
            if (r.body?.outcome !== want)
              mismatch.push(`cancel of ${before}: ${JSON.stringify(r.body)} (want ${want})`);
            if (before === 'pending') m.state = 'cancelled';
            else if (before === 'running') m.state = 'pending_cancellation';
          } else if (o.kind === 'reschedule') {
            r = await admin('POST', `/v1/jobs/${id}/reschedule`, {});
            const want = TERMINAL.has(before) ? 'skipped_terminal' : 'rescheduled';
            if (r.body?.outcome !== want) {
              mismatch.push(`reschedule of ${before}: ${r.status} ${JSON.stringify(r.body)} (want ${want})`);
            }
            if (!TERMINAL.has(before)) {
              m.state = 'pending';
              m.attempt = 0;
              m.lease = undefined;
            }
          } else {
            const lease = m.lease ?? 'not-a-lease';
            const body =
              o.kind === 'complete'
                ? { lease_token: lease, result: { type } }
                : o.kind === 'fail'
                  ? { lease_token: lease, failure: { code: 'MODEL', message: 'm', retryable: o.retryable } }
                  : o.kind === 'release'
                    ? { lease_token: lease, reason: 'drain' }
                    : { lease_token: lease };
            r = await other('POST', `/v1/jobs/${id}/${o.kind}`, body);
            if (!held) {
              if (r.status < 400) mismatch.push(`${o.kind} of ${before} without a lease: ${r.status}`);
            } else if (o.kind === 'complete') {
              m.state = 'completed';
            } else if (before === 'pending_cancellation') {
              // Without a checkpoint: release, fail and the confirmation all end it cancelled.
              m.state = 'cancelled';
            } else if (o.kind === 'fail') {
              m.state = o.retryable && m.attempt < m.max ? 'pending' : 'failed';
            } else if (o.kind === 'release') {
              m.state = 'pending';
              m.attempt--;
            } else if (o.kind === 'cancelled') {
              // The holder may stop a running job itself ('cancelled by the operator', store.ts).
              m.state = 'cancelled';
            }
            if (held && m.state !== 'running' && m.state !== 'pending_cancellation') m.lease = undefined;
          }
          if (r.status >= 500) mismatch.push(`${o.kind}: ${r.status}`);
          const now = (await admin('GET', `/v1/jobs/${id}`)).body as { state: State; attempt: number };
          if (now.state !== m.state || now.attempt !== m.attempt) {
            mismatch.push(
              `${o.kind} (${o.kind === 'fail' ? (o.retryable ? 'retryable' : 'fatal') : ''}) from ${before}: ${now.state}/${now.attempt}, model ${m.state}/${m.attempt}`,
            );
            m.state = now.state; // resynchronise, so one mismatch is reported once
            m.attempt = now.attempt;
          }
        }
        // Leave nothing claimable for the next sequence.
        for (const id of ids) await admin('POST', `/v1/jobs/${id}/cancel`, {});
        for (const id of ids) {
          const m = model.get(id) as M;
          if (m.state === 'pending_cancellation' && m.lease)
            await other('POST', `/v1/jobs/${id}/cancelled`, { lease_token: m.lease });
        }
        if (mismatch.length > 0) throw new Error(mismatch.join('\n'));
        return true;
      }),
      { seed: SEED, numRuns: 40, endOnFailure: true },
    );
  }, 120_000);
});

describe('every job type’s input schema', () => {
  it.each(JOB_TYPES)('%s answers every generated and mutated input, never throws', (type) => {
    const template = fixture(type);
    const valid = validateInput(type, template);
    fc.assert(
      fc.property(
        fc.oneof(
          anyJson,
          typeof template === 'object' && template !== null
            ? mutated(template as Record<string, unknown>)
            : anyJson,
        ),
        (input) => {
          const v = validateInput(type, input);
          if (v.ok) expect(catalogue[type].input.safeParse(v.value).success).toBe(true);
          else expect(v.issues.length).toBeGreaterThan(0);
        },
      ),
      { seed: SEED, numRuns: 80 },
    );
    // The seed's own example stays valid (when the seed has one).
    if (existsSync(join(SEED_DIR, `${type}.input.json`))) expect(valid.ok).toBe(true);
  });
});
