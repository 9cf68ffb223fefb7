/**
 * 64-bit integers survive every hop exactly (the contract's 64-bit rule): a runner's result file
 * (written the runner's way, a decimal string, and the careless way, a bare JSON number), the EMR
 * executor, the daemon, the control plane's storage and API, the client and the CLI's output; the
 * local data plane's query results; a submission body and a job file with bare 64-bit numbers.
 * Every value is above 2^53, where a double would round it.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalExecutor } from '../../executors/local/executor.ts';
import { UserClient } from '../../src/client/user-client.ts';
import type { Job } from '../../src/contract/index.ts';
import { parseJsonLossless } from '../../src/contract/json.ts';
import { createTestContext, testJob } from '../../src/executor/testing.ts';
import { startEmrStack } from '../emr-serverless/support.ts';
import { call } from '../helpers.ts';
import { localConfig } from '../local/support.ts';

/** `JSON.rawJSON` (Node ≥ 21): a bare number in JSON.stringify's output, as a careless runner writes. */
const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;
const SNAPSHOT = '5815932129282598819'; // the id; as a double it reads 5815932129282599000
const BIG = '-9007199254740993'; // -(2^53 + 1)
const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const tmp = mkdtempSync(join(tmpdir(), 'dpo-bigint-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const mvInput = {
  nql: 'SELECT 1',
  dataset_id: 77,
  compiled_select: 'SELECT 1 AS x',
  stats_enabled: false,
  first_run: true,
};
const mvResult = (snapshotId: unknown) => ({
  dataset_id: 77,
  snapshot_id: snapshotId,
  recalculation_id: '6b9c1a3e-33a4-5d7e-9b41-0f1e2d3c4b5a',
  nio_last_modified_at: '2026-11-29T12:00:00Z',
});

function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { PATH: process.env.PATH, DPO_DATA_DIR: tmp, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout })));
}

describe('the lossless parse', () => {
  it('keeps integers beyond 2^53 as their exact decimal strings, and nothing else changes', () => {
    expect(JSON.parse(`{"a":${SNAPSHOT}}`).a).not.toBe(Number(SNAPSHOT.slice(0, 16)) * 1000); // rounds
    expect(parseJsonLossless(`{"a":${SNAPSHOT},"b":[${BIG},1.5,9007199254740991,-0,1e21],"c":"x"}`)).toEqual({
      a: SNAPSHOT,
      b: [BIG, 1.5, 9007199254740991, -0, 1e21],
      c: 'x',
    });
  });

  it('takes the plain parse only where no integer can be unsafe (no run of 16 digits), exact either way', () => {
    // 2^53 has 16 digits: the first unsafe integer is caught; 15-digit values take the fast path.
    expect(parseJsonLossless('{"n":9007199254740992}')).toEqual({ n: '9007199254740992' });
    expect(parseJsonLossless('{"n":-9007199254740993}')).toEqual({ n: '-9007199254740993' });
    expect(parseJsonLossless('{"n":999999999999999,"t":"1732886400000"}')).toEqual({
      n: 999999999999999,
      t: '1732886400000',
    });
    // A 16-digit run inside a string sends the text through the reviver; the string is untouched.
    expect(parseJsonLossless(`{"s":"card 4111111111111111","n":${BIG}}`)).toEqual({
      s: 'card 4111111111111111',
      n: BIG,
    });
  });
});

