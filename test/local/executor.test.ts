/** The local executor's lifecycle: one warehouse per executor, however callers race. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LocalExecutor } from '../../executors/local/executor.ts';
import { Warehouse } from '../../executors/local/warehouse.ts';
import { localConfig } from './support.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('LocalExecutor', () => {
  it('opens its warehouse once when start() races (two DuckDB instances on one file would corrupt it)', async () => {
    const open = vi.spyOn(Warehouse, 'open');
    const ex = new LocalExecutor(localConfig(mkdtempSync(join(tmpdir(), 'dpo-start-'))));
    await Promise.all([ex.start(), ex.start(), ex.seedDemoData(100), ex.query('SELECT 1')]);
    expect(open).toHaveBeenCalledTimes(1);
    await ex.close();
    // Closed, it opens again on demand.
    expect(await ex.query('SELECT 42 AS n')).toEqual([{ n: 42 }]);
    expect(open).toHaveBeenCalledTimes(2);
    await ex.close();
  });

  it('a failed open is not remembered: a later start tries again', async () => {
    const ex = new LocalExecutor(localConfig(mkdtempSync(join(tmpdir(), 'dpo-start-'))));
    const open = vi.spyOn(Warehouse, 'open').mockRejectedValueOnce(new Error('locked by another process'));
    await expect(ex.start()).rejects.toThrow(/locked/);
    await ex.start();
    expect(open).toHaveBeenCalledTimes(2);
    await ex.close();
  });
});
