/**
 * One SQL tokenizer for the dialects the operator checks statements in: Snowflake's and DuckDB's.
 * It tells apart what can hide a `;` (string literals, quoted identifiers, comments) from the
 * statement's own structure, so a one-statement check or a write-target check reads the statement
 * as the engine will. It does not parse: it splits text into tokens and statements.
 *
 * The dialects (each rule from the engine's documentation):
 * - Both: `'…'` strings with `''` for a quote; `"…"` identifiers with `""` for a quote; `--` line
 *   comments; `/* … *\/` block comments.
 * - Snowflake (docs: sql-reference/data-types-text "String & binary constants", "Dollar-quoted
 *   string constants"; sql-reference/comments-in-sql): a backslash escapes the next character inside
 *   `'…'`; `$$…$$` strings (no tag); `//` starts a line comment too. Whether Snowflake nests block
 *   comments is not documented: {@link oneStatement} accepts a text only when both readings agree.
 * - DuckDB (docs: sql/dialect/keywords-and-identifiers, sql/data_types/literal_types): `E'…'`
 *   strings take backslash escapes, plain ones do not; `$tag$…$tag$` strings; block comments nest
 *   (its parser is PostgreSQL's).
 *
 * An unterminated string, identifier or comment is an error, never "the rest of the text".
 */

/** How a dialect writes literals and comments. */
export interface SqlDialect {
  readonly name: string;
  /** `'…'` takes backslash escapes: always, or only in an `E'…'` string. */
  readonly backslash: 'always' | 'e-strings';
  /** `$$…$$` only, or `$tag$…$tag$` too. */
  readonly dollar: 'plain' | 'tagged';
  /** `//` starts a line comment. */
  readonly slashComments: boolean;
  /** `/* /* *\/ *\/` is one comment. */
  readonly nestedComments: boolean;
}

export const SNOWFLAKE: SqlDialect = {
  name: 'snowflake',
  backslash: 'always',
  dollar: 'plain',
  slashComments: true,
  nestedComments: false,
};

export const DUCKDB: SqlDialect = {
  name: 'duckdb',
  backslash: 'e-strings',
  dollar: 'tagged',
  slashComments: false,
  nestedComments: true,
};

export type SqlTokenKind = 'word' | 'quoted' | 'string' | 'comment' | 'punct' | 'other';

export interface SqlToken {
  kind: SqlTokenKind;
  /** The text as written; for `quoted`, the identifier with its quotes removed and `""` undone. */
  text: string;
  start: number;
  end: number;
}

/** A text the tokenizer cannot read to its end (an unterminated literal or comment). */
export class SqlTokenError extends Error {
  readonly what: string;
  constructor(what: string) {
    super(`unterminated ${what}`);
    this.what = what;
  }
}

const WORD_START = /[A-Za-z_\u0080-\uffff]/;
const WORD = /[A-Za-z0-9_$\u0080-\uffff]/;
const TAG = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/;

