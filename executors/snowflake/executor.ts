/**
 * The Snowflake executor: the seven Snowflake job types as asynchronous statements, each one
 * submitted at most once, reattached after a crash, cancelled for real.
 *
 * A job is a short sequence of named steps (README: "Statements per job type"); each step is one
 * statement run on the remote-run protocol (src/executor/remote-run.ts). The job's checkpoint holds
 * a nonce drawn at a fresh start and, per step, its submission number, the attempt, and (once
 * Snowflake answered) the query id:
 *
 *   { snowflake: 1, nonce, steps: { <step>: { attempt, submission, query_id? } } }
 *
 * The step's intent is checkpointed before the submission and its query id right after (asyncExec
 * answers with it at once). A claim whose checkpoint has the query id polls it and never submits
 * it again (a step that succeeded under an earlier holder is read back from its result). A claim
 * whose checkpoint has the intent but no query id (the holder died between the two saves) looks the
 * query up by its QUERY_TAG in INFORMATION_SCHEMA.QUERY_HISTORY; found, it reattaches; not found, a
 * read or an idempotent DDL step is submitted again, but a DML step fails `DML_OUTCOME_UNKNOWN`
 * (not retryable) rather than risk running twice.
 *
 * QUERY_TAG is JSON: {dpo_job_id, type, attempt, step, submission: "<nonce>-<step>-<n>"}.
 * STATEMENT_TIMEOUT_IN_SECONDS is the time left until the job's deadline.
 *
 * Abort reasons: `cancel` and `timeout` run SYSTEM$CANCEL_QUERY (from any session) and return only
 * once the query's status says it ended; `rescheduled` stops the running statement the same way,
 * bounded (remote-run.ts); `lost` and `shutdown` leave the query running.
 *
 * A reschedule whose holder was gone leaves the cleared checkpoint in the job's
 * `stale_checkpoints`. Those are whole-job checkpoints (every step), which the per-step remote-run
 * cannot read, so the job does it first, before any step: each step's query that is not known to
 * have ended (its query id, or the one its QUERY_TAG finds) gets SYSTEM$CANCEL_QUERY until its status
 * says it ended (ABORTING has not), for as long as the lease is held; then the control plane is told
 * to forget them (`clearStaleCheckpoints`). The steps' contexts carry no stale checkpoints.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { InputOf } from '../../src/catalogue/index.ts';
import type { ModelsTrainClassifierInput } from '../../src/catalogue/models.ts';
import type { Checkpoint } from '../../src/contract/index.ts';
import { finishColumnStats } from '../../src/executor/column-stats.ts';
import {
  type ExecuteContext,
  type Executor,
  JobError,
  type JobHandle,
  type JobHandlers,
  runHandler,
} from '../../src/executor/index.ts';
import { type RemoteRunOps, runRemote } from '../../src/executor/remote-run.ts';
import { backoffDelay, retry, sleep } from '../../src/lib/retry.ts';
import { abortable, type Bind, type FetchedResult, queryPhase, type SnowflakeClient } from './client.ts';
import type { SNOWFLAKE_JOB_TYPES, SnowflakeConfig } from './config.ts';
import { checkedDml, idempotentCreate, ident, literal, Names, qualified } from './sql.ts';
import { planHistograms, planStats, readHistograms, readStats } from './stats.ts';

/**
 * A query id as Snowflake hands it out (`01bfd516-0009-ae23-0000-4c390101d1aa`): the 8-4-4-4-12 hex
 * shape snowflake-sdk checks (`queryIdRegex`, dist/lib/connection/connection.js), NOT an RFC 4122
 * UUID (no version or variant bits), so never `z.string().uuid()`.
 */
export const QUERY_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const StepCheckpoint = z.object({
  attempt: z.number().int().min(1),
  submission: z.number().int().min(1),
  query_id: z.string().regex(QUERY_ID).optional(),
});

