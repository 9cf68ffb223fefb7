/**
 * The local data plane's configuration: every variable it reads, as one zod schema, parsed once.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { type Env, envInt, parseEnvConfig } from '../../src/lib/config.ts';

export const LocalEnv = z.object({
  /** Directory holding the DuckDB warehouse (and nothing else the executor writes). Default `<DPO_DATA_DIR>/local`. */
  DPO_LOCAL_DIR: z.string().min(1).optional(),
  /** Shared with the bundled control plane: the base data directory (default `.data`). */
  DPO_DATA_DIR: z.string().min(1).default('.data'),
  /** DuckDB worker threads; default: one per core. */
  DPO_LOCAL_THREADS: envInt(1, 1024).optional(),
  /** DuckDB memory limit, e.g. `2GB`; default: DuckDB's (80 % of RAM). */
  DPO_LOCAL_MEMORY_LIMIT: z
    .string()
    .regex(/^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i, 'expected a size such as 2GB or 512MiB')
    .optional(),
  /** nql-forecast: longest a query may run before it is interrupted and reported as timed out. */
  DPO_LOCAL_QUERY_TIMEOUT_MS: envInt(1, 86_400_000).default(300_000),
  /** nql-forecast: most rows returned in a result (the rest are dropped and `truncated` is set). */
  DPO_LOCAL_MAX_RESULT_ROWS: envInt(1, 1_000_000).default(10_000),
  /** datasets_sample: rows kept when the job does not say (`sample_size`), and the most it may ask. */
  DPO_LOCAL_SAMPLE_ROWS: envInt(1, 100_000).default(1_000),
  DPO_LOCAL_MAX_SAMPLE_ROWS: envInt(1, 1_000_000).default(100_000),
  /** Histogram buckets for numeric columns in datasets_calculate_column_stats. */
  DPO_LOCAL_HISTOGRAM_BINS: envInt(1, 1_000).default(10),
  /**
   * materialize-view: snapshot tables kept per dataset, newest first; older ones are dropped when a
   * new one commits (their `_dpo.snapshots` rows stay, as history). Without it every snapshot is a
   * full copy kept forever, and the warehouse (and DuckDB's memory) follows it.
   */
  DPO_LOCAL_SNAPSHOT_RETENTION: envInt(1, 10_000).default(10),
});
export type LocalEnv = z.infer<typeof LocalEnv>;

export interface LocalConfig {
  dir: string;
  threads?: number | undefined;
  memoryLimit?: string | undefined;
  queryTimeoutMs: number;
  maxResultRows: number;
  sampleRows: number;
  maxSampleRows: number;
  histogramBins: number;
  /** Snapshot tables kept per dataset (DPO_LOCAL_SNAPSHOT_RETENTION); default 10. */
  snapshotRetention?: number | undefined;
}

export function loadLocalConfig(env: Env): LocalConfig {
  const e = parseEnvConfig(LocalEnv, env);
  return {
    dir: e.DPO_LOCAL_DIR ?? join(e.DPO_DATA_DIR, 'local'),
    threads: e.DPO_LOCAL_THREADS,
    memoryLimit: e.DPO_LOCAL_MEMORY_LIMIT,
    queryTimeoutMs: e.DPO_LOCAL_QUERY_TIMEOUT_MS,
    maxResultRows: e.DPO_LOCAL_MAX_RESULT_ROWS,
    sampleRows: e.DPO_LOCAL_SAMPLE_ROWS,
    maxSampleRows: e.DPO_LOCAL_MAX_SAMPLE_ROWS,
    histogramBins: e.DPO_LOCAL_HISTOGRAM_BINS,
    snapshotRetention: e.DPO_LOCAL_SNAPSHOT_RETENTION,
  };
}
