/**
 * Turns a V8 CPU profile (`node --cpu-prof`) of the control plane, plus the statement timings of
 * sql-timing.ts, into a breakdown per job: inclusive and self time of each function (mapped back to
 * its TypeScript source through the build's source maps), the time of each named part of the hot
 * path, and each SQLite statement's cost. `node bench/profile/analyze.ts PROFILE [SQL.json] JOBS POLLS`.
 */
import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/**
 * The named parts of the hot path: a sample counts toward a part when any frame of its stack is one
 * of the part's functions (so nested parts overlap: `store.poll` includes its statements).
 */
const PARTS: Array<[label: string, file: RegExp, fn: RegExp]> = [
  ['HTTP: request read (readBody)', /control-plane\/server/, /^readBody$/],
  ['lossless JSON parse (parseJsonLossless)', /contract\/json/, /^parseJsonLossless$/],
  ['zod validation of the body (server parse)', /control-plane\/server/, /^parse$/],
  ['console operators table (operators.polled)', /console\/(operators|routes)/, /^polled$|operatorPolled/],
  ['store.poll (one transaction: renew, revocations, claim)', /control-plane\/store/, /^poll$/],
  ['store.report (one transaction for the batch)', /control-plane\/store/, /^report$/],
  ['  transaction wrapper (tx: BEGIN/COMMIT)', /control-plane\/store/, /^tx$/],
  ['  event log (store.record → insertEvent)', /control-plane\/store/, /^record$/],
  ['  revocation table (store.revoke)', /control-plane\/store/, /^revoke$/],
  ['  follow-up checks (enqueueFollowUps)', /control-plane\/store/, /^enqueueFollowUps$/],
  ['  row → Job (toJob: JSON.parse of columns)', /control-plane\/store/, /^toJob$/],
  ['  store events (emit → waiters, console)', /control-plane\/store/, /^emit$/],
  [
    '  store.complete (per report entry: row, result check, update, event)',
    /control-plane\/store/,
    /^complete$/,
  ],
  ['    result validation (validateResult)', /./, /^validateResult$/],
  ['    update (UPDATE … RETURNING *, event row, toJob)', /control-plane\/store/, /^update$/],
  ['  timestamps to ISO strings (iso)', /control-plane\/store/, /^iso$/],
  ['response serialization (sendJson: JSON.stringify + write)', /control-plane\/server/, /^sendJson$/],
];

const maps = new Map<string, SourceMap | null>();
function source(frame: CallFrame): string {
  if (!frame.url.startsWith('file:')) return frame.url || '(native)';
  const file = fileURLToPath(frame.url);
  let map = maps.get(file);
  if (map === undefined) {
    try {
      map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')));
    } catch {
      map = null;
    }
    maps.set(file, map);
  }
  const entry = map?.findEntry(frame.lineNumber, frame.columnNumber);
  if (entry && 'originalSource' in entry && entry.originalSource) {
    const orig = entry.originalSource.startsWith('file:')
      ? fileURLToPath(entry.originalSource)
      : entry.originalSource;
    return `${relative(process.cwd(), orig).replace(/^(\.\.\/)+/, '')}:${entry.originalLine + 1}`;
  }
  return `${relative(process.cwd(), file)}:${frame.lineNumber + 1}`;
}