export const SnowflakeCheckpoint = z.object({
  snowflake: z.literal(1),
  nonce: z.string().regex(/^[0-9a-f]{8}$/),
  steps: z.record(z.string(), StepCheckpoint),
});
export type SnowflakeCheckpoint = z.infer<typeof SnowflakeCheckpoint>;

/** What a step does, which decides what a lost submission may do (see the header). */
export type StepKind = 'read' | 'idempotent' | 'dml';

interface StepIntent {
  readonly attempt: number;
  readonly submission: number;
}

const invalid = (message: string, details?: unknown) =>
  new JobError('INVALID_INPUT', message, { retryable: false, details });

export const COLUMN_STATS_TABLE = 'COLUMN_STATS';
export const sampleTable = (datasetId: number) => `DATASET_${datasetId}_SAMPLE`;

/** One job's run: its checkpoint state and its steps. */
class JobRun {
  readonly state: SnowflakeCheckpoint;
  readonly job: JobHandle;
  readonly ctx: ExecuteContext;
  readonly ex: SnowflakeExecutor;
  constructor(ex: SnowflakeExecutor, job: JobHandle, ctx: ExecuteContext) {
    this.ex = ex;
    this.job = job;
    this.ctx = ctx;
    const saved = ctx.checkpoint ? SnowflakeCheckpoint.safeParse(ctx.checkpoint) : undefined;
    if (ctx.checkpoint && !saved?.success) ctx.log.warn('ignoring a checkpoint this executor did not write');
    this.state =
      saved?.success === true
        ? saved.data
        : { snowflake: 1, nonce: randomBytes(4).toString('hex'), steps: {} };
  }

  get warehouse(): string {
    return this.ex.config.warehouses[this.job.type] ?? this.ex.config.warehouse;
  }

  tag(step: string, intent: StepIntent): string {
    return JSON.stringify({
      dpo_job_id: this.job.id,
      type: this.job.type,
      attempt: intent.attempt,
      step,
      submission: `${this.state.nonce}-${step}-${intent.submission}`,
    });
  }

  timeoutSeconds(): number {
    return Math.min(604_800, Math.max(1, Math.ceil((this.ctx.deadline - Date.now()) / 1000)));
  }

  /**
   * Stops the queries a rescheduled attempt left (the job's `stale_checkpoints`, see the header),
   * then tells the control plane to forget them. Runs under the lease signal: a cancel arriving
   * meanwhile does not interrupt it (the cancel path wants that work stopped too).
   */
  async stopStale(): Promise<void> {
    const stale = this.ctx.staleCheckpoints ?? [];
    if (stale.length === 0) return;
    const { config } = this.ex;
    const signal = this.ctx.leaseSignal;
    for (const checkpoint of stale) {
      const parsed = SnowflakeCheckpoint.safeParse(checkpoint);
      if (!parsed.success) {
        this.ctx.log.warn(
          'a rescheduled attempt left a checkpoint this executor did not write; not stopping it',
        );
        continue;
      }
      const { nonce, steps } = parsed.data;
      for (const [name, step] of Object.entries(steps)) {
        // An intent without a query id: the holder may have submitted it; its tag finds it.
        const id =
          step.query_id ??
          (await retry(
            () => this.ex.findByTag(`${nonce}-${name}-${step.submission}`, this.warehouse, signal),
            {
              maxAttempts: 4,
              baseMs: config.pollMinMs,
              capMs: config.pollMaxMs,
              signal,
              classify: (err) => ({ retryable: err instanceof JobError && err.retryable }),
            },
          ));
        if (id === undefined) continue;
        await this.ex.stopQuery(
          id,
          this.warehouse,
          signal,
          this.ctx,
          `Snowflake query (${name}) a rescheduled attempt left`,
        );
      }
    }
    await this.ctx.clearStaleCheckpoints?.();
  }