/** The tokens of `sql` (white space left out). Throws {@link SqlTokenError} on an unterminated one. */
export function tokenize(sql: string, dialect: SqlDialect): SqlToken[] {
  const out: SqlToken[] = [];
  const n = sql.length;
  let i = 0;
  const push = (kind: SqlTokenKind, start: number, text = sql.slice(start, i)) =>
    out.push({ kind, text, start, end: i });
  const lineComment = () => {
    const e = sql.indexOf('\n', i);
    i = e === -1 ? n : e + 1;
  };
  const quotedString = (escapes: boolean) => {
    // i is at the opening quote.
    i++;
    for (;;) {
      if (i >= n) throw new SqlTokenError('string');
      const c = sql[i];
      if (escapes && c === '\\') i += 2;
      else if (c === "'" && sql[i + 1] === "'") i += 2;
      else if (c === "'") {
        i++;
        return;
      } else i++;
    }
  };
  while (i < n) {
    const ch = sql[i] as string;
    const start = i;
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '-' && sql[i + 1] === '-') {
      lineComment();
      push('comment', start);
    } else if (dialect.slashComments && ch === '/' && sql[i + 1] === '/') {
      lineComment();
      push('comment', start);
    } else if (ch === '/' && sql[i + 1] === '*') {
      let depth = 1;
      i += 2;
      while (depth > 0) {
        if (i >= n) throw new SqlTokenError('comment');
        if (dialect.nestedComments && sql[i] === '/' && sql[i + 1] === '*') {
          depth++;
          i += 2;
        } else if (sql[i] === '*' && sql[i + 1] === '/') {
          depth--;
          i += 2;
        } else i++;
      }
      push('comment', start);
    } else if (dialect.backslash === 'e-strings' && (ch === 'e' || ch === 'E') && sql[i + 1] === "'") {
      i++;
      quotedString(true);
      push('string', start);
    } else if (ch === "'") {
      quotedString(dialect.backslash === 'always');
      push('string', start);
    } else if (ch === '"') {
      i++;
      let text = '';
      for (;;) {
        if (i >= n) throw new SqlTokenError('quoted identifier');
        if (sql[i] === '"' && sql[i + 1] === '"') {
          text += '"';
          i += 2;
        } else if (sql[i] === '"') {
          i++;
          break;
        } else text += sql[i++];
      }
      push('quoted', start, text);
    } else if (
      ch === '$' &&
      (dialect.dollar === 'tagged' ? TAG.test(sql.slice(i, i + 256)) : sql[i + 1] === '$')
    ) {
      const tag =
        dialect.dollar === 'tagged' ? (TAG.exec(sql.slice(i, i + 256)) as RegExpExecArray)[0] : '$$';
      const e = sql.indexOf(tag, i + tag.length);
      if (e === -1) throw new SqlTokenError('dollar-quoted string');
      i = e + tag.length;
      push('string', start);
    } else if (WORD_START.test(ch)) {
      while (i < n && WORD.test(sql[i] as string)) i++;
      push('word', start);
    } else if ('().,;'.includes(ch)) {
      i++;
      push('punct', start);
    } else {
      i++;
      push('other', start);
    }
  }
  return out;
}

/**
 * The statements of `sql`: the text of each, from its first token to its last (a `;` and anything
 * only comments or white space between two `;` is left out).
 */
export function splitStatements(sql: string, dialect: SqlDialect): string[] {
  const out: string[] = [];
  let first: SqlToken | undefined;
  let last: SqlToken | undefined;
  const flush = () => {
    if (first && last) out.push(sql.slice(first.start, last.end));
    first = undefined;
    last = undefined;
  };
  for (const t of tokenize(sql, dialect)) {
    if (t.kind === 'punct' && t.text === ';') flush();
    else if (t.kind !== 'comment') {
      first ??= t;
      last = t;
    }
  }
  flush();
  return out;
}

/** Why a text is not exactly one statement. */
export class NotOneStatement extends Error {}

/**
 * The one statement of `sql` (a trailing `;` and comments around it dropped). Throws
 * {@link NotOneStatement} when there is none or more than one, or when the text cannot be read to
 * its end. For a dialect whose nesting of block comments is not documented (Snowflake), both
 * readings must find the same single statement.
 */
export function oneStatement(sql: string, dialect: SqlDialect): string {
  const readings = dialect === SNOWFLAKE ? [dialect, { ...dialect, nestedComments: true }] : [dialect];
  let found: string | undefined;
  for (const d of readings) {
    let parts: string[];
    try {
      parts = splitStatements(sql, d);
    } catch (err) {
      if (err instanceof SqlTokenError) throw new NotOneStatement(`the SQL has an ${err.message}`);
      throw err;
    }
    if (parts.length === 0) throw new NotOneStatement('the SQL is empty');
    if (parts.length > 1) throw new NotOneStatement(`the SQL holds ${parts.length} statements, not one`);
    if (found !== undefined && found !== parts[0]) {
      throw new NotOneStatement('the SQL reads differently depending on how its block comments nest');
    }
    found = parts[0];
  }
  return found as string;
}

/** The text with every literal, quoted identifier and comment blanked out, offsets kept. */
export function skeleton(sql: string, dialect: SqlDialect): string {
  let out = '';
  let at = 0;
  for (const t of tokenize(sql, dialect)) {
    if (t.kind !== 'string' && t.kind !== 'quoted' && t.kind !== 'comment') continue;
    out += sql.slice(at, t.start) + ' '.repeat(t.end - t.start);
    at = t.end;
  }
  return out + sql.slice(at);
}
