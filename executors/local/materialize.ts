/**
 * materialize-view: runs `compiled_select` into the dataset's table as a new snapshot.
 *
 * Local meaning of the flags (README, "The local data plane"):
 * - `first_run` (or a table that does not exist yet): the snapshot replaces the table, whose columns
 *   become the select's. In a chunked batch only chunk 1 replaces; later chunks append to it.
 * - otherwise `merge: false`: the select's rows are appended (a delta refresh);
 * - `merge: true`: the select's rows replace the rows of the partitions they touch (dynamic partition
 *   overwrite over `partitions`: identity, year, month, day, hour); with no partitions, the table.
 * - every row written carries `_nio_last_modified_at` = the commit time, which the result returns and
 *   the billing follow-up filters on.
 * - `chunk_metadata`: a chunk already committed (same batch and number) is not written twice: its
 *   snapshot is returned. The same holds for a repeated delivery of one job.
 * Each commit copies the table's new state to `_snapshots.dataset_<d>_<snapshot>` and records it in
 * `_dpo.snapshots`, so earlier snapshots stay readable (the newest DPO_LOCAL_SNAPSHOT_RETENTION, default 10; older
 * tables are dropped in the same commit, their rows kept as history). Writing, copying and recording are one
 * transaction: a crash or a cancel leaves no partial snapshot.
 */
import { createHash } from 'node:crypto';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { MaterializeViewInput } from '../../src/catalogue/materialization.ts';
import { type ExecuteContext, JobError, type JobHandle } from '../../src/executor/index.ts';
import { findDataset, registerDataset, snapshotTable, tableExists } from './catalog.ts';
import type { LocalConfig } from './config.ts';
import { statementSummary } from './datasets.ts';
import { withDatasetLock } from './effects.ts';
import { calculateColumnStats } from './stats.ts';
import {
  all,
  datasetTable,
  ident,
  literal,
  num,
  one,
  qualified,
  runSql,
  sqlError,
  Warehouse,
} from './warehouse.ts';

const MODIFIED = '_nio_last_modified_at';

