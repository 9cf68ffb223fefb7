/**
 * The command line as the user types it: durations with units, and how to name this CLI in a hint.
 * (Paths relative to where the user typed: `userPath` in src/lib/config.ts.)
 */
import { existsSync } from 'node:fs';
import { delimiter, join, relative } from 'node:path';

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration from the command line in milliseconds: `1500` (ms), `500ms`, `5s`, `2m`, `1h`, `1d`, or a
 * sum such as `1m30s`. Throws a RangeError naming the accepted forms.
 */
export function parseDuration(text: string): number {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t);
  const parts = [...t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== t) {
    throw new RangeError(`'${text}' is not a duration (e.g. 500ms, 5s, 2m, 1h, 1m30s, or milliseconds)`);
  }
  return Math.round(parts.reduce((ms, p) => ms + Number(p[1]) * (UNITS[p[2] as string] as number), 0));
}

/**
 * How the user can run this CLI again, for hints: `npm run --silent cli --` when npm started it (a
 * checkout), `dataplane-operator` when that command is on the PATH (`npm link`, a global install),
 * else `node <the script>`, so a hint never names a command the user's shell cannot find.
 */
export function cliCommand(env: NodeJS.ProcessEnv = process.env, script = process.argv[1] ?? ''): string {
  if (env.npm_lifecycle_event && env.npm_package_name === 'dataplane-operator')
    return 'npm run --silent cli --';
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'dataplane-operator'))) return 'dataplane-operator';
  }
  const rel = relative(process.cwd(), script);
  return `node ${rel && !rel.startsWith('..') ? rel : script}`;
}