  /** Runs (or reattaches to) one named step's statement; resolves with its result. */
  async step(name: string, kind: StepKind, sql: string, binds: Bind[] = []): Promise<FetchedResult> {
    const { client, config } = this.ex;
    const job = this.job;
    const state = this.state;
    const stepCtx: ExecuteContext = {
      ...this.ctx,
      // The job's stale checkpoints are stopped and cleared once, before the first step (stopStale).
      staleCheckpoints: [],
      checkpoint: state.steps[name] ?? null,
      saveCheckpoint: async (cp: Checkpoint) => {
        const step = StepCheckpoint.parse(cp);
        // An intent without a query id is saved right before the submission (remote-run.ts): it is
        // recorded only once a live session exists, so a login refused leaves no intent behind
        // (only an intent that may have reached Snowflake can make a DML's outcome unknown).
        if (step.query_id === undefined) await client.session(this.warehouse, this.ctx.signal);
        state.steps[name] = step;
        await this.ctx.saveCheckpoint(structuredClone(state) as unknown as Checkpoint);
      },
      progress: (p) => this.ctx.progress(p),
      log: this.ctx.log,
    };
    const warehouse = this.warehouse;
    const ops: RemoteRunOps<StepIntent, string, string> = {
      what: `Snowflake query (${name})`,
      read(cp) {
        const r = StepCheckpoint.safeParse(cp);
        if (!r.success) return undefined;
        return {
          intent: { attempt: r.data.attempt, submission: r.data.submission },
          handle: r.data.query_id,
        };
      },
      write(intent, handle) {
        return {
          attempt: intent.attempt,
          submission: intent.submission,
          ...(handle ? { query_id: handle } : {}),
        };
      },
      newIntent: (attempt, previous) => ({ attempt, submission: (previous?.submission ?? 0) + 1 }),
      submit: (intent, signal) =>
        client.submit(
          sql,
          binds,
          { warehouse, queryTag: this.tag(name, intent), timeoutSeconds: this.timeoutSeconds() },
          signal,
        ),
      findByIntent: async (intent, signal) => {
        const found = await this.ex.findByTag(
          `${state.nonce}-${name}-${intent.submission}`,
          warehouse,
          signal,
        );
        if (found === undefined && kind === 'dml') {
          throw new JobError(
            'DML_OUTCOME_UNKNOWN',
            `the DML of step ${name} may have been submitted by a holder that crashed, and Snowflake's query history does not show it: not running it again`,
            {
              retryable: false,
              details: { step: name, query_tag_submission: `${state.nonce}-${name}-${intent.submission}` },
            },
          );
        }
        return found;
      },
      // A network blip or a lost session while polling is retried here (bounded, jittered); the
      // connection of a lost session was already replaced by the client.
      poll: (id, signal) =>
        retry(() => client.status(id, warehouse, signal), {
          maxAttempts: 4,
          baseMs: config.pollMinMs,
          capMs: config.pollMaxMs,
          signal,
          classify: (err) => ({ retryable: err instanceof JobError && err.retryable }),
          onRetry: (err, n) =>
            this.ctx.log.warn('reading the query status failed; retrying', {
              attempt: n,
              error: (err as Error).message,
            }),
        }),
      phase: queryPhase,
      onStatus: (_id, status) => this.ctx.progress({ message: `${name}: ${status.toLowerCase()}` }),
      result: (id, _status, signal) => client.fetch(id, warehouse, signal),
      failure: (id, status, signal) => client.failure(id, status, warehouse, signal),
      cancel: (id, signal) => this.ex.cancelQuery(id, warehouse, signal),
    };

    return (await runRemote(job, stepCtx, ops, {
      pollMinMs: config.pollMinMs,
      pollMaxMs: config.pollMaxMs,
      recancelAfterMs: config.cancelWaitMs,
    })) as FetchedResult;
  }
}

export class SnowflakeExecutor implements Executor {
  readonly name = 'snowflake';
  readonly config: SnowflakeConfig;
  readonly client: SnowflakeClient;
  readonly names: Names;
  private setup: Promise<void> | undefined;