describe.each([
  ['the runner writes a decimal string', () => mvResult(SNAPSHOT)],
  ['a runner wrote a bare JSON number', () => mvResult(rawJSON(SNAPSHOT))],
])('EMR: %s', (_what, result) => {
  it('the id is exact in the job, through the API, the client and the CLI', async () => {
    const s = await startEmrStack({
      resultFor: (spec: { job: { type: string } }) =>
        spec.job.type === 'materialize-view'
          ? result()
          : { type: 'materialized_views_collect_access_rules_billing_data', sources: [] },
    });
    try {
      const job = await s.settle((await s.submit('materialize-view', mvInput)).id);
      expect(job.state, JSON.stringify(job.failures)).toBe('completed');
      expect((job.result as { snapshot_id: unknown }).snapshot_id).toBe(SNAPSHOT);
      // The raw API text carries the digits, as a string.
      const raw = await fetch(`${s.cp.url}/v1/jobs/${job.id}`, {
        headers: { authorization: `Bearer ${s.cp.adminToken}` },
      }).then((r) => r.text());
      expect(raw).toContain(`"snapshot_id":"${SNAPSHOT}"`);
      const viaClient = await new UserClient({ url: s.cp.url, token: s.cp.adminToken }).get(job.id);
      expect((viaClient.result as { snapshot_id: unknown }).snapshot_id).toBe(SNAPSHOT);
      const shown = await cli(['jobs', 'show', job.id, '--json'], {
        DPO_CONTROL_PLANE_URL: s.cp.url,
        DPO_API_TOKEN: s.cp.adminToken,
      });
      expect(shown.code).toBe(0);
      expect(shown.stdout).toContain(SNAPSHOT);
      expect(shown.stdout).not.toContain('5815932129282599000');
    } finally {
      await s.stop();
    }
  }, 60_000);
});

describe('the control plane and the CLI, given bare 64-bit numbers', () => {
  it('a submission body keeps them exact in storage', async () => {
    const s = await startEmrStack();
    try {
      const body = `{"type":"materialize-view","company_id":56,"data_plane_id":"${s.cp.dataPlaneId}",
        "input":{"nql":"SELECT 1","dataset_id":77,"compiled_select":"SELECT 1","audit_snapshot_id":${SNAPSHOT}}}`;
      const r = await fetch(`${s.cp.url}/v1/jobs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${s.cp.adminToken}`, 'content-type': 'application/json' },
        body,
      });
      expect(r.status).toBe(201);
      const id = ((await r.json()) as Job).id;
      const stored = await call<Job>(s.cp.url, 'GET', `/v1/jobs/${id}`, { token: s.cp.adminToken });
      expect((stored.body.input as Record<string, unknown>).audit_snapshot_id).toBe(SNAPSHOT);
      // A 64-bit value where the contract wants a safe integer is refused, never rounded.
      const refused = await fetch(`${s.cp.url}/v1/jobs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${s.cp.adminToken}`, 'content-type': 'application/json' },
        body: body.replace('"dataset_id":77', `"dataset_id":${SNAPSHOT}`),
      });
      expect(refused.status).toBe(422);

      // A job file with a bare 64-bit number, submitted by the CLI.
      const file = join(tmp, 'job.json');
      writeFileSync(
        file,
        `{"type":"materialize-view","company_id":56,"data_plane_id":"${s.cp.dataPlaneId}",
          "input":{"nql":"SELECT 1","dataset_id":78,"compiled_select":"SELECT 1","audit_snapshot_id":${SNAPSHOT}}}`,
      );
      const submitted = await cli(['jobs', 'submit', file, '--json'], {
        DPO_CONTROL_PLANE_URL: s.cp.url,
        DPO_API_TOKEN: s.cp.adminToken,
      });
      expect(submitted.code).toBe(0);
      const fromCli = parseJsonLossless(submitted.stdout.trim().split('\n')[0] as string) as Job;
      expect((fromCli.input as Record<string, unknown>).audit_snapshot_id).toBe(SNAPSHOT);
    } finally {
      await s.stop();
    }
  }, 60_000);
});

describe('the local data plane', () => {
  it('returns 64-bit query values as exact decimal strings', async () => {
    const ex = new LocalExecutor(localConfig(join(tmp, 'local'), { threads: 1 }));
    try {
      const r = (await ex.execute(
        testJob('nql-forecast', {
          nql: 'n/a',
          compiled_sql: `SELECT ${SNAPSHOT}::BIGINT AS a, ${BIG}::BIGINT AS b, 18446744073709551615::UBIGINT AS c, 42::BIGINT AS d`,
        }),
        createTestContext().ctx,
      )) as { result: { rows: unknown[][] } };
      expect(r.result.rows).toEqual([[SNAPSHOT, BIG, '18446744073709551615', 42]]);
    } finally {
      await ex.close();
    }
  });
});
