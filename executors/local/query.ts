/**
 * nql-forecast (a SELECT with a row cap and a query timeout, answered in the seed's
 * Success / Failure shapes) and the access-rules billing job (a GROUP BY over a materialized view).
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { StatementType } from '@duckdb/node-api';
import type { InputOf } from '../../src/catalogue/index.ts';
import { JobAbort, JobError, type JobHandle, type JobLogger } from '../../src/executor/index.ts';
import type { LocalConfig } from './config.ts';
import { singleStatement, statementSummary } from './datasets.ts';
import { keepInterrupting, num, toJson } from './warehouse.ts';

export async function nqlForecast(
  conn: DuckDBConnection,
  job: JobHandle<InputOf<'nql-forecast'>>,
  config: LocalConfig,
  signal: AbortSignal,
  log?: JobLogger,
): Promise<unknown> {
  const sql = job.input.compiled_sql;
  log?.info('running query', statementSummary(sql));
  let timedOut = false;
  const interrupter = keepInterrupting(conn);
  const timer = setTimeout(() => {
    timedOut = true;
    interrupter.start();
  }, config.queryTimeoutMs);
  try {
    const extracted = await conn.extractStatements(sql);
    if (extracted.count !== 1) {
      return { type: 'Failure', msg: `expected one SELECT statement, got ${extracted.count} statements` };
    }
    const prepared = await extracted.prepare(0);
    if (prepared.statementType !== StatementType.SELECT) {
      return {
        type: 'Failure',
        msg: `only a SELECT can be forecast, got ${StatementType[prepared.statementType]}`,
      };
    }
    const result = await prepared.stream();
    const columns = result.columnNames();
    const rows: unknown[][] = [];
    let truncated = false;
    for await (const chunk of result.yieldRowsJs()) {
      for (const row of chunk) {
        if (rows.length === config.maxResultRows) {
          truncated = true;
          break;
        }
        rows.push(row.map(toJson));
      }
      if (truncated) break;
    }
    log?.info('query answered', { rows: rows.length, truncated });
    return { type: 'Success', result: { columns, rows }, ...(truncated ? { truncated: true } : {}) };
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    if (timedOut) {
      return {
        type: 'Failure',
        msg: `Query execution timed out after ${config.queryTimeoutMs / 1000} seconds`,
      };
    }
    if (err instanceof JobAbort) throw err;
    // DuckDB's own message: syntax, binder, catalog, conversion errors.
    return { type: 'Failure', msg: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
    interrupter.end();
  }
}

export async function billing(
  conn: DuckDBConnection,
  job: JobHandle<InputOf<'materialized_views_collect_access_rules_billing_data'>>,
  signal: AbortSignal,
  log?: JobLogger,
): Promise<unknown> {
  log?.info('running billing query', statementSummary(job.input.compiled_query));
  // A query, not a statement that writes: the billing job only reads the view's rows.
  await singleStatement(conn, job.input.compiled_query, [StatementType.SELECT], 'compiled_query');
  let reader: Awaited<ReturnType<DuckDBConnection['runAndReadAll']>>;
  try {
    reader = await conn.runAndReadAll(job.input.compiled_query);
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw new JobError('SQL_ERROR', `compiled_query: ${(err as Error).message}`, {
      retryable: false,
      cause: err,
    });
  }
  const names = reader.columnNames();
  const need = ['_nio_access_rule_id', 'rows', '_nio_price_per_row'];
  const missing = need.filter((n) => !names.includes(n));
  if (missing.length > 0) {
    throw new JobError(
      'INVALID_INPUT',
      `compiled_query must return ${need.join(', ')}; missing ${missing.join(', ')} (got ${names.join(', ')})`,
      { retryable: false },
    );
  }
  // Rows no access rule governs are not billed.
  const rows = reader.getRowObjectsJS().filter((r) => r._nio_access_rule_id !== null);
  const sources = rows.map((r) => ({
    access_rule_id: num(r._nio_access_rule_id),
    rows: num(r.rows),
    price_per_row: { micro_cents_usd: num(r._nio_price_per_row) },
  }));
  sources.sort((a, b) => a.access_rule_id - b.access_rule_id);
  log?.info('billing collected', { access_rules: sources.length });
  return { type: 'materialized_views_collect_access_rules_billing_data', sources };
}
