/**
 * The `local` executor as the daemon holds it: DuckDB (a native module of ~45 MB resident once
 * loaded and opened) loads on the first job, not at startup, so an idle daemon serving `local` stays
 * small. Startup takes the data plane's lock file instead (lock.ts), so a second daemon on the same
 * directory still fails at startup. Everything else is the {@link LocalExecutor}'s, once loaded.
 * Once loaded, DuckDB stays (its memory is bounded by DPO_LOCAL_MEMORY_LIMIT).
 */
import { join, resolve } from 'node:path';
import type { ExecuteContext, Executor, JobHandle } from '../../src/executor/index.ts';
import type { LocalConfig } from './config.ts';
import type { LocalExecutor } from './executor.ts';
import { LOCAL_JOB_TYPES } from './job-types.ts';
import { lockDataPlane } from './lock.ts';

export class LazyLocalExecutor implements Executor {
  readonly name = 'local';
  /** The types local declares (index.ts); the loaded executor's handlers are typed from the same list. */
  readonly jobTypes: readonly string[] = LOCAL_JOB_TYPES;
  readonly config: LocalConfig;
  private loading: Promise<LocalExecutor> | undefined;
  private unlock: (() => void) | undefined;

  constructor(config: LocalConfig) {
    this.config = config;
  }

  /** Where the warehouse is (or will be), without opening it. */
  get path(): string {
    return join(resolve(this.config.dir), 'warehouse.duckdb');
  }

  /** Whether DuckDB has been loaded (a job ran, or the demo data was seeded). */
  get loaded(): boolean {
    return this.loading !== undefined;
  }

  /** Takes the data plane's lock; DuckDB is not loaded. */
  async start(): Promise<void> {
    this.unlock ??= lockDataPlane(resolve(this.config.dir), this.path);
  }

  private load(): Promise<LocalExecutor> {
    this.loading ??= import('./executor.ts').then(async ({ LocalExecutor }) => {
      const e = new LocalExecutor(this.config);
      await e.start();
      return e;
    });
    // A failed open (the warehouse held by another process) is tried again by the next job.
    this.loading.catch(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  async execute(job: JobHandle, ctx: ExecuteContext): Promise<unknown> {
    return (await this.load()).execute(job, ctx);
  }

  /** Creates the demo datasets (the dev command); loads DuckDB. */
  async seedDemoData(rows: number, signal?: AbortSignal) {
    return (await this.load()).seedDemoData(rows, signal);
  }

  /** Runs a query on the warehouse outside any job (the dev command's summary); loads DuckDB. */
  async query(sql: string): Promise<Record<string, unknown>[]> {
    return (await this.load()).query(sql);
  }

  async close(): Promise<void> {
    const loading = this.loading;
    this.loading = undefined;
    const e = await loading?.catch(() => undefined);
    await e?.close();
    this.unlock?.();
    this.unlock = undefined;
  }
}