  readonly handlers = {
    datasets_create_table: (job, ctx) => this.run(job, ctx, (r) => this.createTable(r, job)),
    datasets_delete_table: (job, ctx) => this.run(job, ctx, (r) => this.deleteTable(r, job)),
    datasets_truncate_table: (job, ctx) => this.run(job, ctx, (r) => this.truncateTable(r, job)),
    datasets_sample: (job, ctx) => this.run(job, ctx, (r) => this.sample(r, job)),
    datasets_calculate_column_stats: (job, ctx) => this.run(job, ctx, (r) => this.columnStats(r, job)),
    datasets_execute_dml: (job, ctx) => this.run(job, ctx, (r) => this.executeDml(r, job)),
    models_train_classifier: (job, ctx) => this.run(job, ctx, (r) => this.trainClassifier(r, job)),
  } satisfies JobHandlers<(typeof SNOWFLAKE_JOB_TYPES)[number]>;
  readonly jobTypes: readonly string[] = Object.keys(this.handlers);

  constructor(config: SnowflakeConfig, client: SnowflakeClient) {
    this.config = config;
    this.client = client;
    this.names = new Names(config);
  }

  execute(job: JobHandle, ctx: ExecuteContext): Promise<unknown> {
    return runHandler(this.handlers, job, ctx);
  }

  async close(): Promise<void> {
    // The pools close; the server sessions stay (their queries keep running for the next holder).
    await this.client.close();
  }

  private async run(
    job: JobHandle,
    ctx: ExecuteContext,
    fn: (r: JobRun) => Promise<unknown>,
  ): Promise<unknown> {
    const r = new JobRun(this, job, ctx);
    await r.stopStale();
    return fn(r);
  }

  /**
   * Stops a query and confirms it: its status first (a query known to have ended, SUCCESS included,
   * is left alone), else SYSTEM$CANCEL_QUERY, asked again every `cancelWaitMs` until a status says
   * it ended (ABORTING has not). A status that cannot be read does not hold the cancel back. Runs for
   * as long as `signal` lives (the lease); polls at jittered, growing intervals.
   */
  async stopQuery(
    queryId: string,
    warehouse: string,
    signal: AbortSignal,
    ctx: Pick<ExecuteContext, 'log' | 'progress'>,
    what: string,
  ): Promise<string> {
    const { pollMinMs, pollMaxMs, cancelWaitMs } = this.config;
    let askedAt: number | undefined;
    for (let n = 0; ; n++) {
      signal.throwIfAborted();
      try {
        const status = await this.client.status(queryId, warehouse, signal);
        if (queryPhase(status) !== 'active') {
          if (askedAt !== undefined) ctx.log.info(`${what} stopped`, { query_id: queryId, status });
          return status;
        }
      } catch (err) {
        signal.throwIfAborted();
        ctx.log.warn(`could not read the status of the ${what}; asking it to stop anyway`, {
          query_id: queryId,
          error: err instanceof Error ? err.message : String(err),
        });
      }
      if (askedAt === undefined || Date.now() - askedAt >= cancelWaitMs) {
        try {
          await this.cancelQuery(queryId, warehouse, signal);
          askedAt = Date.now();
          ctx.log.info(`stopping the ${what}`, { query_id: queryId });
          ctx.progress({ message: `stopping the ${what}` });
        } catch (err) {
          signal.throwIfAborted();
          ctx.log.warn(`asking the ${what} to stop failed; retrying`, {
            query_id: queryId,
            error: err instanceof Error ? err.message : String(err),
          });
        }
      }
      await sleep(pollMinMs + backoffDelay(n, pollMinMs, pollMaxMs - pollMinMs), signal);
    }
  }

  /** Looks a submission up in the query history by its tag; its query id, or undefined. */
  async findByTag(submission: string, warehouse: string, signal: AbortSignal): Promise<string | undefined> {
    const res = await this.client.run(
      `SELECT query_id AS "QUERY_ID" FROM TABLE(INFORMATION_SCHEMA.QUERY_HISTORY(RESULT_LIMIT => 10000)) WHERE query_tag LIKE ? ORDER BY start_time`,
      [`%"submission":"${submission}"%`],
      { warehouse, queryTag: JSON.stringify({ dpo_lookup: submission }), timeoutSeconds: 300 },
      signal,
    );
    const ids = res.rows.map((r) => String(r.QUERY_ID));
    return ids[0];
  }

