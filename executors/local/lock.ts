/**
 * One daemon per local data plane, known at startup without loading DuckDB: a lock file
 * (`daemon.lock`, the holder's pid and host) beside the warehouse. DuckDB's own file lock stays the
 * final guard (the warehouse opens on the first job, lazy.ts); this one lets a second daemon say so
 * and exit at startup instead of failing its first job.
 *
 * A lock whose holder is gone (same host, pid not alive) is stale and taken over. A lock written by
 * another host cannot be checked from here (a shared volume): it is left alone and DuckDB decides at
 * first use.
 */
import { mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

interface Holder {
  pid: number;
  host: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

function read(file: string): Holder | undefined {
  try {
    const h = JSON.parse(readFileSync(file, 'utf8')) as Partial<Holder>;
    return typeof h.pid === 'number' && typeof h.host === 'string' ? { pid: h.pid, host: h.host } : undefined;
  } catch {
    return undefined; // absent or torn: nobody holds it
  }
}

/**
 * Takes the lock of the data plane in `dir` for this process; throws when a live process on this host
 * holds it. `what` names the data plane in the message (the warehouse's path). Returns the release.
 */
export function lockDataPlane(dir: string, what: string): () => void {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'daemon.lock');
  const me: Holder = { pid: process.pid, host: hostname() };
  const held = read(file);
  if (held && held.host === me.host && held.pid !== me.pid && alive(held.pid)) {
    throw new Error(
      `the local data plane at ${what} is in use by another process (pid ${held.pid}; one daemon per DPO_LOCAL_DIR)`,
    );
  }
  if (held && held.host !== me.host) return () => undefined;
  const tmp = `${file}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify(me));
  renameSync(tmp, file);
  return () => {
    const now = read(file);
    if (now?.pid === me.pid && now.host === me.host) {
      try {
        unlinkSync(file);
      } catch {
        // already gone
      }
    }
  };
}
