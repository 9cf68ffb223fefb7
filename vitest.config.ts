import { configDefaults, defineConfig } from 'vitest/config';
import { SLOW_TESTS } from './vitest.slow.config.ts';

/**
 * `npm test`: the suite a developer runs on every change, under 2 minutes on 2 cores. The slow
 * tests (chaos, crash and restart, long processes) are listed in vitest.slow.config.ts and run by
 * `npm run test:slow`.
 */
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: [...configDefaults.exclude, ...SLOW_TESTS],
    // Every suite starts real servers on 127.0.0.1; forks keep their sockets and SQLite handles apart.
    pool: 'forks',
    // vitest's default is one worker fewer than the cores: one on 2 cores. Most suites wait on sockets
    // and child processes rather than the CPU, so 4 files at a time (VITEST_MAX_WORKERS overrides);
    // the whole suite passed this way on 2 cores loaded by other builds (README, "Tests").
    maxWorkers: 4,
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
