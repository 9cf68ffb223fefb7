/**
 * The claim statement in isolation: fills a store with N pending jobs (as the drain does), prints
 * SQLite's plan for the claim, then times the claim UPDATE alone, one job at a time, in and out of
 * a transaction. `node bench/profile/claim-plan.ts [N]`. Used for docs/performance.md.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { JobStore } from '../../src/control-plane/store.ts';

const N = Number(process.argv[2] ?? 10_000);
const dir = mkdtempSync(join(tmpdir(), 'dpo-claim-'));
const path = join(dir, 'cp.db');
try {
  const store = new JobStore({
    path,
    leaseTtlMs: 30_000,
    retryBaseMs: 2_000,
    retryMaxMs: 300_000,
    defaultMaxAttempts: 3,
    maxThrottledRetries: 20,
  });
  for (let i = 0; i < N; i++) {
    store.submit(
      {
        type: 'datasets_truncate_table',
        company_id: 1,
        data_plane_id: 'dp',
        input: { dataset_id: 1 },
      } as never,
      { kind: 'user' } as never,
    );
  }
  const poll = (capacity: number) =>
    store.poll({
      executor: 'x',
      dataPlaneId: 'dp',
      jobTypes: ['datasets_truncate_table'],
      capacity,
      held: [],
    });
  const time = (label: string, n: number, fn: () => void) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn();
    process.stdout.write(
      `${label.padEnd(48)} ${(((performance.now() - t0) / n) * 1000).toFixed(1)} µs/call\n`,
    );
  };
  time('store.poll, capacity 1 (whole transaction)', 1000, () => poll(1));
  store.close();
  const db = new DatabaseSync(path);
  const sub = `SELECT seq FROM jobs WHERE state = 'pending' AND (data_plane_id = ? OR data_plane_id IS NULL)
    AND type IN (SELECT value FROM json_each(?)) AND (not_before IS NULL OR not_before <= ?) ORDER BY seq LIMIT ?`;
  for (const r of db.prepare(`EXPLAIN QUERY PLAN ${sub}`).all('dp', '["datasets_truncate_table"]', 1, 1)) {
    process.stdout.write(`plan: ${(r as { detail: string }).detail}\n`);
  }
  const select = db.prepare(sub);
  time('claim subquery alone (SELECT … LIMIT 1)', 1000, () =>
    select.all('dp', '["datasets_truncate_table"]', Date.now(), 1),
  );
  const claim = db.prepare(
    `UPDATE jobs SET state = 'running', executor = ?, lease_token = lower(hex(randomblob(16))),
       lease_expires_at = ?, updated_at = ? WHERE seq IN (${sub}) RETURNING *`,
  );
  time('claim UPDATE, autocommit (one job)', 500, () =>
    claim.all('x', Date.now(), Date.now(), 'dp', '["datasets_truncate_table"]', Date.now(), 1),
  );
  db.exec('BEGIN');
  time('claim UPDATE, inside one transaction (one job)', 500, () =>
    claim.all('x', Date.now(), Date.now(), 'dp', '["datasets_truncate_table"]', Date.now(), 1),
  );
  db.exec('COMMIT');
  db.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
