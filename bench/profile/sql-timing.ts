/**
 * A preload for profiling only (`node --import bench/profile/sql-timing.ts`): times every SQLite
 * statement the process runs (node:sqlite's StatementSync run/get/all/iterate and DatabaseSync
 * exec), keyed by its SQL text, and writes `{sql: {calls, ns}}` to $BENCH_SQL_TIMING at exit.
 * A CPU profile attributes the native statement calls to the calling function only, not to the
 * statement; this names the statement. The wrapper costs ~0.1 µs per call (two hrtime reads).
 */
import { writeFileSync } from 'node:fs';
import { DatabaseSync, StatementSync } from 'node:sqlite';

const out = process.env.BENCH_SQL_TIMING;
if (out) {
  const stats = new Map<string, { calls: number; ns: bigint }>();
  const add = (sql: string, ns: bigint) => {
    const key = sql.replace(/\s+/g, ' ').trim();
    const s = stats.get(key);
    if (s) {
      s.calls++;
      s.ns += ns;
    } else stats.set(key, { calls: 1, ns });
  };
  for (const method of ['run', 'get', 'all'] as const) {
    const original = StatementSync.prototype[method] as (...args: unknown[]) => unknown;
    Object.defineProperty(StatementSync.prototype, method, {
      configurable: true,
      writable: true,
      value: function timed(this: StatementSync, ...args: unknown[]) {
        const t0 = process.hrtime.bigint();
        try {
          return original.apply(this, args);
        } finally {
          add(this.sourceSQL, process.hrtime.bigint() - t0);
        }
      },
    });
  }
  const exec = DatabaseSync.prototype.exec;
  DatabaseSync.prototype.exec = function timedExec(this: DatabaseSync, sql: string) {
    const t0 = process.hrtime.bigint();
    try {
      return exec.call(this, sql);
    } finally {
      add(sql, process.hrtime.bigint() - t0);
    }
  };
  process.on('exit', () => {
    const rows = Object.fromEntries(
      [...stats].map(([sql, s]) => [sql, { calls: s.calls, ns: Number(s.ns) }] as const),
    );
    writeFileSync(out, JSON.stringify(rows, null, 1));
  });
}
