import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/contract/index.ts';
import { clients, startTestControlPlane, TRUNCATE, truncateInput, truncateResult } from '../helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'dpo-cp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a control plane on a file database', () => {
  it('loses nothing across a restart: jobs, leases, checkpoints, logs and idempotency keys', async () => {
    const dbPath = join(dir, 'cp.db');
    const first = await startTestControlPlane({ dbPath });
    const c1 = clients(first);
    const pending = await c1.submit(TRUNCATE, truncateInput(1), { idempotency_key: 'restart-key' });
    const running = await c1.submit(TRUNCATE, truncateInput(2));
    const claimed = (await c1.poll({ capacity: 1 })).body.claimed[0]!;
    expect(claimed.id).toBe(pending.id);
    await c1.op('POST', `/v1/jobs/${claimed.id}/checkpoint`, {
      lease_token: claimed.lease!.token,
      checkpoint: { run: 'r' },
    });
    await c1.op('POST', `/v1/jobs/${claimed.id}/logs`, {
      lease_token: claimed.lease!.token,
      lines: [{ ts: new Date().toISOString(), level: 'info', msg: 'before restart' }],
    });
    await first.close();

    // Same tokens, same file: a new process would be started the same way.
    const second = await startTestControlPlane({
      dbPath,
      adminTokens: [first.adminToken],
      operatorTokens: [{ token: first.operatorToken, data_plane_id: first.dataPlaneId }],
    });
    try {
      const c2 = clients({
        ...second,
        adminToken: first.adminToken,
        operatorToken: first.operatorToken,
        dataPlaneId: first.dataPlaneId,
      });
      const job = (await c2.user<Job>('GET', `/v1/jobs/${claimed.id}`)).body;
      expect(job).toMatchObject({ state: 'running', checkpoint: { run: 'r' }, lease: claimed.lease });
      const logs = await c2.user('GET', `/v1/jobs/${claimed.id}/logs`);
      expect(logs.body.lines.map((l: { msg: string }) => l.msg)).toEqual(['before restart']);
      const replay = await c2.user<Job>('POST', '/v1/jobs', {
        type: TRUNCATE,
        company_id: 56,
        input: truncateInput(1),
        idempotency_key: 'restart-key',
      });
      expect(replay.status).toBe(200);
      expect(replay.body.id).toBe(pending.id);
      // The holder keeps writing with its lease after the restart.
      const done = await c2.op('POST', `/v1/jobs/${claimed.id}/complete`, {
        lease_token: claimed.lease!.token,
        result: truncateResult,
      });
      expect(done.status).toBe(200);
      const next = (await c2.poll({ capacity: 5 })).body.claimed.map((j) => j.id);
      expect(next).toEqual([running.id]);
    } finally {
      await second.close();
    }
  });
});
