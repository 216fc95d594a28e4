import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['contract-tests/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default'],
    // Says up front whether the real PostgreSQL server or the embedded one is used.
    globalSetup: ['test/support/global-setup.ts'],
  },
});
