/**
 * Exactly-once effects: every write a job makes on the local warehouse is recorded in
 * `_dpo.job_effects` (keyed by the job id and a part, e.g. a chunk) in the SAME DuckDB transaction
 * as the write itself. A delivery of a job whose effect is recorded (a re-delivery after a crash, a
 * lost report, a reschedule) answers from the record, the same result, and writes nothing.
 *
 * Two deliveries racing (the old holder still running after its lease moved) both try to insert the
 * record; DuckDB's primary key lets one transaction commit and rolls the other back whole (its write
 * included), which then answers from the winner's record. The table is created with the catalogue
 * (warehouse.ts).
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { JobError, type JobHandle, type JobLogger } from '../../src/executor/index.ts';
import { literal, one, Warehouse } from './warehouse.ts';

/**
 * Writes to one dataset, one at a time in this process (the only process on its warehouse): DuckDB's
 * optimistic concurrency would otherwise fail one of two concurrent writes to the same rows (every
 * write updates the dataset's catalogue row) with a conflict, and retrying does not help a queue of
 * them. Waiting ends early when `signal` aborts.
 */
const datasetLocks = new Map<string, Promise<void>>();
export async function withDatasetLock<T>(
  key: string | number | undefined,
  signal: AbortSignal | undefined,
  fn: () => Promise<T>,
): Promise<T> {
  if (key === undefined) return fn();
  const k = String(key);
  const previous = datasetLocks.get(k) ?? Promise.resolve();
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  const mine = previous.then(() => released);
  datasetLocks.set(k, mine);
  try {
    if (signal) {
      const { promise: aborted, reject } = Promise.withResolvers<never>();
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        if (signal.aborted) throw signal.reason;
        await Promise.race([previous, aborted]);
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
    } else {
      await previous;
    }
    return await fn();
  } finally {
    release();
    if (datasetLocks.get(k) === mine) datasetLocks.delete(k);
  }
}

/** The recorded result of a job's effect (or of one part of it), if it was committed. */
export async function recordedEffect(
  conn: DuckDBConnection,
  jobId: string,
  part = '',
): Promise<unknown | undefined> {
  const row = await one(
    conn,
    `SELECT result::VARCHAR AS result FROM _dpo.job_effects WHERE job_id = ${literal(jobId)} AND part = ${literal(part)}`,
  );
  return row ? JSON.parse(String(row.result)) : undefined;
}

/** DuckDB's answer when two transactions write the same rows or the same key concurrently. */
export function isConflict(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return /TransactionContext Error|Conflict on|write-write conflict|PRIMARY KEY or UNIQUE constraint|Duplicate key/i.test(
    message,
  );
}

/**
 * Runs `write` and records its result for (job, part) in one transaction, unless the effect is
 * recorded already: then returns the recorded result without writing. `write` must only run
 * statements on `conn` (it is inside the transaction) and return the job's JSON result.
 */
export async function exactlyOnce<T>(
  conn: DuckDBConnection,
  job: Pick<JobHandle, 'id' | 'type'>,
  options: { part?: string; datasetId?: number; log: JobLogger; signal?: AbortSignal },
  write: () => Promise<T>,
): Promise<T> {
  return withDatasetLock(options.datasetId, options.signal, () => once(conn, job, options, write));
}

async function once<T>(
  conn: DuckDBConnection,
  job: Pick<JobHandle, 'id' | 'type'>,
  options: { part?: string; datasetId?: number; log: JobLogger },
  write: () => Promise<T>,
): Promise<T> {
  const part = options.part ?? '';
  const answered = (prior: unknown) => {
    options.log.info('effect already committed for this job; answering from its record, not writing again', {
      part: part || undefined,
    });
    return prior as T;
  };
  const prior = await recordedEffect(conn, job.id, part);
  if (prior !== undefined) return answered(prior);
  try {
    return await Warehouse.transaction(conn, async () => {
      const out = await write();
      await conn.run(
        `INSERT INTO _dpo.job_effects VALUES (${literal(job.id)}, ${literal(part)}, ${literal(job.type)},
           ${options.datasetId ?? 'NULL'}, ${literal(JSON.stringify(out))}, now())`,
      );
      return out;
    });
  } catch (err) {
    // A concurrent delivery of the same job committed first: its record is the answer.
    const winner = await recordedEffect(conn, job.id, part).catch(() => undefined);
    if (winner !== undefined) return answered(winner);
    if (isConflict(err) || (err instanceof JobError && isConflict(err.cause))) {
      throw new JobError('WRITE_CONFLICT', 'another transaction wrote the same rows concurrently', {
        retryable: true,
        cause: err,
      });
    }
    throw err;
  }
}