/** A name-based UUID (RFC 9562 v5 layout) so a repeated delivery yields the same recalculation id. */
export function uuidFrom(name: string): string {
  const h = createHash('sha1').update(`dataplane-operator:${name}`).digest();
  h[6] = ((h[6] as number) & 0x0f) | 0x50;
  h[8] = ((h[8] as number) & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/**
 * The partition transforms the local data plane interprets, as SQL over a column (`c`, quoted) of
 * DuckDB type `type`. `bucket[N]` is refused by name: Iceberg buckets by a Murmur3 hash of the value's
 * binary form, which DuckDB does not compute, and another hash would overwrite other rows than
 * Iceberg does. `truncate[W]` follows Iceberg: integers `v - (((v % W) + W) % W)`, strings their
 * first W characters; other types are refused.
 */
export function partitionExpr(
  p: { field: string; fn: string; args?: ReadonlyArray<number | string> },
  c: string,
  type: string,
): string {
  const refuse = (why: string) =>
    new JobError('INVALID_INPUT', `partition transform '${p.fn}' on '${p.field}': ${why}`, {
      retryable: false,
    });
  switch (p.fn) {
    case 'identity':
      return c;
    case 'year':
    case 'month':
    case 'day':
    case 'hour':
      return `date_trunc('${p.fn}', ${c})`;
    case 'truncate': {
      const w = Number(p.args?.[0]);
      if (!Number.isSafeInteger(w) || w <= 0) throw refuse('needs a positive integer width as its argument');
      if (/^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT)$/.test(type)) {
        return `(${c} - (((${c} % ${w}) + ${w}) % ${w}))`;
      }
      if (/^VARCHAR/.test(type)) return `left(${c}, ${w})`;
      throw refuse(
        `is not supported by the local data plane for ${type} columns (integers and strings only)`,
      );
    }
    case 'bucket':
      throw refuse(
        "is not supported by the local data plane (Iceberg's Murmur3 bucket hash is not implemented)",
      );
    default:
      throw refuse('is not a known partition transform');
  }
}

interface SnapshotRow {
  dataset_id: number;
  snapshot_id: number;
  recalculation_id: string;
  nio_last_modified_at: string;
  operation: string;
  rows_written: number;
  rows_total: number;
}

async function existingSnapshot(conn: DuckDBConnection, where: string): Promise<SnapshotRow | undefined> {
  const row = await one(
    conn,
    `SELECT dataset_id, snapshot_id, recalculation_id::VARCHAR AS recalculation_id, committed_at, operation,
            rows_written, rows_total FROM _dpo.snapshots WHERE ${where} ORDER BY snapshot_id LIMIT 1`,
  );
  if (!row) return undefined;
  return {
    dataset_id: num(row.dataset_id),
    snapshot_id: num(row.snapshot_id),
    recalculation_id: String(row.recalculation_id),
    nio_last_modified_at: new Date(row.committed_at as Date).toISOString(),
    operation: String(row.operation),
    rows_written: num(row.rows_written),
    rows_total: num(row.rows_total),
  };
}

/** Snapshot tables kept per dataset when the configuration does not say (DPO_LOCAL_SNAPSHOT_RETENTION). */
export const DEFAULT_SNAPSHOT_RETENTION = 10;

/**
 * Retention: the dataset's newest `keep` snapshot tables stay; older ones still present are dropped,
 * in the caller's transaction (a rolled-back commit drops nothing). Their `_dpo.snapshots` rows stay.
 */
async function dropExpiredSnapshots(conn: DuckDBConnection, datasetId: number, keep: number): Promise<void> {
  const expired = await all(
    conn,
    `SELECT s.snapshot_id FROM _dpo.snapshots s
     JOIN duckdb_tables() t ON t.schema_name = '_snapshots'
       AND t.table_name = 'dataset_' || s.dataset_id || '_' || s.snapshot_id
     WHERE s.dataset_id = ${datasetId} AND s.snapshot_id NOT IN (
       SELECT snapshot_id FROM _dpo.snapshots WHERE dataset_id = ${datasetId} ORDER BY snapshot_id DESC LIMIT ${keep})`,
  );
  for (const r of expired) {
    await conn.run(`DROP TABLE _snapshots.${ident(snapshotTable(datasetId, num(r.snapshot_id)))}`);
  }
}

export async function materializeView(
  conn: DuckDBConnection,
  job: JobHandle<MaterializeViewInput>,
  ctx: ExecuteContext,
  config: LocalConfig,
): Promise<unknown> {
  const { signal } = ctx;
  // A trailing semicolon is harmless on its own but not inside the statements built around it.
  const input = { ...job.input, compiled_select: job.input.compiled_select.trim().replace(/;+\s*$/, '') };
  const chunk = input.chunk_metadata;
  const datasetId = input.dataset_id;

  const findDone = async () =>
    (await existingSnapshot(conn, `job_id = ${literal(job.id)}`)) ??
    (chunk
      ? await existingSnapshot(
          conn,
          `dataset_id = ${datasetId} AND batch_id = ${literal(chunk.batch_id)}::UUID AND chunk_number = ${chunk.chunk_sequence.number}`,
        )
      : undefined);
  const done = await findDone();
  if (done) {
    ctx.log.info('snapshot already committed for this job or chunk; not writing it again', {
      snapshot_id: done.snapshot_id,
    });
    return result(done);
  }

  const existing = await findDataset(conn, datasetId);
  if (existing && existing.companyId !== job.companyId) {
    throw new JobError('FORBIDDEN', `dataset ${datasetId} belongs to another company`, { retryable: false });
  }
  const t = datasetTable(job.companyId, datasetId);
  const target = qualified(t);
  const tableThere = await tableExists(conn, t.schema, t.table);

  // The select's columns, without running it: a bad query fails here with DuckDB's message.
  let described: Record<string, unknown>[];
  try {
    described = await all(conn, `DESCRIBE (${input.compiled_select})`);
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw sqlError(err, 'compiled_select');
  }
  const columns = described.map((r) => String(r.column_name));
  const committedAt = new Date().toISOString();
  const source =
    `SELECT q.*${columns.includes(MODIFIED) ? ` EXCLUDE (${MODIFIED})` : ''}, ` +
    `${literal(committedAt)}::TIMESTAMPTZ AS ${MODIFIED} FROM (${input.compiled_select}) q`;

  const firstOfBatch = !chunk || chunk.chunk_sequence.number === 1;
  const operation =
    !tableThere || (input.first_run === true && firstOfBatch)
      ? 'replace'
      : input.merge === true
        ? 'merge'
        : 'append';

  // Each partition key as SQL over an alias: `s` (the staged rows) or `t` (the table's rows).
  let keys: Array<(alias: string) => string> = [];
  if (operation === 'merge') {
    keys = (input.partitions ?? []).map((p) => {
      if (!columns.includes(p.field)) {
        throw new JobError(
          'INVALID_INPUT',
          `partition field '${p.field}' is not a column of compiled_select`,
          {
            retryable: false,
          },
        );
      }
      const type = String(described.find((r) => String(r.column_name) === p.field)?.column_type);
      partitionExpr(p, ident(p.field), type); // refuses an unsupported transform before writing
      return (alias: string) => partitionExpr(p, `${alias}.${ident(p.field)}`, type);
    });
  }

  const recalculationId = uuidFrom(chunk ? `batch:${chunk.batch_id}` : `job:${job.id}`);
  ctx.progress({ fraction: 0.1, message: `writing snapshot (${operation})` });
  ctx.log.info('writing snapshot', {
    operation,
    table: `${t.schema}.${t.table}`,
    ...statementSummary(input.compiled_select),
  });
  // One write per dataset at a time (effects.ts); a delivery that raced this one and committed
  // first is found again under the lock.
  const snap = await withDatasetLock(datasetId, signal, async () => {
    const raced = await findDone();
    if (raced) return raced;
    return writeSnapshot();
  });
  async function writeSnapshot(): Promise<SnapshotRow> {
    return Warehouse.transaction(conn, async () => {
      await conn.run(`CREATE SCHEMA IF NOT EXISTS ${ident(t.schema)}`);
      let written: number;
      if (operation === 'replace') {
        await runSql(conn, `CREATE OR REPLACE TABLE ${target} AS ${source}`, 'compiled_select', signal);
        written = num((await one(conn, `SELECT count(*) AS n FROM ${target}`))?.n);
      } else if (operation === 'append') {
        written = (await runSql(conn, `INSERT INTO ${target} BY NAME ${source}`, 'compiled_select', signal))
          .rowsChanged;
      } else {
        await runSql(conn, `CREATE OR REPLACE TEMP TABLE _stage AS ${source}`, 'compiled_select', signal);
        if (keys.length === 0) {
          await conn.run(`DELETE FROM ${target}`);
        } else {
          // The partitions the new rows touch, the NULL partition included: `IS NOT DISTINCT FROM`
          // matches NULL to NULL, where `IN` never would.
          const match = keys.map((k) => `${k('s')} IS NOT DISTINCT FROM ${k('t')}`).join(' AND ');
          await runSql(
            conn,
            `DELETE FROM ${target} AS t WHERE EXISTS (SELECT 1 FROM _stage AS s WHERE ${match})`,
            'merge',
            signal,
          );
        }
        written = (await runSql(conn, `INSERT INTO ${target} BY NAME SELECT * FROM _stage`, 'merge', signal))
          .rowsChanged;
        await conn.run('DROP TABLE _stage');
      }
      const snapshotId = num((await one(conn, `SELECT nextval('_dpo.snapshot_ids') AS id`))?.id);
      await conn.run(
        `CREATE TABLE _snapshots.${ident(snapshotTable(datasetId, snapshotId))} AS SELECT * FROM ${target}`,
      );
      const total = num((await one(conn, `SELECT count(*) AS n FROM ${target}`))?.n);
      await conn.run(
        `INSERT INTO _dpo.snapshots VALUES (${datasetId}, ${snapshotId}, ${literal(recalculationId)}::UUID,
         ${literal(job.id)}, ${chunk ? `${literal(chunk.batch_id)}::UUID` : 'NULL'},
         ${chunk ? chunk.chunk_sequence.number : 'NULL'}, ${chunk ? chunk.chunk_sequence.of : 'NULL'},
         ${literal(operation)}, ${written}, ${total}, ${literal(committedAt)}::TIMESTAMPTZ)`,
      );
      await registerDataset(conn, job.companyId, datasetId, {
        ...(input.partitions ? { partitions: input.partitions } : {}),
      });
      await conn.run(
        `UPDATE _dpo.datasets SET current_snapshot_id = ${snapshotId},
         last_modified_at = ${literal(committedAt)}::TIMESTAMPTZ WHERE dataset_id = ${datasetId}`,
      );
      await dropExpiredSnapshots(conn, datasetId, config.snapshotRetention ?? DEFAULT_SNAPSHOT_RETENTION);
      return {
        dataset_id: datasetId,
        snapshot_id: snapshotId,
        recalculation_id: recalculationId,
        nio_last_modified_at: committedAt,
        operation,
        rows_written: written,
        rows_total: total,
      } satisfies SnapshotRow;
    });
  }
  ctx.log.info('snapshot committed', {
    snapshot_id: snap.snapshot_id,
    rows_written: snap.rows_written,
    rows_total: snap.rows_total,
  });
  ctx.progress({
    fraction: 0.9,
    message: `snapshot ${snap.snapshot_id} committed (${snap.rows_written} rows)`,
  });

  if (input.stats_enabled) {
    // Basic statistics of every column of the new snapshot, kept in the metrics store.
    const all = Object.fromEntries(
      described.map((r) => [
        String(r.column_name),
        {
          data_type: 'string' as const,
          enabled_column_stats: {
            value_count: true,
            null_value_count: true,
            lower_bound: true,
            upper_bound: true,
          },
        },
      ]),
    );
    await calculateColumnStats(
      conn,
      { ...job, input: { dataset_id: datasetId, enabled_column_stats: all } },
      config,
      ctx,
      'stats',
    );
  }
  return result(snap);
}

function result(s: SnapshotRow) {
  return {
    dataset_id: s.dataset_id,
    snapshot_id: s.snapshot_id,
    recalculation_id: s.recalculation_id,
    nio_last_modified_at: s.nio_last_modified_at,
    operation: s.operation,
    rows_written: s.rows_written,
    rows_total: s.rows_total,
  };
}
