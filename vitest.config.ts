import { defineConfig } from 'vitest/config';

// Four projects: unit tests are pure; integration tests start the one real service they need
// in-process (SQS server, state-machine runner); e2e tests run against the whole local cloud,
// which the global setup starts on its own ports and state directory (or reuses if
// TROVELESS_TEST_API points at a running one).
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        // The local compute host's isolation between instances, against real engines (root on Linux).
        test: {
          name: 'security',
          include: ['test/security/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/e2e/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