export function analyzeProfile(
  profileFile: string,
  sqlFile: string | undefined,
  counts: { jobs: number; polls: number },
): string {
  const p = JSON.parse(readFileSync(profileFile, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  // Start-up (module loading, the preload's type stripping) is not the drain: the window opens at
  // the first sample inside a request (`dispatch`).
  const inRequest = (id: number): boolean => {
    for (let n = byId.get(id); n; n = byId.get(parent.get(n.id) ?? -1)) {
      if (n.callFrame.functionName === 'dispatch' && /control-plane\/server/.test(n.callFrame.url))
        return true;
    }
    return false;
  };
  const first = Math.max(0, p.samples.findIndex(inRequest));
  // timeDeltas[i] is the time since the previous sample; it belongs to sample i-1's stack.
  for (let i = first; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0;
    selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + dt);
  }
  const key = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'}  ${source(n.callFrame)}`;
  const selfByFn = new Map<string, number>();
  const inclByFn = new Map<string, number>();
  const parts = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const leaf = byId.get(id)!;
    total += us;
    if (leaf.callFrame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    selfByFn.set(key(leaf), (selfByFn.get(key(leaf)) ?? 0) + us);
    const seenFn = new Set<string>();
    const seenPart = new Set<string>();
    for (let n: ProfileNode | undefined = leaf; n; n = byId.get(parent.get(n.id) ?? -1)) {
      const k = key(n);
      if (!seenFn.has(k)) {
        seenFn.add(k);
        inclByFn.set(k, (inclByFn.get(k) ?? 0) + us);
      }
      for (const [label, file, fn] of PARTS) {
        if (!seenPart.has(label) && file.test(n.callFrame.url) && fn.test(n.callFrame.functionName)) {
          seenPart.add(label);
          parts.set(label, (parts.get(label) ?? 0) + us);
        }
      }
    }
  }
  const busy = total - idle;
  const perJob = (us: number) => (us / counts.jobs).toFixed(2).padStart(8);
  const lines: string[] = [];
  lines.push(
    `  profiled ${(total / 1e3).toFixed(0)} ms, busy ${(busy / 1e3).toFixed(0)} ms (${((busy / total) * 100).toFixed(0)} %); ` +
      `${counts.jobs} jobs, ${counts.polls} polls + ${counts.polls} reports; busy ${(busy / counts.jobs).toFixed(1)} µs per job`,
  );
  lines.push('  part (inclusive; parts nest)                                       µs/job  share of busy');
  for (const [label] of PARTS) {
    const us = parts.get(label) ?? 0;
    lines.push(`  ${label.padEnd(64)} ${perJob(us)}  ${((us / busy) * 100).toFixed(1).padStart(5)} %`);
  }
  const gc = selfByFn.get('(garbage collector)  (native)') ?? 0;
  lines.push(
    `  ${'garbage collector'.padEnd(64)} ${perJob(gc)}  ${((gc / busy) * 100).toFixed(1).padStart(5)} %`,
  );
  const top = (m: Map<string, number>, n: number, filter: (k: string) => boolean = () => true) =>
    [...m]
      .filter(([k]) => filter(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, n);
  lines.push('  self time, top 25 functions                                        µs/job  share of busy');
  for (const [k, us] of top(selfByFn, 25)) {
    lines.push(
      `  ${k.slice(0, 64).padEnd(64)} ${perJob(us)}  ${((us / busy) * 100).toFixed(1).padStart(5)} %`,
    );
  }
  lines.push('  inclusive time, top 25 of our functions (src/, executors/)         µs/job  share of busy');
  for (const [k, us] of top(inclByFn, 25, (k) => /\s(src|executors)\//.test(k))) {
    lines.push(
      `  ${k.slice(0, 64).padEnd(64)} ${perJob(us)}  ${((us / busy) * 100).toFixed(1).padStart(5)} %`,
    );
  }
  if (sqlFile) {
    const sql = JSON.parse(readFileSync(sqlFile, 'utf8')) as Record<string, { calls: number; ns: number }>;
    const rows = Object.entries(sql).sort((a, b) => b[1].ns - a[1].ns);
    const sum = rows.reduce((s, [, r]) => s + r.ns, 0);
    lines.push(
      `  SQLite statements (wall time inside the call, ${(sum / 1e3 / counts.jobs).toFixed(2)} µs/job in all)   calls/job  µs/call   µs/job`,
    );
    for (const [text, r] of rows.slice(0, 20)) {
      lines.push(
        `  ${text.slice(0, 64).padEnd(64)} ${(r.calls / counts.jobs).toFixed(2).padStart(9)} ${(r.ns / r.calls / 1e3).toFixed(2).padStart(8)} ${(r.ns / 1e3 / counts.jobs).toFixed(2).padStart(8)}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

if (import.meta.main) {
  const [profileFile, sqlFile, jobs, polls] = process.argv.slice(2);
  if (!profileFile || !jobs || !polls) {
    process.stderr.write('usage: node bench/profile/analyze.ts PROFILE SQL.json|- JOBS POLLS\n');
    process.exit(2);
  }
  process.stdout.write(
    analyzeProfile(profileFile, sqlFile === '-' ? undefined : sqlFile, {
      jobs: Number(jobs),
      polls: Number(polls),
    }),
  );
}
