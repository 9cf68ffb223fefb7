/**
 * The local data plane: every SQL-shaped job type on an embedded DuckDB warehouse (DESIGN §2).
 * Each job runs on a connection of its own; a cancel (or the job timeout, or shutdown) interrupts
 * the query that is running. Nothing here is remote, so there is no checkpoint to reattach to: a job
 * re-delivered after a crash runs again, and the writes are idempotent per job (and per chunk).
 */
import type { CostsInput, ForecastInput } from '../../src/catalogue/forecasting.ts';
import type { MaterializeViewInput } from '../../src/catalogue/materialization.ts';
import type { ExecuteContext, Executor, JobHandle } from '../../src/executor/index.ts';
import type { LocalConfig } from './config.ts';
import { createTable, deleteTable, executeDml, sample, truncateTable } from './datasets.ts';
import { estimate } from './forecast.ts';
import { LOCAL_JOB_TYPES } from './job-types.ts';
import { materializeView } from './materialize.ts';
import { billing, nqlForecast } from './query.ts';
import { calculateColumnStats, type StatsInput } from './stats.ts';
import { seedDemoData } from './synthetic.ts';
import { all, Warehouse } from './warehouse.ts';

export class LocalExecutor implements Executor {
  readonly name = 'local';
  readonly jobTypes = LOCAL_JOB_TYPES;
  readonly config: LocalConfig;
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

  async execute(job: JobHandle, ctx: ExecuteContext): Promise<unknown> {
    await this.start();
    const wh = this.warehouse as Warehouse;
    const { signal } = ctx;
    const cfg = this.config;
    return wh.withConnection(signal, async (conn) => {
      // The input was validated against the type's schema by the runner.
      const j = job as JobHandle<never>;
      switch (job.type) {
        case 'datasets_create_table':
          return createTable(conn, j, signal);
        case 'datasets_delete_table':
          return deleteTable(conn, j);
        case 'datasets_truncate_table':
          return truncateTable(conn, j, signal);
        case 'datasets_execute_dml':
          return executeDml(conn, j, signal);
        case 'datasets_sample':
          return sample(conn, j, cfg, signal);
        case 'datasets_calculate_column_stats':
          return calculateColumnStats(conn, job as JobHandle<StatsInput>, cfg, signal);
        case 'nql-forecast':
          return nqlForecast(conn, j, cfg, signal);
        case 'materialize-view':
          return materializeView(conn, job as JobHandle<MaterializeViewInput>, ctx, cfg);
        case 'materialized_views_collect_access_rules_billing_data':
          return billing(conn, j, signal);
        case 'forecast':
          return estimate(conn, job as JobHandle<ForecastInput>, 'sampled', ctx);
        case 'forecast-internal':
          return estimate(conn, job as JobHandle<ForecastInput>, 'exact', ctx);
        case 'costs':
          return estimate(conn, job as JobHandle<CostsInput>, 'costs', ctx);
        default:
          throw new Error(`the local executor does not serve '${job.type}'`);
      }
    });
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
