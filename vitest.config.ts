import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// Four projects: unit tests are pure; integration tests start the one real service they need
// in-process (SQS server, state-machine runner); e2e tests run against the whole local cloud,
// which the global setup starts on its own ports and state directory (or reuses if
// TROVELESS_TEST_API points at a running one).
// Vitest's default is a worker less than the cores: one, on CI's two, which ran every file of the
// suite one after another. Most of a file's time is spent waiting on engines and services, so two
// at a time fit two cores. (The e2e files still run one at a time: they share one local cloud.)
const WORKERS = Math.max(2, availableParallelism() - 1);

export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], maxWorkers: WORKERS } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          maxWorkers: WORKERS,
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        // The local compute host's isolation between instances, against real engines (root on Linux).
        test: {
          name: 'security',
          include: ['test/security/**/*.test.ts'],
          maxWorkers: WORKERS,
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