  /** SYSTEM$CANCEL_QUERY from any session; the caller confirms by the query's status. */
  async cancelQuery(queryId: string, warehouse: string, signal: AbortSignal): Promise<void> {
    if (!QUERY_ID.test(queryId)) throw new Error(`not a query id: ${queryId}`);
    await this.client.run(
      `SELECT SYSTEM$CANCEL_QUERY(${literal(queryId)})`,
      [],
      { warehouse, queryTag: JSON.stringify({ dpo_cancel: queryId }), timeoutSeconds: 300 },
      signal,
    );
  }

  /**
   * The operator's own schema and statistics table (idempotent DDL, once per process). Shared by the
   * jobs that need it, so it runs under its own bounded signal, not one job's; each job waits for it
   * on its own signal.
   */
  private ensureSetup(r: JobRun): Promise<void> {
    const signal = AbortSignal.timeout(10 * this.config.requestTimeoutMs);
    this.setup ??= (async () => {
      const o = { warehouse: r.warehouse, queryTag: JSON.stringify({ dpo_setup: 1 }), timeoutSeconds: 600 };
      await this.client.run(`CREATE SCHEMA IF NOT EXISTS ${this.names.operatorSchema()}`, [], o, signal);
      await this.client.run(
        `CREATE TABLE IF NOT EXISTS ${qualified(this.names.operator(COLUMN_STATS_TABLE))} (
           dataset_id BIGINT, column_name VARCHAR, stats VARCHAR, job_id VARCHAR, computed_at TIMESTAMP)`,
        [],
        o,
        signal,
      );
    })().catch((err: unknown) => {
      this.setup = undefined;
      throw err;
    });
    return abortable(this.setup, r.ctx.signal);
  }

  private async createTable(r: JobRun, job: JobHandle<InputOf<'datasets_create_table'>>) {
    const t = this.names.dataset(job.companyId, job.input.dataset_id);
    const sql = idempotentCreate(job.input.compiled_sql, t);
    await r.step(
      'schema',
      'idempotent',
      `CREATE SCHEMA IF NOT EXISTS ${ident(t.database)}.${ident(t.schema)}`,
    );
    await r.step('create', 'idempotent', sql);
    return { type: 'datasets_create_table' };
  }

  private async deleteTable(r: JobRun, job: JobHandle<InputOf<'datasets_delete_table'>>) {
    const t = this.names.companyTable(job.companyId, job.input.external_id, 'external_id');
    if (!job.input.is_narrative_managed && !this.config.allowDropUnmanaged) {
      throw new JobError(
        'UNMANAGED_TABLE',
        `${job.input.external_id} is not narrative-managed: the operator does not drop it (DPO_SNOWFLAKE_ALLOW_DROP_UNMANAGED)`,
        { retryable: false },
      );
    }
    await r.step('drop', 'idempotent', `DROP TABLE IF EXISTS ${qualified(t)}`);
    return { type: 'datasets_delete_table' };
  }

  private async truncateTable(r: JobRun, job: JobHandle<InputOf<'datasets_truncate_table'>>) {
    const t = this.names.dataset(job.companyId, job.input.dataset_id);
    await r.step('truncate', 'idempotent', `TRUNCATE TABLE ${qualified(t)}`);
    return { type: 'datasets_truncate_table' };
  }

  private async sample(r: JobRun, job: JobHandle<InputOf<'datasets_sample'>>) {
    const t = this.names.dataset(job.companyId, job.input.dataset_id);
    const size = Math.min(job.input.sample_size ?? this.config.sampleRows, this.config.maxSampleRows);
    const target = this.names.operator(sampleTable(job.input.dataset_id));
    await this.ensureSetup(r);
    // TABLESAMPLE takes no bind: `size` is an integer from the validated input, capped.
    await r.step(
      'sample',
      'idempotent',
      `CREATE OR REPLACE TABLE ${qualified(target)} AS SELECT * FROM ${qualified(t)} TABLESAMPLE (${Math.trunc(size)} ROWS)`,
    );
    const counted = await r.step('count', 'read', `SELECT COUNT(*) AS "N" FROM ${qualified(target)}`);
    const rows = Number(counted.rows[0]?.N ?? 0);
    return { type: 'datasets_sample', rows, table: `${target.schema}.${target.table}` };
  }

