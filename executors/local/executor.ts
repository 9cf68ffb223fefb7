/**
 * The local data plane: every SQL-shaped job type on an embedded DuckDB warehouse.
 * Each job runs on a connection of its own; a cancel (or the job timeout, or shutdown) interrupts
 * the query that is running. Nothing here is remote, so there is no checkpoint to reattach to: a job
 * re-delivered after a crash runs again, and every write is recorded with the job id (and chunk) in
 * the write's own transaction (effects.ts): a re-delivery answers from that record, never writing
 * twice. A job's SQL writes only its own dataset (write-target.ts).
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import {
  type ExecuteContext,
  type Executor,
  type JobHandle,
  type JobHandlers,
  runHandler,
} from '../../src/executor/index.ts';
import type { LocalConfig } from './config.ts';
import { createTable, deleteTable, executeDml, sample, truncateTable } from './datasets.ts';
import { estimate } from './forecast.ts';
import type { LOCAL_JOB_TYPES } from './index.ts';
import { materializeView } from './materialize.ts';
import { billing, nqlForecast } from './query.ts';
import { calculateColumnStats } from './stats.ts';
import { seedDemoData } from './synthetic.ts';
import { all, Warehouse } from './warehouse.ts';

/** A job type's work on a connection of its own (the input was validated by the runner). */
type SqlJob<I> = (conn: DuckDBConnection, job: JobHandle<I>, ctx: ExecuteContext) => Promise<unknown>;

export class LocalExecutor implements Executor {
  readonly name = 'local';
  readonly config: LocalConfig;
  /** One handler per declared job type (index.ts), each on a connection of its own. */
  readonly handlers = {
    datasets_create_table: this.sql((conn, job, ctx) => createTable(conn, job, ctx)),
    datasets_delete_table: this.sql((conn, job, ctx) => deleteTable(conn, job, ctx)),
    datasets_truncate_table: this.sql((conn, job, ctx) => truncateTable(conn, job, ctx)),
    datasets_execute_dml: this.sql((conn, job, ctx) => executeDml(conn, job, ctx)),
    datasets_sample: this.sql((conn, job, ctx) => sample(conn, job, this.config, ctx)),
    datasets_calculate_column_stats: this.sql((conn, job, ctx) =>
      calculateColumnStats(conn, job, this.config, ctx),
    ),
    'nql-forecast': this.sql((conn, job, ctx) => nqlForecast(conn, job, this.config, ctx.signal, ctx.log)),
    'materialize-view': this.sql((conn, job, ctx) => materializeView(conn, job, ctx, this.config)),
    materialized_views_collect_access_rules_billing_data: this.sql((conn, job, ctx) =>
      billing(conn, job, ctx.signal, ctx.log),
    ),
    forecast: this.sql((conn, job, ctx) => estimate(conn, job, 'sampled', ctx)),
    'forecast-internal': this.sql((conn, job, ctx) => estimate(conn, job, 'exact', ctx)),
    costs: this.sql((conn, job, ctx) => estimate(conn, job, 'costs', ctx)),
  } satisfies JobHandlers<(typeof LOCAL_JOB_TYPES)[number]>;
  readonly jobTypes: readonly string[] = Object.keys(this.handlers);
  private warehouse: Warehouse | undefined;
  private opening: Promise<void> | undefined;

  constructor(config: LocalConfig) {
    this.config = config;
  }

  /** Opens the warehouse (creating it on first use) and locks DuckDB's external access. */
  async start(): Promise<void> {
    // One open, however many callers race here (the daemon, a job, the dev command's seeding).
    this.opening ??= Warehouse.open(this.config).then((w) => {
      this.warehouse = w;
    });
    try {
      await this.opening;
    } catch (err) {
      this.opening = undefined; // a later start may try again (e.g. once another process let go)
      throw err;
    }
  }

  get path(): string | undefined {
    return this.warehouse?.path;
  }

  execute(job: JobHandle, ctx: ExecuteContext): Promise<unknown> {
    return runHandler(this.handlers, job, ctx);
  }

  /** A handler that runs `fn` on a connection of its own, interrupted when the job's signal aborts. */
  private sql<I>(fn: SqlJob<I>): (job: JobHandle<I>, ctx: ExecuteContext) => Promise<unknown> {
    return async (job, ctx) => {
      await this.start();
      return (this.warehouse as Warehouse).withConnection(ctx.signal, (conn) => fn(conn, job, ctx));
    };
  }

  /** Creates the demo datasets (synthetic.ts) unless they are there already. */
  async seedDemoData(rows: number, signal: AbortSignal = new AbortController().signal) {
    await this.start();
    return (this.warehouse as Warehouse).withConnection(signal, (conn) => seedDemoData(conn, rows));
  }

  /** Runs a query on the warehouse outside any job (tests, the dev command's summary). */
  async query(sql: string): Promise<Record<string, unknown>[]> {
    await this.start();
    return (this.warehouse as Warehouse).withConnection(new AbortController().signal, (conn) =>
      all(conn, sql),
    );
  }

  async close(): Promise<void> {
    await this.opening?.catch(() => undefined);
    this.warehouse?.close();
    this.warehouse = undefined;
    this.opening = undefined;
  }
}
