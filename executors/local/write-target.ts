/**
 * DML write isolation: a job's statement may write only its own dataset's table.
 *
 * How it is enforced (before anything runs):
 * 1. The shared SQL tokenizer (src/executor/sql-tokenizer.ts: strings, E-strings, dollar quotes,
 *    quoted identifiers, nested comments, parentheses)
 *    finds the statement's write target: the qualified name after the top-level `INSERT [OR …] INTO`,
 *    `UPDATE`, `DELETE FROM` or `MERGE INTO`, past an optional `WITH …` clause. DuckDB statements have
 *    exactly one write target (its CTEs cannot modify data).
 * 2. DuckDB's own parser and binder confirm it: the statement is prepared again with that name
 *    replaced by a probe table that does not exist, and binding must fail on exactly that probe (the
 *    binder binds the write target before anything else). Anything else (the name was not the
 *    target, the statement is not what the lexer read) is refused.
 * 3. The target must be `company_<c>.dataset_<d>` of the job (optionally prefixed by the warehouse's
 *    database name), compared as DuckDB compares identifiers (case-insensitively). Unqualified names
 *    are refused (they would resolve outside the company's schema). `nextval`/`setval` (writes to a
 *    sequence of the warehouse) are refused anywhere in the statement.
 */
import { randomBytes } from 'node:crypto';
import type { DuckDBConnection } from '@duckdb/node-api';
import { JobError } from '../../src/executor/index.ts';
import {
  DUCKDB,
  type SqlToken,
  SqlTokenError,
  tokenize as tokenizeSql,
} from '../../src/executor/sql-tokenizer.ts';

type Token =
  | { kind: 'word'; text: string; start: number; end: number }
  | { kind: 'quoted'; text: string; start: number; end: number }
  | { kind: 'punct'; text: string; start: number; end: number }
  | { kind: 'other'; text: string; start: number; end: number };

const forbidden = (message: string) =>
  new JobError('FORBIDDEN_WRITE', message, { retryable: false, details: { rule: 'dml-write-isolation' } });

/**
 * Tokens of a SQL text (the shared tokenizer, DuckDB's dialect), literals kept as `other` and
 * comments skipped. Throws on an unterminated literal or comment.
 */
export function tokenize(sql: string): Token[] {
  let tokens: SqlToken[];
  try {
    tokens = tokenizeSql(sql, DUCKDB);
  } catch (err) {
    if (err instanceof SqlTokenError) throw forbidden(`compiled_sql has an ${err.message}`);
    throw err;
  }
  return tokens
    .filter((t) => t.kind !== 'comment')
    .map((t) => (t.kind === 'string' ? { ...t, kind: 'other' } : t) as Token);
}

export interface WriteTarget {
  /** The name's parts as DuckDB reads them (quotes removed), e.g. ['company_1', 'dataset_2']. */
  parts: string[];
  /** Where the name is in the SQL text. */
  start: number;
  end: number;
}

const isWord = (t: Token | undefined, ...words: string[]) =>
  t?.kind === 'word' && words.includes(t.text.toUpperCase());

/** The write target of one INSERT / UPDATE / DELETE / MERGE statement, as the lexer reads it. */
export function findWriteTarget(sql: string): WriteTarget {
  const tokens = tokenize(sql);
  for (const t of tokens) {
    if (isWord(t, 'NEXTVAL', 'SETVAL')) {
      throw forbidden('compiled_sql may not call nextval/setval (a write to a sequence of the warehouse)');
    }
  }
  let depth = 0;
  let i = 0;
  let verb: string | undefined;
  for (; i < tokens.length; i++) {
    const t = tokens[i] as Token;
    if (t.kind === 'punct' && t.text === '(') depth++;
    else if (t.kind === 'punct' && t.text === ')') depth--;
    else if (depth === 0 && isWord(t, 'INSERT', 'UPDATE', 'DELETE', 'MERGE')) {
      verb = t.text.toUpperCase();
      break;
    }
  }
  if (verb === undefined) throw forbidden('compiled_sql: no INSERT, UPDATE, DELETE or MERGE found');
  i++;
  if (verb === 'INSERT') {
    if (isWord(tokens[i], 'OR')) i += 2; // OR REPLACE | OR IGNORE
    if (!isWord(tokens[i], 'INTO')) throw forbidden('compiled_sql: INSERT without INTO');
    i++;
  } else if (verb === 'DELETE') {
    if (!isWord(tokens[i], 'FROM')) throw forbidden('compiled_sql: DELETE without FROM');
    i++;
  } else if (verb === 'MERGE') {
    if (!isWord(tokens[i], 'INTO')) throw forbidden('compiled_sql: MERGE without INTO');
    i++;
  }
  const parts: string[] = [];
  const first = tokens[i];
  if (!first || (first.kind !== 'word' && first.kind !== 'quoted')) {
    throw forbidden('compiled_sql: the write target is not a table name');
  }
  let end = first.end;
  parts.push(first.text);
  i++;
  while (tokens[i]?.kind === 'punct' && tokens[i]?.text === '.') {
    const next = tokens[i + 1];
    if (!next || (next.kind !== 'word' && next.kind !== 'quoted')) {
      throw forbidden('compiled_sql: the write target is not a table name');
    }
    parts.push(next.text);
    end = next.end;
    i += 2;
  }
  return { parts, start: first.start, end };
}

/**
 * Refuses (FORBIDDEN_WRITE, not retryable) a DML statement whose write target is not the job's own
 * table `schema.table`. Runs nothing: the statement is only prepared (with a probe name).
 */
export async function assertWritesOnly(
  conn: DuckDBConnection,
  sql: string,
  own: { schema: string; table: string },
): Promise<void> {
  const target = findWriteTarget(sql);
  const probe = `__dpo_write_probe_${randomBytes(6).toString('hex')}__`;
  const probed = `${sql.slice(0, target.start)}${own.schema}.${probe}${sql.slice(target.end)}`;
  let confirmed = false;
  try {
    const extracted = await conn.extractStatements(probed);
    if (extracted.count === 1) await extracted.prepare(0);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    confirmed = /Catalog Error/i.test(message) && message.includes(`${probe} does not exist`);
  }
  if (!confirmed) {
    throw forbidden('compiled_sql: its write target could not be confirmed; the statement is refused');
  }
  const lower = target.parts.map((p) => p.toLowerCase());
  const db = (await conn.runAndReadAll('SELECT current_database() AS db')).getRowsJS()[0]?.[0];
  const name =
    lower.length === 3 && lower[0] === String(db).toLowerCase()
      ? lower.slice(1)
      : lower.length === 2
        ? lower
        : undefined;
  if (name === undefined || name[0] !== own.schema.toLowerCase() || name[1] !== own.table.toLowerCase()) {
    throw forbidden(
      `compiled_sql writes ${target.parts.join('.')}; a job may write only its own dataset's table ${own.schema}.${own.table}`,
    );
  }
}
