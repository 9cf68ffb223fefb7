/**
 * The bundled control plane's job store, on node:sqlite.
 *
 * Every method runs synchronously inside one SQLite transaction, so each state transition is atomic
 * with respect to every other request of this process: a claim can never hand one job to two
 * executors, and a write fenced by a lease token either sees the lease or does not.
 *
 * State machine:
 *
 *   pending ──claim──▶ running ──complete──▶ completed
 *      ▲  ▲              │  │ ──fail (final)──▶ failed
 *      │  └─release/fail (retryable, attempts left)/lease expiry──┘
 *      │                 │
 *      │              cancel
 *      │                 ▼
 *      │        pending_cancellation (held) ──cancelled──▶ cancelled
 *      │           │  ▲        │ ──release/fail/lease expiry, no checkpoint──▶ cancelled
 *      │  release/ │  │ claim  │ ──fail (not retryable)──▶ failed
 *      │  fail/    ▼  │        │ ──complete──▶ completed
 *      │  expiry  pending_cancellation (unheld, checkpoint names remote work)
 *      └──reschedule (any non-terminal state; terminal ones with force)
 *   pending ──cancel──▶ cancelled (no checkpoint) | pending_cancellation, unheld (checkpoint)
 *
 * Cancel is confirmed downstream: a job whose checkpoint names remote work becomes `cancelled` only
 * when an operator reports it so. When its holder goes away (lease expiry, release, a retryable
 * failure) it stays `pending_cancellation` without a lease, and an operator serving its type claims
 * it (attempt unchanged) to reattach, stop the work, and confirm.
 *
 * A lease revoked by anyone but its holder (reschedule, expiry) is written to `revoked_leases`, and
 * the holder's next poll answers it in `lost`, whether or not that poll lists the job: so a holder
 * learns of the loss within one poll however rarely it renews.
 *
 * Timestamps are stored as epoch milliseconds and written out as ISO 8601. Events (a job became
 * claimable, a cancel was requested, a lease was revoked, a job ended) are emitted after the
 * transaction commits so the server can wake long polls.
 */
import { randomUUID } from 'node:crypto';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { getJobType, type Issue, validateInput, validateResult } from '../catalogue/index.ts';
import type {
  CancelJobResponse,
  FailureRecord,
  FailureReport,
  HeldJob,
  Job,
  JobState,
  ListJobsQuery,
  ListJobsResponse,
  LogLine,
  LogsResponse,
  Progress,
  RequestSource,
  RescheduleJobResponse,
  SubmitJobRequest,
} from '../contract/index.ts';
import { followUpsOf, INTERNAL_KEY_PREFIX } from './follow-ups.ts';

/** Why a holder lost a lease, as the poll's `lost_reasons` says. */
export type LostReason = 'rescheduled' | 'expired' | 'claimed';

/** A refusal the HTTP layer turns into a status and the contract's error body. */
export class StoreError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;
  constructor(status: number, code: string, message: string, details?: unknown) {
    super(message);
    this.name = 'StoreError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export interface StoreOptions {
  /** A file path, or `:memory:`. */
  path: string;
  /** How long a claim or renewal keeps a lease. */
  leaseTtlMs: number;
  /** First backoff after a retryable failure; doubles per attempt up to `retryMaxMs`. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** Attempts a job gets when its submission names none. */
  defaultMaxAttempts: number;
  /** Throttled failures whose attempt is given back, per job (default 20); later ones count. */
  maxThrottledRetries?: number;
  now?: () => number;
  /** The follow-up rules (default: {@link followUpsOf}); tests inject others. */
  followUps?: (parent: Job, now: Date) => SubmitJobRequest[];
}

/** What the store tells the server after a commit, to wake parked long polls and waiters. */
export interface StoreEvents {
  /** A job of `type` became claimable (now or at `notBefore`) for `dataPlaneId` (null: any). */
  claimable(type: string, dataPlaneId: string | null, notBefore: number | null): void;
  /** A held job must be looked at by its holder (`executor`): cancel requested, or lease revoked. */
  holderAttention(jobId: string, executor: string | null): void;
  /** The job reached a terminal state. */
  terminal(jobId: string): void;
  /** A job changed: the entry just written to the event log. */
  changed?(event: JobEvent): void;
  /** Log lines were appended to the job. */
  logged?(jobId: string): void;
}

interface JobRow {
  seq: number;
  id: string;
  type: string;
  state: JobState;
  company_id: number;
  data_plane_id: string | null;
  request_source: string;
  input: string;
  result: string | null;
  executor: string | null;
  idempotency_key: string | null;
  attempt: number;
  max_attempts: number;
  lease_token: string | null;
  lease_expires_at: number | null;
  checkpoint: string | null;
  progress: string | null;
  failures: string;
  cancellation_reason: string | null;
  not_before: number | null;
  /** JSON array of the checkpoints reschedules cleared, naming remote work the next holder stops first. */
  stale_checkpoints: string | null;
  /** 1 when the job is `pending_cancellation` only to stop the remote work of its last attempt,
   * whose lease expired: confirmed stopped, it ends `failed`, not `cancelled`. */
  cleanup_ends_failed: number;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  ended_at: number | null;
}

const SCHEMA_VERSION = 2;

/** Event-log rows per INSERT (11 parameters each, far below SQLite's 32,766). */
const EVENT_ROWS_PER_INSERT = 64;

/** From one schema version to the next (the key is the version migrated from). */
const MIGRATIONS: Record<number, string> = {
  1: `ALTER TABLE jobs ADD COLUMN stale_checkpoints TEXT;
      ALTER TABLE jobs ADD COLUMN cleanup_ends_failed INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE revoked_leases ADD COLUMN reason TEXT NOT NULL DEFAULT 'expired';
      ALTER TABLE revoked_leases ADD COLUMN keep_until INTEGER NOT NULL DEFAULT 0;`,
};

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  state TEXT NOT NULL,
  company_id INTEGER NOT NULL,
  data_plane_id TEXT,
  request_source TEXT NOT NULL,
  input TEXT NOT NULL,
  result TEXT,
  executor TEXT,
  idempotency_key TEXT,
  attempt INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  lease_token TEXT,
  lease_expires_at INTEGER,
  checkpoint TEXT,
  progress TEXT,
  failures TEXT NOT NULL DEFAULT '[]',
  cancellation_reason TEXT,
  not_before INTEGER,
  stale_checkpoints TEXT,
  cleanup_ends_failed INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  started_at INTEGER,
  ended_at INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency ON jobs(company_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_pending ON jobs(seq) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS jobs_leases ON jobs(lease_expires_at) WHERE lease_token IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);
CREATE INDEX IF NOT EXISTS jobs_type ON jobs(type, seq);
CREATE INDEX IF NOT EXISTS jobs_cancelling ON jobs(executor) WHERE state = 'pending_cancellation';
CREATE INDEX IF NOT EXISTS jobs_unheld_cancels ON jobs(seq)
  WHERE state = 'pending_cancellation' AND lease_token IS NULL;
