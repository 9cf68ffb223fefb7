/**
 * `npm run chaos -- --seed N --duration S`: the chaos suite (test/chaos/chaos.test.ts) with a seed
 * and a schedule length of your choice; CI runs its default short seeded schedule. The suite prints
 * a `faults: summary {...}` line (jobs, faults injected, violations) and exits non-zero on any
 * violation. FAULTS_KEEP=1 keeps the journal, the schedule and the daemon logs.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: String(Math.floor(Math.random() * 2 ** 31)) },
    duration: { type: 'string', default: '22' },
  },
});
const seed = Number(values.seed);
const duration = Number(values.duration);
if (!Number.isSafeInteger(seed) || !(duration >= 5 && duration <= 86_400)) {
  process.stderr.write('usage: npm run chaos -- [--seed <integer>] [--duration <seconds, 5..86400>]\n');
  process.exit(2);
}
const root = join(import.meta.dirname, '..', '..');
// The chaos suite is one of the slow tests, which only vitest.slow.config.ts includes.
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const r = spawnSync(
  process.execPath,
  [vitest, 'run', '--config', 'vitest.slow.config.ts', 'test/chaos/chaos.test.ts'],
  {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, CHAOS_SEED: String(seed), CHAOS_DURATION_S: String(duration) },
  },
);
process.exit(r.status ?? 1);