  private async columnStats(r: JobRun, job: JobHandle<InputOf<'datasets_calculate_column_stats'>>) {
    const t = this.names.dataset(job.companyId, job.input.dataset_id);
    const table = qualified(t);
    const plan = planStats(job.input, table);
    // Every named column must exist: a statistic that never reads its column (value_count is
    // COUNT(*)) would otherwise "succeed" on a name the table does not have. As the local executor.
    const described = await r.step(
      'columns',
      'read',
      `SELECT COLUMN_NAME AS "COLUMN_NAME" FROM ${ident(t.database)}.INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`,
      [t.schema, t.table],
    );
    // Stored names are exact (an unquoted name was stored upper-case): quote them as they are.
    const present = new Set(
      described.rows.map((row) => `"${String(row.COLUMN_NAME).replaceAll('"', '""')}"`),
    );
    const missing = Object.keys(job.input.enabled_column_stats).filter((c) => !present.has(ident(c)));
    if (present.size === 0) {
      throw new JobError(
        'SNOWFLAKE_OBJECT_NOT_FOUND',
        `table ${t.schema}.${t.table} does not exist or is not visible`,
        {
          retryable: false,
          details: { table: `${t.schema}.${t.table}` },
        },
      );
    }
    if (missing.length > 0) {
      throw invalid(`no such column in dataset ${job.input.dataset_id}: ${missing.join(', ')}`, {
        missing,
        columns: described.rows.map((row) => String(row.COLUMN_NAME)),
      });
    }
    await this.ensureSetup(r);
    const scanned = await r.step('scan', 'read', plan.scan);
    const row = scanned.rows[0];
    if (!row)
      throw new JobError('SNOWFLAKE_PROTOCOL', 'the statistics scan returned no row', { retryable: true });
    const h = planHistograms(plan, row, table, this.config.histogramBins);
    const histograms = h
      ? readHistograms(h, (await r.step('histogram', 'read', h.sql, h.binds)).rows)
      : new Map();
    const { total, columns: raw } = readStats(plan, row, histograms);
    // Doubles under the 64-bit rule, checked against the result schema before anything is written.
    const columns = finishColumnStats(raw);
    const stats = qualified(this.names.operator(COLUMN_STATS_TABLE));
    const names = Object.keys(columns);
    // Replace this dataset's statistics of these columns (both steps are safe to repeat).
    await r.step(
      'clear',
      'idempotent',
      `DELETE FROM ${stats} WHERE dataset_id = ? AND column_name IN (${names.map(() => '?').join(', ')})`,
      [job.input.dataset_id, ...names],
    );
    const binds: Bind[] = [];
    for (const [column, s] of Object.entries(columns))
      binds.push(job.input.dataset_id, column, JSON.stringify(s), job.id);
    await r.step(
      'write',
      'idempotent',
      `INSERT INTO ${stats} (dataset_id, column_name, stats, job_id, computed_at) VALUES ${names
        .map(() => '(?, ?, ?, ?, CURRENT_TIMESTAMP)')
        .join(', ')}`,
      binds,
    );
    return { type: 'datasets_calculate_column_stats', rows: total, columns };
  }

  private async executeDml(r: JobRun, job: JobHandle<InputOf<'datasets_execute_dml'>>) {
    const t = this.names.dataset(job.companyId, job.input.dataset_id);
    const sql = checkedDml(job.input.compiled_sql, t);
    const res = await r.step('dml', 'dml', sql);
    const updated =
      res.updated !== undefined && res.updated >= 0
        ? res.updated
        : Object.values(res.rows[0] ?? {}).reduce<number>((s, v) => s + (Number(v) || 0), 0);
    return { type: 'datasets_execute_dml', affected_rows: updated };
  }