CREATE TABLE IF NOT EXISTS revoked_leases (
  executor TEXT NOT NULL,
  data_plane_id TEXT NOT NULL,
  job_id TEXT NOT NULL,
  lease_token TEXT NOT NULL,
  at INTEGER NOT NULL,
  -- rescheduled | expired: what the holder's poll answers in lost_reasons
  reason TEXT NOT NULL DEFAULT 'expired',
  -- kept until the holder's next poll, or until then (one lease TTL after the revocation)
  keep_until INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (executor, data_plane_id, job_id, lease_token)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS job_logs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  executor TEXT,
  ts TEXT NOT NULL,
  level TEXT NOT NULL,
  msg TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_logs_job ON job_logs(job_id, seq);
CREATE TABLE IF NOT EXISTS job_event_log (
  seq INTEGER PRIMARY KEY,
  job_seq INTEGER NOT NULL,
  job_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  state TEXT NOT NULL,
  type TEXT NOT NULL,
  data_plane_id TEXT,
  company_id INTEGER NOT NULL,
  executor TEXT,
  attempt INTEGER NOT NULL,
  at INTEGER NOT NULL,
  data TEXT
);
CREATE INDEX IF NOT EXISTS job_event_log_job ON job_event_log(job_seq, seq);
CREATE INDEX IF NOT EXISTS jobs_parent ON jobs(json_extract(request_source, '$.job_id'))
  WHERE json_extract(request_source, '$.job_id') IS NOT NULL;
`;

/**
 * One entry of the job event log (`job_event_log`): every change of a job, in commit order. The console
 * streams it (SSE, `seq` is the event id a reconnecting client replays from) and draws a job's
 * timeline from it; the control plane's queue counters count it.
 */
export interface JobEvent {
  seq: number;
  job_id: string;
  /** created, claimed, claimed_for_cancel, progress, checkpoint, retry_scheduled, failure, released,
   * cancel_requested, rescheduled, completed, failed, cancelled, updated. */
  kind: string;
  state: JobState;
  type: string;
  data_plane_id: string | null;
  company_id: number;
  executor: string | null;
  attempt: number;
  at: string;
  data: unknown;
}

/** Which event a write to a job is, from what it changed (`row` is the job after the write). */
function eventOf(patch: Partial<JobRow>, row: JobRow): [kind: string, data: unknown] {
  const lastFailure = () => (JSON.parse(row.failures) as FailureRecord[]).at(-1) ?? null;
  switch (patch.state) {
    case 'completed':
      return ['completed', null];
    case 'failed':
      return ['failed', lastFailure()];
    case 'cancelled':
      return [
        'cancelled',
        { reason: row.cancellation_reason, failure: patch.failures ? lastFailure() : null },
      ];
    case 'pending_cancellation':
      return ['cancel_requested', { reason: row.cancellation_reason }];
    case 'pending':
      if ('result' in patch) return ['rescheduled', null];
      if (patch.failures)
        return ['retry_scheduled', { failure: lastFailure(), not_before: isoOrNull(row.not_before) }];
      return ['released', null];
  }
  if (patch.failures) return ['failure', lastFailure()];
  if (patch.lease_token === null) return ['released', null];
  if (patch.checkpoint !== undefined) return ['checkpoint', { checkpoint: jsonOrNull(row.checkpoint) }];
  if (patch.progress !== undefined) return ['progress', jsonOrNull(row.progress)];
  return ['updated', null];
}

const iso = (ms: number): string => new Date(ms).toISOString();
const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));
const jsonOrNull = (text: string | null): unknown => (text === null ? null : JSON.parse(text));
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function toJob(row: JobRow): Job {
  return {
    id: row.id,
    type: row.type,
    state: row.state,
    company_id: row.company_id,
    data_plane_id: row.data_plane_id,
    request_source: JSON.parse(row.request_source) as RequestSource,
    input: JSON.parse(row.input),
    result: jsonOrNull(row.result),
    executor: row.executor,
    idempotency_key: row.idempotency_key,
    attempt: row.attempt,
    max_attempts: row.max_attempts,
    lease:
      row.lease_token === null || row.lease_expires_at === null
        ? null
        : { token: row.lease_token, expires_at: iso(row.lease_expires_at) },
    checkpoint: jsonOrNull(row.checkpoint) as Job['checkpoint'],
    progress: jsonOrNull(row.progress) as Job['progress'],
    failures: JSON.parse(row.failures) as FailureRecord[],
    cancellation_reason: row.cancellation_reason,
    not_before: isoOrNull(row.not_before),
    stale_checkpoints: (jsonOrNull(row.stale_checkpoints) ?? []) as Job['stale_checkpoints'],
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
    started_at: isoOrNull(row.started_at),
    ended_at: isoOrNull(row.ended_at),
  };
}

function issuesError(status: number, message: string, issues: Issue[]): StoreError {
  return new StoreError(status, 'validation_failed', message, { issues });
}

/** The outcome of one entry of a batched report. */
export type ReportOutcome = { status: 'ok' } | { status: 'lost' | 'invalid'; error: StoreError };

export class JobStore {
  readonly leaseTtlMs: number;
  private readonly db: DatabaseSync;
  private readonly opts: Required<Omit<StoreOptions, 'now' | 'followUps'>>;
  private readonly followUps: (parent: Job, now: Date) => SubmitJobRequest[];
  private readonly now: () => number;
  private readonly stmts: ReturnType<JobStore['prepare']>;
  private listeners: StoreEvents[] = [];
  private pendingEvents: Array<() => void> = [];
  /**
   * No lease expires before this (epoch ms; a lower bound of MIN(lease_expires_at)): until then a
   * poll skips the expiry probe. Every lease is granted or renewed by a poll, which lowers it to the
   * new expiry; a rollback resets it so the next poll probes.
   */
  private noExpiryBefore = Number.NEGATIVE_INFINITY;
  /**
   * The (executor, data plane) pairs that may have revoked leases waiting (a version per pair, bumped
   * per revocation): a poll of any other pair skips the `DELETE … RETURNING`. A pair is forgotten
   * after the commit of the poll that took its rows, unless revoked again meanwhile; a rollback
   * keeps it (one more probe, never a missed revocation).
   */
  private readonly revokedPairs = new Map<string, number>();
  /** Event-log rows of the open transaction, written by one multi-row INSERT before its COMMIT. */
  private eventRows: Array<{ values: SQLInputValue[]; event: JobEvent | undefined }> = [];
  private txDepth = 0;

  constructor(options: StoreOptions) {
    this.opts = {
      path: options.path,
      leaseTtlMs: options.leaseTtlMs,
      retryBaseMs: options.retryBaseMs,
      retryMaxMs: options.retryMaxMs,
      defaultMaxAttempts: options.defaultMaxAttempts,
      maxThrottledRetries: options.maxThrottledRetries ?? 20,
    };
    this.leaseTtlMs = options.leaseTtlMs;
    this.now = options.now ?? Date.now;
    this.followUps = options.followUps ?? followUpsOf;
    this.db = new DatabaseSync(options.path);
    if (options.path !== ':memory:') {
      // WAL with synchronous=NORMAL: a committed transaction survives a process crash; the last
      // few may be lost on power failure. Stated beside the benchmark figures.
      // The control plane is the database's only user: an exclusive lock taken once spares every
      // transaction the file-lock system calls (a fifth of a submission's cost otherwise).
      this.db.exec(
        'PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;',
      );
    }
    this.db.exec('PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;');
    this.db.exec(SCHEMA);
    const version = this.db.prepare(`SELECT value FROM meta WHERE key = 'schema_version'`).get() as
      | { value: string }
      | undefined;
    if (version === undefined) {
      this.db
        .prepare(`INSERT INTO meta(key, value) VALUES ('schema_version', ?)`)
        .run(String(SCHEMA_VERSION));
    } else if (Number(version.value) < SCHEMA_VERSION && MIGRATIONS[Number(version.value)] !== undefined) {
      for (let v = Number(version.value); v < SCHEMA_VERSION; v++) {
        const sql = MIGRATIONS[v];
        if (sql === undefined) throw new Error(`no migration from schema version ${v}`);
        this.db.exec(
          `BEGIN IMMEDIATE; ${sql} UPDATE meta SET value = '${v + 1}' WHERE key = 'schema_version'; COMMIT;`,
        );
      }
    } else if (Number(version.value) !== SCHEMA_VERSION) {
      throw new Error(
        `database ${options.path} has schema version ${version.value}; this control plane speaks ${SCHEMA_VERSION}`,
      );
    }
    this.stmts = this.prepare();
    for (const r of this.db
      .prepare('SELECT DISTINCT executor, data_plane_id FROM revoked_leases')
      .all() as Array<{
      executor: string;
      data_plane_id: string;
    }>) {
      this.revokedPairs.set(`${r.executor}\u0000${r.data_plane_id}`, 0);
    }
  }

  private prepare() {
    const db = this.db;
    return {
      byId: db.prepare('SELECT * FROM jobs WHERE id = ?'),
      byIdempotency: db.prepare('SELECT * FROM jobs WHERE company_id = ? AND idempotency_key = ?'),
      insert: db.prepare(
        `INSERT INTO jobs (id, type, state, company_id, data_plane_id, request_source, input, idempotency_key,
           max_attempts, created_at, updated_at)
         VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
      ),
      claim: db.prepare(
        `UPDATE jobs SET state = 'running', executor = ?, data_plane_id = ?, attempt = attempt + 1,
           lease_token = lower(hex(randomblob(16))), lease_expires_at = ?, not_before = NULL,
           started_at = COALESCE(started_at, ?), updated_at = ?
         WHERE seq IN (
           SELECT seq FROM jobs
           WHERE state = 'pending' AND (data_plane_id = ? OR data_plane_id IS NULL)
             AND type IN (SELECT value FROM json_each(?))
             AND (not_before IS NULL OR not_before <= ?)
           ORDER BY seq LIMIT ?)
         RETURNING *`,
      ),
      claimCancels: db.prepare(
        `UPDATE jobs SET executor = ?, data_plane_id = COALESCE(data_plane_id, ?),
           lease_token = lower(hex(randomblob(16))), lease_expires_at = ?, not_before = NULL, updated_at = ?
         WHERE seq IN (
           SELECT seq FROM jobs
           WHERE state = 'pending_cancellation' AND lease_token IS NULL
             AND (data_plane_id = ? OR data_plane_id IS NULL)
             AND type IN (SELECT value FROM json_each(?))
             AND (not_before IS NULL OR not_before <= ?)
           ORDER BY seq LIMIT ?)
         RETURNING *`,
      ),
      // A cheap probe on the partial index first: the claim below costs ~100 µs even when it finds
      // nothing, and there is almost never an unheld cancel.
      anyUnheldCancel: db.prepare(
        `SELECT 1 AS x FROM jobs WHERE state = 'pending_cancellation' AND lease_token IS NULL LIMIT 1`,
      ),
      revoke: db.prepare(
        `INSERT OR IGNORE INTO revoked_leases (executor, data_plane_id, job_id, lease_token, at, reason, keep_until)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      takeRevoked: db.prepare(
        `DELETE FROM revoked_leases WHERE executor = ? AND data_plane_id = ?
         RETURNING job_id, lease_token, reason, keep_until`,
      ),
      forgetRevoked: db.prepare('DELETE FROM revoked_leases WHERE keep_until < ?'),
      // Prepared once: a batched report takes one savepoint per entry, on the hot path.
      savepoint: db.prepare('SAVEPOINT report_entry'),
      releaseSavepoint: db.prepare('RELEASE report_entry'),
      rollbackToSavepoint: db.prepare('ROLLBACK TO report_entry'),
      groupSavepoint: db.prepare('SAVEPOINT group_entry'),
      releaseGroupSavepoint: db.prepare('RELEASE group_entry'),
      rollbackToGroupSavepoint: db.prepare('ROLLBACK TO group_entry'),
      // complete in one statement: the lease check (token, data plane, state, expiry now) is the WHERE.
      completeLeased: db.prepare(
        `UPDATE jobs SET state = 'completed', result = ?, lease_token = NULL, lease_expires_at = NULL,
           not_before = NULL, ended_at = ?, updated_at = ?
         WHERE id = ? AND lease_token = ? AND (data_plane_id IS NULL OR data_plane_id = ?)
           AND state IN ('running', 'pending_cancellation')
           AND (lease_expires_at IS NULL OR lease_expires_at >= ?)
         RETURNING *`,
      ),
      renew: db.prepare(
        `UPDATE jobs SET lease_expires_at = ?, progress = COALESCE(?, progress), updated_at = ?
         WHERE id = ? AND lease_token = ? AND data_plane_id = ? AND state IN ('running', 'pending_cancellation')
         RETURNING state`,
      ),
      cancelling: db.prepare(
        `SELECT id FROM jobs WHERE state = 'pending_cancellation' AND executor = ? AND data_plane_id = ?`,
      ),
      expired: db.prepare(
        `SELECT * FROM jobs WHERE lease_token IS NOT NULL AND lease_expires_at < ? ORDER BY lease_expires_at`,
      ),
      nextNotBefore: db.prepare(
        `SELECT MIN(not_before) AS t FROM jobs
         WHERE (state = 'pending' OR (state = 'pending_cancellation' AND lease_token IS NULL))
           AND not_before IS NOT NULL AND (data_plane_id = ? OR data_plane_id IS NULL)
           AND type IN (SELECT value FROM json_each(?))`,
      ),
      // Only when a poll parks with nothing listed: walks the leased jobs (jobs_leases), no index of
      // its own, so claims and reports pay nothing for it.
      holdsAny: db.prepare(
        `SELECT 1 AS x FROM jobs INDEXED BY jobs_leases
         WHERE lease_token IS NOT NULL AND executor = ? AND data_plane_id = ? LIMIT 1`,
      ),
      nextLeaseExpiry: db.prepare(
        'SELECT MIN(lease_expires_at) AS t FROM jobs WHERE lease_token IS NOT NULL',
      ),
      insertLog: db.prepare(
        'INSERT INTO job_logs (job_id, attempt, executor, ts, level, msg) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      logs: db.prepare(
        'SELECT seq, attempt, executor, ts, level, msg FROM job_logs WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?',
      ),
    };
  }

  /** Subscribe to post-commit events. Returns an unsubscribe function. */
  subscribe(listener: StoreEvents): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  // -------------------------------------------------------------------------------------------
  // Transactions and events

  private tx<T>(fn: () => T): T {
    if (this.txDepth > 0) return fn();
    this.txDepth++;
    this.db.exec('BEGIN IMMEDIATE');
    let result: T;
    try {
      result = fn();
      this.writeEventRows();
      this.db.exec('COMMIT');
    } catch (err) {
      this.db.exec('ROLLBACK');
      this.pendingEvents = [];
      this.eventRows = [];
      this.noExpiryBefore = Number.NEGATIVE_INFINITY;
      throw err;
    } finally {
      this.txDepth--;
    }
    const events = this.pendingEvents;
    this.pendingEvents = [];
    for (const emit of events) emit();
    return result;
  }

  private group: Array<{ run: () => unknown; done: (err: unknown, value?: unknown) => void }> = [];

  /**
   * Group commit: runs `fn` inside the one transaction shared by every call made in this event-loop
   * turn (flushed by `setImmediate`, after the I/O callbacks that delivered the requests). Each call
   * runs in its own savepoint, so one that throws is rolled back alone (its events dropped) and
   * rejects, and the others still commit. Every promise settles only after the `COMMIT` (WAL,
   * synchronous=NORMAL, as for every other transaction); post-commit events are emitted after the
   * callers' continuations were queued, like those of {@link tx}.
   */
  grouped<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.group.length === 0) setImmediate(() => this.flushGroup());
      this.group.push({
        run: fn,
        done: (err, value) => (err === undefined ? resolve(value as T) : reject(err)),
      });
    });
  }

  private flushGroup(): void {
    const items = this.group;
    this.group = [];
    if (items.length === 0) return;
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; err: unknown }> = [];
    try {
      // Never nested: the flush runs from setImmediate, outside every synchronous transaction.
      this.db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      for (const item of items) item.done(err ?? new Error('group commit failed'));
      return;
    }
    this.txDepth++;
    try {
      for (const item of items) {
        const events = this.pendingEvents.length;
        const rows = this.eventRows.length;
        this.stmts.groupSavepoint.run();
        try {
          const value = item.run();
          this.stmts.releaseGroupSavepoint.run();
          outcomes.push({ ok: true, value });
        } catch (err) {
          this.stmts.rollbackToGroupSavepoint.run();
          this.stmts.releaseGroupSavepoint.run();
          this.pendingEvents.length = events;
          this.eventRows.length = rows;
          this.noExpiryBefore = Number.NEGATIVE_INFINITY;
          outcomes.push({ ok: false, err: err ?? new Error('undefined thrown') });
        }
      }
      this.writeEventRows();
      this.db.exec('COMMIT');
    } catch (err) {
      // The transaction itself failed (the COMMIT, a savepoint): nothing of it is durable.
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      this.pendingEvents = [];
      this.eventRows = [];
      this.noExpiryBefore = Number.NEGATIVE_INFINITY;
      this.txDepth--;
      for (const item of items) item.done(err ?? new Error('group commit failed'));
      return;
    }
    this.txDepth--;
    const events = this.pendingEvents;
    this.pendingEvents = [];
    items.forEach((item, i) => {
      const o = outcomes[i]!;
      if (o.ok) item.done(undefined, o.value);
      else item.done(o.err);
    });
    for (const emit of events) emit();
  }

  private emit(event: (l: StoreEvents) => void): void {
    this.pendingEvents.push(() => {
      for (const listener of this.listeners) event(listener);
    });
  }

  // -------------------------------------------------------------------------------------------
  // Reads

  private row(id: string): JobRow | undefined {
    if (!UUID.test(id)) return undefined;
    return this.stmts.byId.get(id) as JobRow | undefined;
  }

  private mustRow(id: string): JobRow {
    const row = this.row(id);
    if (row === undefined) throw new StoreError(404, 'not_found', `no job with id ${id}`);
    return row;
  }

  get(id: string): Job {
    return toJob(this.mustRow(id));
  }

  /** Newest first; the cursor is opaque to clients. */
  list(query: ListJobsQuery): ListJobsResponse {
    const where: string[] = [];
    const params: SQLInputValue[] = [];
    if (query.state?.length) {
      where.push('state IN (SELECT value FROM json_each(?))');
      params.push(JSON.stringify(query.state));
    }
    if (query.type?.length) {
      where.push('type IN (SELECT value FROM json_each(?))');
      params.push(JSON.stringify(query.type));
    }
    if (query.data_plane_id !== undefined) {
      where.push('data_plane_id = ?');
      params.push(query.data_plane_id);
    }
    if (query.company_id !== undefined) {
      where.push('company_id = ?');
      params.push(query.company_id);
    }
    if (query.cursor !== undefined) {
      const decoded = Buffer.from(query.cursor, 'base64url').toString('utf8');
      const seq = /^\d{1,15}$/.test(decoded) ? Number(decoded) : Number.NaN;
      if (!Number.isSafeInteger(seq)) {
        throw new StoreError(400, 'bad_request', 'cursor is not one this server issued');
      }
      where.push('seq < ?');
      params.push(seq);
    }
    const sql = `SELECT * FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`;
    params.push(query.per_page + 1);
    const rows = this.db.prepare(sql).all(...params) as unknown as JobRow[];
    const page = rows.slice(0, query.per_page);
    const last = page.at(-1);
    const nextCursor =
      rows.length > query.per_page && last ? Buffer.from(String(last.seq)).toString('base64url') : null;
    return { jobs: page.map(toJob), next_cursor: nextCursor };
  }

  /** The job event log after `afterSeq`, oldest first; of one job when `jobId` is given. */
  events(afterSeq: number, limit: number, jobId?: string): JobEvent[] {
    const sql = `SELECT seq, job_id, kind, state, type, data_plane_id, company_id, executor, attempt, at, data
      FROM job_event_log WHERE seq > ?${jobId === undefined ? '' : ' AND job_seq = (SELECT seq FROM jobs WHERE id = ?)'} ORDER BY seq LIMIT ?`;
    const params: SQLInputValue[] = jobId === undefined ? [afterSeq, limit] : [afterSeq, jobId, limit];
    return (this.cachedUpdate(sql).all(...params) as Array<Record<string, unknown>>).map((r) => ({
      ...(r as unknown as JobEvent),
      at: iso(r.at as number),
      data: jsonOrNull(r.data as string | null),
    }));
  }

  /** The jobs that `id`'s completion caused (its follow-ups), oldest first. */
  followUpsOf(id: string): Job[] {
    const rows = this.cachedUpdate(
      `SELECT * FROM jobs WHERE json_extract(request_source, '$.job_id') = ? ORDER BY seq`,
    ).all(id) as unknown as JobRow[];
    return rows.map(toJob);
  }

  /** Queue depth for metrics: pending and running jobs by data plane and type, with the oldest pending. */
  queueStats(): Array<{
    state: string;
    data_plane_id: string | null;
    type: string;
    n: number;
    oldest: number;
  }> {
    return this.cachedUpdate(
      `SELECT state, data_plane_id, type, COUNT(*) AS n, MIN(created_at) AS oldest FROM jobs
       WHERE state IN ('pending', 'running', 'pending_cancellation') GROUP BY state, data_plane_id, type`,
    ).all() as unknown as Array<{
      state: string;
      data_plane_id: string | null;
      type: string;
      n: number;
      oldest: number;
    }>;
  }

  /** The newest entry of the job event log (0 when empty). */
  lastEventSeq(): number {
    return (
      (this.cachedUpdate('SELECT MAX(seq) AS s FROM job_event_log').get() as { s: number | null }).s ?? 0
    );
  }

  /** Jobs each operator holds a lease on, by data plane and operator id. */
  heldByOperator(): Array<{ executor: string; data_plane_id: string; n: number }> {
    return this.cachedUpdate(
      `SELECT executor, data_plane_id, COUNT(*) AS n FROM jobs
       WHERE lease_token IS NOT NULL AND executor IS NOT NULL GROUP BY executor, data_plane_id`,
    ).all() as unknown as Array<{ executor: string; data_plane_id: string; n: number }>;
  }

  /** A read-only query for the console's charts (console/charts.ts), prepared once per SQL text. */
  consoleQuery(sql: string, ...params: SQLInputValue[]): Array<Record<string, unknown>> {
    return this.cachedUpdate(sql).all(...params) as Array<Record<string, unknown>>;
  }

  /**
   * Retention of the job event log: deletes up to `limit` of its oldest entries written before
   * `beforeMs` (oldest by `seq`, which follows commit time), and returns how many went.
   */
  pruneEvents(beforeMs: number, limit: number): number {
    return Number(
      this.cachedUpdate(
        `DELETE FROM job_event_log WHERE seq IN (SELECT seq FROM job_event_log ORDER BY seq LIMIT ?) AND at < ?`,
      ).run(limit, beforeMs).changes,
    );
  }

  /** The store's clock (epoch ms). */
  clock(): number {
    return this.now();
  }

  logs(id: string, after: number, limit: number): LogsResponse {
    this.mustRow(id);
    const lines = (this.stmts.logs.all(id, after, limit) as Array<Record<string, unknown>>).map((r) => ({
      seq: r.seq as number,
      attempt: r.attempt as number,
      executor: r.executor as string | null,
      ts: r.ts as string,
      level: r.level as LogLine['level'],
      msg: r.msg as string,
    }));
    return { lines, last_seq: lines.at(-1)?.seq ?? null };
  }

  // -------------------------------------------------------------------------------------------
  // User side

  /**
   * Submits a job. Returns `created: false` with the existing job when the company already used the
   * idempotency key. Internal types are refused unless `source` is another job.
   */
  submit(req: SubmitJobRequest, source: RequestSource): { job: Job; created: boolean } {
    const spec = getJobType(req.type);
    if (spec === undefined) {
      throw issuesError(422, `unknown job type '${req.type}'`, [
        { path: 'type', message: `unknown job type '${req.type}'`, code: 'unknown_job_type' },
      ]);
    }
    if (spec.internal && source.type !== 'job') {
      throw issuesError(422, `'${req.type}' is an internal job type, created by the control plane only`, [
        { path: 'type', message: 'internal job types cannot be submitted', code: 'internal_job_type' },
      ]);
    }
    if (source.type !== 'job' && req.idempotency_key?.startsWith(INTERNAL_KEY_PREFIX)) {
      throw issuesError(
        422,
        `idempotency keys starting with '${INTERNAL_KEY_PREFIX}' are the control plane's own`,
        [
          {
            path: 'idempotency_key',
            message: `keys starting with '${INTERNAL_KEY_PREFIX}' are reserved for the control plane's follow-up jobs`,
            code: 'reserved_idempotency_key',
          },
        ],
      );
    }
    const validation = validateInput(req.type, req.input);
    if (!validation.ok) {
      throw issuesError(
        422,
        `input does not match the schema of '${req.type}'`,
        validation.issues.map((i) => ({ ...i, path: i.path ? `input.${i.path}` : 'input' })),
      );
    }
    return this.tx(() => {
      const key = req.idempotency_key ?? null;
      if (key !== null) {
        const existing = this.stmts.byIdempotency.get(req.company_id, key) as JobRow | undefined;
        if (existing) return { job: toJob(existing), created: false };
      }
      const now = this.now();
      const row = this.stmts.insert.get(
        randomUUID(),
        req.type,
        req.company_id,
        req.data_plane_id ?? null,
        JSON.stringify(source),
        JSON.stringify(req.input),
        key,
        req.max_attempts ?? this.opts.defaultMaxAttempts,
        now,
        now,
      ) as unknown as JobRow;
      this.record(row, 'created', null);
      this.emit((l) => l.claimable(row.type, row.data_plane_id, null));
      return { job: toJob(row), created: true };
    });
  }

  cancel(id: string, reason: string | null): CancelJobResponse {
    return this.tx(() => {
      const row = this.mustRow(id);
      const now = this.now();
      switch (row.state) {
        case 'completed':
        case 'cancelled':
        case 'failed':
          return { outcome: 'skipped_terminal', job: toJob(row) };
        case 'pending': {
          const cancellation_reason = reason ?? 'cancelled by user';
          if (row.checkpoint === null && row.stale_checkpoints === null) {
            return { outcome: 'cancelled', job: this.finish(row, 'cancelled', now, { cancellation_reason }) };
          }
          // A previous holder left remote work behind: an operator must stop it before it ends.
          const job = this.update(row.id, {
            state: 'pending_cancellation',
            cancellation_reason,
            not_before: null,
            updated_at: now,
          });
          this.emit((l) => l.claimable(row.type, row.data_plane_id, null));
          return { outcome: 'cancellation_requested', job };
        }
        case 'running':
        case 'pending_cancellation': {
          // A user's cancel of a last attempt's cleanup makes it end cancelled, as asked.
          const updated = this.update(row.id, {
            state: 'pending_cancellation',
            cancellation_reason: row.cancellation_reason ?? reason ?? 'cancelled by user',
            cleanup_ends_failed: 0,
            updated_at: now,
          });
          this.emit((l) => l.holderAttention(row.id, row.executor));
          return { outcome: 'cancellation_requested', job: updated };
        }
      }
    });
  }

  /**
   * Puts a job back to pending with a fresh start: executor, lease (fencing the old holder),
   * checkpoint, progress, result and attempt cleared. Terminal jobs only with `force`.
   */
  reschedule(id: string, force: boolean): RescheduleJobResponse {
    return this.tx(() => {
      const row = this.mustRow(id);
      const terminal = row.state === 'completed' || row.state === 'cancelled' || row.state === 'failed';
      if (terminal && !force) return { outcome: 'skipped_terminal', job: toJob(row) };
      const now = this.now();
      const job = this.update(row.id, {
        state: 'pending',
        executor: null,
        lease_token: null,
        lease_expires_at: null,
        checkpoint: null,
        // The cleared checkpoint may name remote work still running: kept for the next holder to
        // stop first, with any older ones not yet stopped.
        stale_checkpoints:
          row.checkpoint === null
            ? row.stale_checkpoints
            : JSON.stringify([
                ...((jsonOrNull(row.stale_checkpoints) ?? []) as unknown[]),
                jsonOrNull(row.checkpoint),
              ]),
        cleanup_ends_failed: 0,
        progress: null,
        result: null,
        attempt: 0,
        not_before: null,
        cancellation_reason: null,
        started_at: null,
        ended_at: null,
        updated_at: now,
      });
      if (row.lease_token !== null) this.revoke(row, now, 'rescheduled');
      this.emit((l) => l.claimable(row.type, row.data_plane_id, null));
      return { outcome: 'rescheduled', job };
    });
  }

  // -------------------------------------------------------------------------------------------
  // Operator side

  /**
   * Renews the leases of `held`, sorts them into `cancel` and `lost`, adds every lease revoked from
   * this executor since its last poll to `lost` and every other job it holds whose cancellation was
   * requested to `cancel`, then claims up to `capacity` jobs of `jobTypes` for `dataPlaneId`: first
   * unheld `pending_cancellation` jobs (to stop their remote work), then pending ones, oldest first.
   */
  poll(args: {
    executor: string;
    dataPlaneId: string;
    jobTypes: readonly string[];
    capacity: number;
    held: readonly HeldJob[];
  }): { claimed: Job[]; cancel: string[]; lost: string[]; lostReasons: Record<string, LostReason> } {
    return this.tx(() => {
      const now = this.now();
      if (now >= this.noExpiryBefore) {
        this.expireLeasesInTx(now);
        this.noExpiryBefore = this.nextLeaseExpiry() ?? Number.POSITIVE_INFINITY;
      }
      const expires = now + this.opts.leaseTtlMs;
      // The leases this poll grants or renews end at `expires`.
      if (expires < this.noExpiryBefore) this.noExpiryBefore = expires;
      const cancel: string[] = [];
      const lost: string[] = [];
      const lostReasons: Record<string, LostReason> = {};
      for (const h of args.held) {
        const progress = h.progress ? JSON.stringify(h.progress) : null;
        const before = progress === null ? undefined : (this.stmts.byId.get(h.id) as JobRow | undefined);
        const r = this.stmts.renew.get(expires, progress, now, h.id, h.lease_token, args.dataPlaneId) as
          | { state: JobState }
          | undefined;
        if (r === undefined) lost.push(h.id);
        else if (r.state === 'pending_cancellation') cancel.push(h.id);
        if (r !== undefined && before !== undefined && before.progress !== progress) {
          this.record({ ...before, progress, state: r.state }, 'progress', h.progress);
        }
      }
      // Leases taken from this executor by someone else (reschedule, expiry) reach it whether or
      // not this poll lists the job. Delivered once; a holder that misses the answer still learns at
      // its next renewal (the lease no longer renews) or fences itself first.
      const pair = `${args.executor}\u0000${args.dataPlaneId}`;
      const version = this.revokedPairs.get(pair);
      const revoked =
        version === undefined
          ? []
          : (this.stmts.takeRevoked.all(args.executor, args.dataPlaneId) as Array<{
              job_id: string;
              reason: LostReason;
              keep_until: number;
            }>);
      if (version !== undefined) {
        this.pendingEvents.push(() => {
          if (this.revokedPairs.get(pair) === version) this.revokedPairs.delete(pair);
        });
      }
      if (revoked.length > 0) {
        const renewed = new Set(args.held.map((h) => h.id).filter((id) => !lost.includes(id)));
        for (const r of revoked) {
          if (r.keep_until < now || renewed.has(r.job_id)) continue;
          if (!lost.includes(r.job_id)) lost.push(r.job_id);
          // A reschedule says more than an expiry (it asks the holder to stop its remote work).
          if (lostReasons[r.job_id] !== 'rescheduled') lostReasons[r.job_id] = r.reason;
        }
      }
      for (const id of lost) {
        if (lostReasons[id] !== undefined) continue;
        // Listed, not renewed, and no revocation on record: held under another lease now, or not
        // held at all (its lease ran out, or the job is gone).
        const row = this.row(id);
        lostReasons[id] = row?.lease_token != null ? 'claimed' : 'expired';
      }
      // Cancels reach the holder whether or not this poll lists the job in `held`: the daemon sends
      // `held` only when renewals are due, and a cancel must not wait for that.
      const seen = new Set(cancel);
      for (const r of this.stmts.cancelling.all(args.executor, args.dataPlaneId) as Array<{ id: string }>) {
        if (!seen.has(r.id)) cancel.push(r.id);
      }
      let claimed: Job[] = [];
      if (args.capacity > 0 && args.jobTypes.length > 0) {
        const types = JSON.stringify(args.jobTypes);
        const cancels = (this.stmts.anyUnheldCancel.get() === undefined
          ? []
          : this.stmts.claimCancels.all(
              args.executor,
              args.dataPlaneId,
              expires,
              now,
              args.dataPlaneId,
              types,
              now,
              args.capacity,
            )) as unknown as JobRow[];
        cancels.sort((a, b) => a.seq - b.seq);
        claimed = cancels.map((r) => {
          this.record(r, 'claimed_for_cancel', null);
          return toJob(r);
        });
        const room = args.capacity - cancels.length;
        const rows =
          room <= 0
            ? []
            : (this.stmts.claim.all(
                args.executor,
                args.dataPlaneId,
                expires,
                now,
                now,
                args.dataPlaneId,
                types,
                now,
                room,
              ) as unknown as JobRow[]);
        rows.sort((a, b) => a.seq - b.seq);
        for (const r of rows) {
          this.record(r, 'claimed', null);
          claimed.push(toJob(r));
        }
      }
      return { claimed, cancel, lost, lostReasons };
    });
  }

  /** Earliest time a pending job of these types becomes claimable after its retry backoff. */
  nextNotBefore(dataPlaneId: string, jobTypes: readonly string[]): number | null {
    const r = this.stmts.nextNotBefore.get(dataPlaneId, JSON.stringify(jobTypes)) as { t: number | null };
    return r.t;
  }

  /** Whether `executor` holds any lease on `dataPlaneId` (a parked poll is then capped at TTL/2). */
  holds(executor: string, dataPlaneId: string): boolean {
    return this.stmts.holdsAny.get(executor, dataPlaneId) !== undefined;
  }

  /** Earliest lease expiry of any held job, for the sweeper's timer. */
  nextLeaseExpiry(): number | null {
    return (this.stmts.nextLeaseExpiry.get() as { t: number | null }).t;
  }

  /**
   * Loads a job for a write by its lease holder: 404 when unknown, 403 when it belongs to another
   * data plane, 410 when the lease token is not the current one (the holder was fenced off).
   */
  private leased(id: string, leaseToken: string, dataPlaneId: string): JobRow {
    const row = this.mustRow(id);
    if (row.data_plane_id !== null && row.data_plane_id !== dataPlaneId) {
      throw new StoreError(403, 'forbidden', `job ${id} belongs to another data plane`);
    }
    if (row.lease_token !== leaseToken || (row.state !== 'running' && row.state !== 'pending_cancellation')) {
      throw new StoreError(410, 'gone', `the lease on job ${id} is no longer held by this token`, {
        state: row.state,
      });
    }
    // The lease ends at its expiry, not at the next sweep: every write checks it itself (the row
    // is already read, so this costs a comparison). The sweep or the next poll records the expiry.
    if (row.lease_expires_at !== null && row.lease_expires_at < this.now()) {
      throw new StoreError(410, 'gone', `the lease on job ${id} expired at ${iso(row.lease_expires_at)}`, {
        state: row.state,
        reason: 'expired',
      });
    }
    return row;
  }

  checkpoint(
    id: string,
    leaseToken: string,
    dataPlaneId: string,
    checkpoint: Record<string, unknown> | null | undefined,
    progress: Progress | null | undefined,
    clearStale = false,
  ): Job {
    return this.tx(() => {
      const row = this.leased(id, leaseToken, dataPlaneId);
      const patch: Partial<JobRow> = { updated_at: this.now() };
      if (checkpoint !== undefined)
        patch.checkpoint = checkpoint === null ? null : JSON.stringify(checkpoint);
      // The holder confirmed the work a reschedule left behind stopped.
      if (clearStale && row.stale_checkpoints !== null) patch.stale_checkpoints = null;
      if (progress !== undefined && progress !== null) patch.progress = JSON.stringify(progress);
      return this.update(row.id, patch);
    });
  }

  complete(id: string, leaseToken: string, dataPlaneId: string, result: unknown): Job {
    return this.tx(() => {
      return this.completeRow(id, leaseToken, dataPlaneId, result);
    });
  }

  /**
   * `complete` in one statement: the `UPDATE` carries the lease check in its `WHERE` (token, data
   * plane, state, and the expiry at the moment of the write), so a good report costs no `SELECT`.
   * When it matches nothing, {@link leased} says why (404, 403, 410). The result is validated
   * against the row's type after the write: a refusal throws, and the caller's transaction or
   * savepoint undoes the write. The Job is built once, for the follow-up rules (and `complete`'s
   * answer); a report entry sends nothing of it back.
   */
  private completeRow(id: string, leaseToken: string, dataPlaneId: string, result: unknown): Job {
    const now = this.now();
    const row = (
      UUID.test(id)
        ? this.stmts.completeLeased.get(JSON.stringify(result), now, now, id, leaseToken, dataPlaneId, now)
        : undefined
    ) as JobRow | undefined;
    if (row === undefined) {
      this.leased(id, leaseToken, dataPlaneId);
      throw new StoreError(410, 'gone', `the lease on job ${id} is no longer held by this token`);
    }
    const validation = validateResult(row.type, result);
    if (!validation.ok) {
      throw issuesError(
        422,
        `result does not match the schema of '${row.type}'`,
        validation.issues.map((i) => ({ ...i, path: i.path ? `result.${i.path}` : 'result' })),
      );
    }
    this.record(row, 'completed', null);
    this.emit((l) => l.terminal(row.id));
    const job = toJob(row);
    this.enqueueFollowUps(job, now);
    return job;
  }

  fail(id: string, leaseToken: string, dataPlaneId: string, failure: FailureReport): Job {
    return this.tx(() => {
      const row = this.leased(id, leaseToken, dataPlaneId);
      return this.failRow(row, failure, this.now());
    });
  }

  cancelled(id: string, leaseToken: string, dataPlaneId: string): Job {
    return this.tx(() => {
      const row = this.leased(id, leaseToken, dataPlaneId);
      // The remote work of a last attempt whose lease expired is confirmed stopped: the job ends as
      // its expiry said, failed.
      if (row.cleanup_ends_failed === 1 && row.state === 'pending_cancellation') {
        return this.finish(row, 'failed', this.now(), { stale_checkpoints: null });
      }
      return this.finish(row, 'cancelled', this.now(), {
        cancellation_reason: row.cancellation_reason ?? 'cancelled by the operator',
        stale_checkpoints: null,
      });
    });
  }

  /** Hands a job back (drain): pending again, attempt given back, checkpoint kept. */
  release(id: string, leaseToken: string, dataPlaneId: string, reason: string): Job {
    return this.tx(() => {
      const row = this.leased(id, leaseToken, dataPlaneId);
      const now = this.now();
      this.stmts.insertLog.run(row.id, row.attempt, row.executor, iso(now), 'info', `released: ${reason}`);
      if (row.state === 'pending_cancellation') return this.leaveCancellation(row, now, {});
      const job = this.update(row.id, {
        state: 'pending',
        attempt: Math.max(0, row.attempt - 1),
        executor: null,
        lease_token: null,
        lease_expires_at: null,
        not_before: null,
        updated_at: now,
      });
      this.emit((l) => l.claimable(row.type, row.data_plane_id, null));
      return job;
    });
  }

  appendLogs(id: string, leaseToken: string, dataPlaneId: string, lines: readonly LogLine[]): number {
    return this.tx(() => {
      const row = this.leased(id, leaseToken, dataPlaneId);
      for (const line of lines) {
        this.stmts.insertLog.run(row.id, row.attempt, row.executor, line.ts, line.level, line.msg);
      }
      if (lines.length > 0) this.emit((l) => l.logged?.(row.id));
      return lines.length;
    });
  }

  /** Log lines of many held jobs in one transaction; an entry whose lease is gone is `lost`. */
  appendLogsBatch(
    dataPlaneId: string,
    entries: ReadonlyArray<{ id: string; lease_token: string; lines: readonly LogLine[] }>,
  ): Array<{ status: 'ok' | 'lost' | 'invalid'; appended: number }> {
    return this.tx(() =>
      entries.map((e) => {
        try {
          return {
            status: 'ok' as const,
            appended: this.appendLogs(e.id, e.lease_token, dataPlaneId, e.lines),
          };
        } catch (err) {
          if (!(err instanceof StoreError)) throw err;
          return {
            status: err.status === 410 || err.status === 404 ? ('lost' as const) : ('invalid' as const),
            appended: 0,
          };
        }
      }),
    );
  }

  /**
   * The four operator writes, batched: one transaction, one outcome per entry. Each entry runs in
   * its own savepoint, so one that throws half-way (a follow-up the store refuses, say) is rolled
   * back alone and answered `invalid`, and the others still commit.
   */
  report(
    dataPlaneId: string,
    entries: ReadonlyArray<
      | { id: string; lease_token: string; outcome: 'complete'; result: unknown }
      | { id: string; lease_token: string; outcome: 'fail'; failure: FailureReport }
      | { id: string; lease_token: string; outcome: 'cancelled' }
      | { id: string; lease_token: string; outcome: 'release'; reason: string }
    >,
  ): ReportOutcome[] {
    return this.tx(() =>
      entries.map((e): ReportOutcome => {
        const events = this.pendingEvents.length;
        const rows = this.eventRows.length;
        this.stmts.savepoint.run();
        try {
          switch (e.outcome) {
            case 'complete':
              this.completeRow(e.id, e.lease_token, dataPlaneId, e.result);
              break;
            case 'fail':
              this.fail(e.id, e.lease_token, dataPlaneId, e.failure);
              break;
            case 'cancelled':
              this.cancelled(e.id, e.lease_token, dataPlaneId);
              break;
            case 'release':
              this.release(e.id, e.lease_token, dataPlaneId, e.reason);
              break;
          }
          this.stmts.releaseSavepoint.run();
          return { status: 'ok' };
        } catch (err) {
          this.stmts.rollbackToSavepoint.run();
          this.stmts.releaseSavepoint.run();
          this.pendingEvents.length = events;
          this.eventRows.length = rows;
          this.noExpiryBefore = Number.NEGATIVE_INFINITY;
          if (!(err instanceof StoreError)) {
            return {
              status: 'invalid',
              error: new StoreError(
                500,
                'internal',
                `the control plane could not apply this report: ${String(err)}`,
              ),
            };
          }
          return { status: err.status === 410 || err.status === 404 ? 'lost' : 'invalid', error: err };
        }
      }),
    );
  }

  /**
   * Ends the leases that were not renewed in time: pending again with a `LEASE_EXPIRED` failure
   * (checkpoint kept), or failed once attempts are spent; a `pending_cancellation` job stays so,
   * unheld, when its checkpoint names remote work, and ends cancelled when it has none. A last
   * attempt whose checkpoint names remote work goes to cleanup instead (see `expireOne`). Also
   * forgets revocations whose lease would have ended by itself (the holder fenced itself by then).
   */
  expireLeases(): number {
    return this.tx(() => {
      const now = this.now();
      this.stmts.forgetRevoked.run(now);
      return this.expireLeasesInTx(now);
    });
  }

  private expireLeasesInTx(now: number): number {
    const rows = this.stmts.expired.all(now) as unknown as JobRow[];
    for (const row of rows) {
      this.revoke(row, now, 'expired');
      if (
        row.state === 'running' &&
        row.attempt >= row.max_attempts &&
        (row.checkpoint !== null || row.stale_checkpoints !== null)
      ) {
        this.cleanUpLastAttempt(row, now);
        continue;
      }
      this.failRow(
        row,
        {
          code: 'LEASE_EXPIRED',
          message: `the lease held by ${row.executor ?? 'an executor'} was not renewed within ${this.opts.leaseTtlMs} ms`,
          retryable: true,
        },
        now,
        { immediate: true },
      );
    }
    return rows.length;
  }

  /**
   * A last attempt's lease expired while its checkpoint names remote work: nobody would reattach, so
   * it is cleaned up like a cancel. It stays `pending_cancellation` without a lease (failure record
   * `LEASE_EXPIRED`), an operator serving its type claims it, stops the work and confirms, and only
   * then does it end `failed`.
   */
  private cleanUpLastAttempt(row: JobRow, now: number): void {
    const record: FailureRecord = {
      attempt: row.attempt,
      executor: row.executor,
      code: 'LEASE_EXPIRED',
      message: `the lease held by ${row.executor ?? 'an executor'} was not renewed within ${this.opts.leaseTtlMs} ms, on the last attempt: stopping its remote work before the job fails`,
      retryable: false,
      details: null,
      timestamp: iso(now),
    };
    this.update(row.id, {
      state: 'pending_cancellation',
      cleanup_ends_failed: 1,
      failures: JSON.stringify([...(JSON.parse(row.failures) as FailureRecord[]), record]),
      executor: null,
      lease_token: null,
      lease_expires_at: null,
      not_before: null,
      updated_at: now,
    });
    this.emit((l) => l.claimable(row.type, row.data_plane_id, null));
  }

  /**
   * Records that `row`'s lease was taken from its holder, and why, for the holder's next poll. Kept
   * until that poll, or for one lease TTL, whichever comes first: a holder that has not renewed for
   * a TTL has fenced itself (it fences at three quarters), and a revoked lease would have ended by
   * itself within a TTL anyway.
   */
  private revoke(row: JobRow, now: number, reason: LostReason): void {
    if (row.executor === null || row.lease_token === null || row.data_plane_id === null) return;
    this.stmts.revoke.run(
      row.executor,
      row.data_plane_id,
      row.id,
      row.lease_token,
      now,
      reason,
      now + this.opts.leaseTtlMs,
    );
    const pair = `${row.executor}\u0000${row.data_plane_id}`;
    this.revokedPairs.set(pair, (this.revokedPairs.get(pair) ?? 0) + 1);
    this.emit((l) => l.holderAttention(row.id, row.executor));
  }

  /**
   * A `pending_cancellation` job whose holder lets go (release, a retryable failure, expiry): with a
   * checkpoint the remote work may still run, so it stays `pending_cancellation` without a lease
   * for an operator to claim and stop (after `notBefore`); without one it ends cancelled.
   */
  private leaveCancellation(
    row: JobRow,
    now: number,
    patch: Partial<JobRow>,
    notBefore: number | null = null,
  ): Job {
    if (row.checkpoint === null && row.stale_checkpoints === null) {
      return this.finish(row, row.cleanup_ends_failed === 1 ? 'failed' : 'cancelled', now, patch);
    }
    const job = this.update(row.id, {
      ...patch,
      executor: null,
      lease_token: null,
      lease_expires_at: null,
      not_before: notBefore,
      updated_at: now,
    });
    this.emit((l) => l.claimable(row.type, row.data_plane_id, notBefore));
    return job;
  }

  // -------------------------------------------------------------------------------------------
  // Helpers (inside a transaction)

  private failRow(row: JobRow, failure: FailureReport, now: number, opts: { immediate?: boolean } = {}): Job {
    const history = JSON.parse(row.failures) as FailureRecord[];
    // Throttled (the backend refused for rate or capacity, nothing ran): the attempt is given back,
    // a bounded number of times per job.
    const givesBack =
      failure.retryable &&
      failure.throttled === true &&
      row.state !== 'pending_cancellation' &&
      history.filter((f) => f.throttled).length < this.opts.maxThrottledRetries;
    const record: FailureRecord = {
      attempt: row.attempt,
      executor: row.executor,
      code: failure.code,
      message: failure.message,
      retryable: failure.retryable,
      details: failure.details ?? null,
      timestamp: iso(now),
      ...(givesBack ? { throttled: true } : {}),
    };
    const failures = JSON.stringify([...history, record]);
    const backoff = failure.retry_after_ms ?? this.backoffMs(row.attempt);
    if (row.state === 'pending_cancellation') {
      // The cancel is still owed. A failure that is not retryable is the executor's word that
      // nothing more can be done (the remote work itself failed, or the job cannot be understood):
      // the job ends failed, never cancelled without a confirmation.
      if (!failure.retryable && (row.checkpoint !== null || row.stale_checkpoints !== null))
        return this.finish(row, 'failed', now, { failures });
      return this.leaveCancellation(row, now, { failures }, opts.immediate ? null : now + backoff);
    }
    if (failure.retryable && (row.attempt < row.max_attempts || givesBack)) {
      const notBefore = opts.immediate ? null : now + backoff;
      const job = this.update(row.id, {
        state: 'pending',
        ...(givesBack ? { attempt: Math.max(0, row.attempt - 1) } : {}),
        executor: null,
        lease_token: null,
        lease_expires_at: null,
        not_before: notBefore,
        failures,
        updated_at: now,
      });
      this.emit((l) => l.claimable(row.type, row.data_plane_id, notBefore));
      return job;
    }
    return this.finish(row, 'failed', now, { failures });
  }

  /** Exponential backoff from `retryBaseMs`, doubling per attempt, capped at `retryMaxMs`. */
  backoffMs(attempt: number): number {
    return Math.min(this.opts.retryMaxMs, this.opts.retryBaseMs * 2 ** Math.max(0, attempt - 1));
  }

  private finish(
    row: JobRow,
    state: 'completed' | 'cancelled' | 'failed',
    now: number,
    patch: Partial<JobRow>,
  ): Job {
    const job = this.update(row.id, {
      ...patch,
      state,
      lease_token: null,
      lease_expires_at: null,
      not_before: null,
      ended_at: now,
      updated_at: now,
    });
    this.emit((l) => l.terminal(row.id));
    return job;
  }

  private update(id: string, patch: Partial<JobRow>): Job {
    const keys = Object.keys(patch) as Array<keyof JobRow>;
    const sql = `UPDATE jobs SET ${keys.map((k) => `${k} = ?`).join(', ')} WHERE id = ? RETURNING *`;
    const stmt = this.cachedUpdate(sql);
    const row = stmt.get(...keys.map((k) => patch[k] as SQLInputValue), id) as unknown as JobRow;
    const [kind, data] = eventOf(patch, row);
    this.record(row, kind, data);
    return toJob(row);
  }

  /**
   * Appends to the job event log (written with the transaction's other rows, before its COMMIT) and
   * tells the listeners after the commit.
   */
  private record(row: JobRow, kind: string, data: unknown): void {
    const at = this.now();
    const dataText = data === null || data === undefined ? null : JSON.stringify(data);
    const values: SQLInputValue[] = [
      row.seq,
      row.id,
      kind,
      row.state,
      row.type,
      row.data_plane_id,
      row.company_id,
      row.executor,
      row.attempt,
      at,
      dataText,
    ];
    if (!this.listeners.some((l) => l.changed)) {
      this.eventRows.push({ values, event: undefined });
      return;
    }
    const event: JobEvent = {
      seq: 0, // set when the row is written, before the commit
      job_id: row.id,
      kind,
      state: row.state,
      type: row.type,
      data_plane_id: row.data_plane_id,
      company_id: row.company_id,
      executor: row.executor,
      attempt: row.attempt,
      at: iso(at),
      data: data ?? null,
    };
    this.eventRows.push({ values, event });
    this.emit((l) => l.changed?.(event));
  }

  /** Writes the transaction's event-log rows: one INSERT of up to {@link EVENT_ROWS_PER_INSERT} rows. */
  private writeEventRows(): void {
    const rows = this.eventRows;
    if (rows.length === 0) return;
    this.eventRows = [];
    for (let i = 0; i < rows.length; i += EVENT_ROWS_PER_INSERT) {
      const chunk = rows.slice(i, i + EVENT_ROWS_PER_INSERT);
      const params: SQLInputValue[] = [];
      for (const r of chunk) params.push(...r.values);
      const written = this.insertEvents(chunk.length).all(...params) as Array<{ seq: number }>;
      // The rows take increasing rowids in the order of the VALUES list (INTEGER PRIMARY KEY, one
      // statement); RETURNING's order is not specified, so the seqs are sorted back into it.
      const seqs = written.map((w) => w.seq).sort((a, b) => a - b);
      chunk.forEach((r, j) => {
        if (r.event !== undefined) r.event.seq = seqs[j]!;
      });
    }
  }

  private insertEvents(n: number): StatementSync {
    return this.cachedUpdate(
      `INSERT INTO job_event_log (job_seq, job_id, kind, state, type, data_plane_id, company_id, executor, attempt, at, data)
       VALUES ${Array.from({ length: n }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')} RETURNING seq`,
    );
  }

  private readonly updateCache = new Map<string, StatementSync>();
  private cachedUpdate(sql: string): StatementSync {
    let stmt = this.updateCache.get(sql);
    if (stmt === undefined) {
      stmt = this.db.prepare(sql);
      this.updateCache.set(sql, stmt);
    }
    return stmt;
  }

  /** Submits the internal jobs the parent's completion causes (`follow-ups.ts`). */
  private enqueueFollowUps(parent: Job, now: number): void {
    const source: RequestSource = { type: 'job', job_id: parent.id, job_type: parent.type };
    for (const req of this.followUps(parent, new Date(now))) {
      // Every internal key lives where no user can write (a user's key there would suppress it).
      const key = req.idempotency_key;
      if (key != null && !key.startsWith(INTERNAL_KEY_PREFIX)) {
        throw new Error(`follow-up '${req.type}' of ${parent.id} has a key outside '${INTERNAL_KEY_PREFIX}'`);
      }
      this.submit(req, source);
    }
  }
}
