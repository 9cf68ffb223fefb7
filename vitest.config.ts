import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Every suite starts real servers on 127.0.0.1; forks keep their sockets and SQLite handles apart.
    pool: 'forks',
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