  private async trainClassifier(r: JobRun, job: JobHandle<ModelsTrainClassifierInput>) {
    const c = job.input.config;
    if (c.model_type !== 'classification')
      throw invalid(`model_type ${String(c.model_type)} cannot be trained here`);
    const source = this.names.companyTable(job.companyId, c.training_table, 'training_table');
    const model = { ...source, table: c.output_model_name.toUpperCase() };
    if (c.feature_columns.includes(c.target_column)) throw invalid('target_column is also a feature column');
    const columns = [...c.feature_columns, c.target_column].map(ident).join(', ');
    const query = `SELECT ${columns} FROM ${qualified(source)}`;
    const target = ident(c.target_column).slice(1, -1);
    await r.step(
      'train',
      'idempotent',
      `CREATE OR REPLACE SNOWFLAKE.ML.CLASSIFICATION ${qualified(model)}(INPUT_DATA => SYSTEM$QUERY_REFERENCE(${literal(query)}), TARGET_COLNAME => ${literal(target)})`,
    );
    const metrics = (await r.step('metrics', 'read', `CALL ${qualified(model)}!SHOW_EVALUATION_METRICS()`))
      .rows;
    const confusion = (await r.step('confusion', 'read', `CALL ${qualified(model)}!SHOW_CONFUSION_MATRIX()`))
      .rows;
    const importance = (
      await r.step('importance', 'read', `CALL ${qualified(model)}!SHOW_FEATURE_IMPORTANCE()`)
    ).rows;
    return {
      type: 'models_train_classifier',
      result: classifierResult(c.output_model_name, metrics, confusion, importance, c.feature_columns),
    };
  }
}

const variant = (v: unknown): string => {
  if (typeof v !== 'string') return String(v);
  try {
    const parsed = JSON.parse(v);
    return typeof parsed === 'string' ? parsed : String(parsed);
  } catch {
    return v;
  }
};

/** The classifier's result: accuracy from the confusion matrix, macro F1, metrics and importance. */
export function classifierResult(
  modelName: string,
  metricRows: Record<string, unknown>[],
  confusionRows: Record<string, unknown>[],
  importanceRows: Record<string, unknown>[],
  features: readonly string[] = [],
) {
  // Snowflake names features as it stores them (upper-case for plain names): the job's own names back.
  const named = (f: string) =>
    features.find((x) => x === f) ?? features.find((x) => x.toUpperCase() === f.toUpperCase()) ?? f;
  let total = 0;
  let correct = 0;
  for (const row of confusionRows) {
    const n = Number(row.COUNT ?? 0);
    total += n;
    if (variant(row.ACTUAL_CLASS) === variant(row.PREDICTED_CLASS)) correct += n;
  }
  const perClass: Record<string, Record<string, number>> = {};
  for (const row of metricRows) {
    const cls = variant(row.CLASS);
    perClass[cls] ??= {};
    (perClass[cls] as Record<string, number>)[String(row.ERROR_METRIC).toLowerCase()] = Number(
      row.METRIC_VALUE,
    );
  }
  const f1s = Object.values(perClass)
    .map((m) => m.f1)
    .filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  const clamp = (x: number) => Math.min(1, Math.max(0, x));
  const feature_importance: Record<string, number> = {};
  for (const row of importanceRows) feature_importance[named(String(row.FEATURE))] = Number(row.SCORE);
  return {
    model_name: modelName,
    accuracy: clamp(total === 0 ? 0 : correct / total),
    f1_score: clamp(f1s.length === 0 ? 0 : f1s.reduce((a, b) => a + b, 0) / f1s.length),
    feature_importance,
    metrics: perClass,
    confusion_matrix: confusionRows.map((row) => ({
      actual: variant(row.ACTUAL_CLASS),
      predicted: variant(row.PREDICTED_CLASS),
      count: Number(row.COUNT ?? 0),
    })),
    evaluated_rows: total,
  };
}
