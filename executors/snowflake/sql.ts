/**
 * The SQL the operator writes itself: identifiers quoted, values bound (`?`), integers inlined only
 * where Snowflake takes no bind (TABLESAMPLE). Names follow Snowflake's rule for unquoted
 * identifiers: a plain name (`company_56`, `age`) means its upper-case form, so it is written
 * upper-case and quoted; anything else is quoted exactly as given.
 */
import { JobError } from '../../src/executor/index.ts';
import {
  NotOneStatement,
  SNOWFLAKE,
  oneStatement as singleStatement,
} from '../../src/executor/sql-tokenizer.ts';
import type { SnowflakeConfig } from './config.ts';

const invalid = (message: string, details?: unknown) =>
  new JobError('INVALID_INPUT', message, { retryable: false, details });

const PLAIN = /^[A-Za-z_][A-Za-z0-9_$]*$/;

/** A quoted identifier; a plain name is Snowflake's upper-case form of it. */
export function ident(name: string): string {
  if (name.length === 0 || name.length > 255 || name.includes(String.fromCharCode(0)))
    throw invalid(`not an identifier: ${JSON.stringify(name)}`);
  const n = PLAIN.test(name) ? name.toUpperCase() : name;
  return `"${n.replaceAll('"', '""')}"`;
}

/** A SQL string literal (only for text Snowflake takes no bind for, e.g. SYSTEM$QUERY_REFERENCE). */
export function literal(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}

function fill(pattern: string, values: Record<string, number>): string {
  return pattern.replace(/\{([a-z_]+)\}/g, (_, k: string) => String(values[k]));
}

export interface TableName {
  database: string;
  schema: string;
  table: string;
}

export const qualified = (t: TableName) => `${ident(t.database)}.${ident(t.schema)}.${ident(t.table)}`;

/** Where names live: a company's schema, a dataset's table, the operator's own schema. */
export class Names {
  readonly config: SnowflakeConfig;
  constructor(config: SnowflakeConfig) {
    this.config = config;
  }

  companySchema(companyId: number): string {
    return fill(this.config.datasetSchema, { company_id: integer(companyId, 'company id') }).toUpperCase();
  }

  dataset(companyId: number, datasetId: number): TableName {
    const values = {
      company_id: integer(companyId, 'company id'),
      dataset_id: integer(datasetId, 'dataset id'),
    };
    return {
      database: this.config.database.toUpperCase(),
      schema: this.companySchema(companyId),
      table: fill(this.config.datasetTable, values).toUpperCase(),
    };
  }

  operator(table: string): TableName {
    return {
      database: this.config.database.toUpperCase(),
      schema: this.config.operatorSchema.toUpperCase(),
      table,
    };
  }

  operatorSchema(): string {
    return `${ident(this.config.database)}.${ident(this.config.operatorSchema)}`;
  }

  /**
   * A table a job names (`schema.table`, `db.schema.table` or `table`), which must be in the
   * company's schema (of the configured database).
   */
  companyTable(companyId: number, name: string, what: string): TableName {
    const parts = name.split('.');
    if (parts.length < 1 || parts.length > 3 || !parts.every((p) => PLAIN.test(p))) {
      throw invalid(
        `${what} must be [database.][schema.]table of plain identifiers, got ${JSON.stringify(name)}`,
      );
    }
    const up = parts.map((p) => p.toUpperCase());
    const table = up[up.length - 1] as string;
    const schema = up.length >= 2 ? (up[up.length - 2] as string) : this.companySchema(companyId);
    const database = up.length === 3 ? (up[0] as string) : this.config.database.toUpperCase();
    if (schema !== this.companySchema(companyId) || database !== this.config.database.toUpperCase()) {
      throw new JobError(
        'FORBIDDEN',
        `${what} ${name} is not in company ${companyId}'s schema ${this.companySchema(companyId)}`,
        {
          retryable: false,
        },
      );
    }
    return { database, schema, table };
  }
}

function integer(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 0) throw invalid(`${what} must be a non-negative integer`);
  return n;
}

/**
 * Exactly one statement (a trailing `;` and comments around it allowed), returned alone. Read with
 * the shared tokenizer in Snowflake's dialect (strings with `''` and backslash escapes, `$$` strings,
 * quoted identifiers, `--`, `//` and block comments), so a `;` hidden from a naive reader is found.
 */
export function oneStatement(sql: string, what: string): string {
  try {
    return singleStatement(sql, SNOWFLAKE);
  } catch (err) {
    if (err instanceof NotOneStatement)
      throw invalid(`${what} must be exactly one statement: ${err.message}`);
    throw err;
  }
}

/** How a compiled statement names a table: `a.b`, `"A"."B"`, `db.a.b`, compared upper-case. */
const NAME = String.raw`(?:"[^"]+"|[A-Za-z_][A-Za-z0-9_$]*)(?:\s*\.\s*(?:"[^"]+"|[A-Za-z_][A-Za-z0-9_$]*)){0,2}`;
export function normalizeName(raw: string): string[] {
  return raw.split(/\s*\.\s*/).map((p) => (p.startsWith('"') ? p.slice(1, -1) : p.toUpperCase()));
}

export function sameTable(raw: string, t: TableName): boolean {
  const parts = normalizeName(raw);
  const want = [t.database, t.schema, t.table];
  return parts.length >= 2 && parts.every((p, i) => p === want[want.length - parts.length + i]);
}

/**
 * The control plane's compiled CREATE TABLE, checked to create this dataset's own table, and made
 * idempotent: `CREATE TABLE x` becomes `CREATE TABLE IF NOT EXISTS x` (a repeated delivery, or a
 * resubmission after a crash, finds the table and changes nothing).
 */
export function idempotentCreate(sql: string, t: TableName): string {
  const body = oneStatement(sql, 'compiled_sql');
  const m = new RegExp(
    String.raw`^\s*CREATE\s+(OR\s+REPLACE\s+)?(?:TRANSIENT\s+)?TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(${NAME})`,
    'i',
  ).exec(body);
  if (!m || !sameTable(m[3] as string, t)) {
    throw invalid(`compiled_sql must be a CREATE TABLE of ${t.schema}.${t.table}`);
  }
  if (m[1] || m[2]) return body;
  return body.replace(
    /^\s*CREATE\s+((?:TRANSIENT\s+)?)TABLE\s+/i,
    (_all, transient: string) => `CREATE ${transient}TABLE IF NOT EXISTS `,
  );
}

/** The compiled DML, checked: one INSERT, UPDATE, DELETE or MERGE whose target is this dataset's table. */
export function checkedDml(sql: string, t: TableName): string {
  const body = oneStatement(sql, 'compiled_sql');
  const m = new RegExp(
    String.raw`^\s*(?:INSERT\s+(?:OVERWRITE\s+)?INTO|UPDATE|DELETE\s+FROM|MERGE\s+INTO)\s+(${NAME})`,
    'i',
  ).exec(body);
  if (!m) throw invalid('compiled_sql must be one INSERT, UPDATE, DELETE or MERGE');
  if (!sameTable(m[1] as string, t)) throw invalid(`compiled_sql must write ${t.schema}.${t.table}`);
  return body;
}
