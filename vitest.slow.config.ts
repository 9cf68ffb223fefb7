import { defineConfig } from 'vitest/config';

/**
 * `npm run test:slow`: the tests that take too long for every change — chaos, the crash and restart
 * tests that spawn daemons and wait out real lease TTLs, the long process tests and the secrets
 * searches. `npm test` (vitest.config.ts) runs everything else; together they run every test.
 * CI (.ci/run) runs both. `npm run chaos` runs the chaos suite alone, with a seed and a duration.
 */
export const SLOW_TESTS = [
  // `npm run chaos` runs this one alone, with a seed and a duration of your choice.
  'test/chaos/chaos.test.ts',
  // SIGKILLed daemons (real `dataplane-operator run` processes) whose successor reattaches.
  'test/emr-serverless/crash.test.ts',
  'test/sagemaker/crash.test.ts',
  'test/snowflake/daemon.test.ts',
  'test/integrity/dml-crash.test.ts',
  // The daemon and `dev` as processes: signals, drains, restarts on the same data.
  'test/daemon/process.test.ts',
  'test/local/dev.test.ts',
  // Every executor's failure paths run end to end, searched for leaked secrets.
  'test/integrity/secrets.test.ts',
  'test/integrity/secrets-executors.test.ts',
];

export default defineConfig({
  test: {
    include: SLOW_TESTS,
    // Every suite starts real servers on 127.0.0.1; forks keep their sockets and SQLite handles apart.
    pool: 'forks',
    // These suites spawn daemons and control planes and time leases against the wall clock: one file
    // at a time keeps two cores free enough for the deadlines they check.
    maxWorkers: 1,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: ['default'],
  },
});
