import { configDefaults, defineConfig } from 'vitest/config';
import { SLOW_TESTS } from './vitest.slow.config.ts';

/**
 * `npm test`: the suite a developer runs on every change, under 2 minutes on 2 cores. The slow
 * tests (chaos, crash and restart, long processes) are listed in vitest.slow.config.ts and run by
 * `npm run test:slow`.
 */
/** Test files run at once (see README: the figure was measured with 2 to 4). */
const MAX_WORKERS = Number(process.env.DPO_TEST_WORKERS ?? 4);

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: [...configDefaults.exclude, ...SLOW_TESTS],
    // Every suite starts real servers on 127.0.0.1; forks keep their sockets and SQLite handles apart.
    pool: 'forks',
    // vitest's default is one worker fewer than the cores, so one on 2 cores. Most suites wait on
    // sockets and child processes rather than the CPU: MAX_WORKERS files at a time.
    maxWorkers: MAX_WORKERS,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: ['default'],
    coverage: {
      provider: 'v8',
      include: ['src/**', 'executors/**'],
      reporter: ['text-summary'],
    },
  },
});
