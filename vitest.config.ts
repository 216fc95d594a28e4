import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Test files run in parallel, each with its own database; keep it to the 2 cores CI has.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    reporters: ['default'],
    globalSetup: ['test/support/global-setup.ts'],
  },
});
