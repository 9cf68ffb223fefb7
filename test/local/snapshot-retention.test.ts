/**
 * materialize-view's snapshot tables are kept by a retention rule (DPO_LOCAL_SNAPSHOT_RETENTION):
 * the newest N per dataset stay readable, older ones are dropped in the commit that makes a new one,
 * and their rows in `_dpo.snapshots` stay as history. Without it every snapshot is a full copy kept
 * forever, which is how the 30-minute soak's warehouse (and DuckDB's memory) kept growing.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLocalConfig } from '../../executors/local/config.ts';
import { LocalExecutor } from '../../executors/local/executor.ts';
import { createTestContext, testJob } from '../../src/executor/testing.ts';
import { localConfig } from './support.ts';

describe('snapshot retention', () => {
  let ex: LocalExecutor;
  beforeAll(async () => {
    ex = new LocalExecutor(
      localConfig(mkdtempSync(join(tmpdir(), 'dpo-retention-')), { snapshotRetention: 2 }),
    );
    await ex.seedDemoData(200);
  });
  afterAll(async () => {
    await ex.close();
  });

  const materialize = async (i: number) => {
    const t = createTestContext();
    const r = (await ex.execute(
      testJob('materialize-view', {
        nql: 'n/a',
        dataset_id: 7100,
        stats_enabled: false,
        first_run: i === 0,
        compiled_select: `SELECT ${i} * 1000 + i AS id, 1::BIGINT AS _nio_access_rule_id, 1::BIGINT AS _nio_price_per_row FROM range(10) t(i)`,
      }),
      t.ctx,
    )) as { snapshot_id: number };
    return Number(r.snapshot_id);
  };
  const tables = async () =>
    (
      await ex.query(
        `SELECT table_name FROM duckdb_tables() WHERE schema_name = '_snapshots' AND table_name LIKE 'dataset_7100_%' ORDER BY table_name`,
      )
    ).map((r) => String(r.table_name));

  it('keeps the newest N snapshot tables, drops older ones, keeps every snapshot row', async () => {
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) ids.push(await materialize(i));
    expect((await tables()).sort()).toEqual(
      ids
        .slice(-2)
        .map((id) => `dataset_7100_${id}`)
        .sort(),
    );
    const rows = await ex.query(
      'SELECT snapshot_id FROM _dpo.snapshots WHERE dataset_id = 7100 ORDER BY snapshot_id',
    );
    expect(rows.map((r) => Number(r.snapshot_id))).toEqual(ids);
    // The kept snapshots read back what was written.
    const [last] = await ex.query(
      `SELECT min(id) AS lo, count(*) AS n FROM _snapshots.dataset_7100_${ids.at(-1)}`,
    );
    expect(Number(last?.n)).toBe(50);
    expect(Number(last?.lo)).toBe(0);
  }, 120_000);

  it('the default keeps 10, and the variable sets it', () => {
    expect(loadLocalConfig({ DPO_LOCAL_DIR: '/tmp/x' }).snapshotRetention).toBe(10);
    expect(
      loadLocalConfig({ DPO_LOCAL_DIR: '/tmp/x', DPO_LOCAL_SNAPSHOT_RETENTION: '3' }).snapshotRetention,
    ).toBe(3);
  });
});
