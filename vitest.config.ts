import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Workers and CLI children run the built dist/; build once before any test file runs.
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'main', include: ['test/**/*.test.ts'] } },
      {
        // Issue 13: the tracker's own tests again, on a real Redis store (one redis-server, files one at a time).
        extends: true,
        test: {
          name: 'tracker-on-redis',
          include: ['test/integration/tracker-*.test.ts'],
          exclude: [
            'test/integration/tracker-redis-store.test.ts', 'test/integration/tracker-store-conformance.test.ts', 'test/integration/tracker-store-outage.test.ts',
            // Starts its own redis-server already.
            'test/integration/tracker-udp-workers.test.ts',
          ],
          globalSetup: ['test/helpers/global-setup.ts', 'test/helpers/redis-global-setup.ts'],
          fileParallelism: false,
        },
      },
    ],
  },
});
