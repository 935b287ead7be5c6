// Global setup of the `tracker-on-redis` test project (vitest.config.ts, issue 13): one real redis-server for the
// whole project, its URL given to the tests as `trackerStore` (tracker-store.ts reads it), stopped at the end.
// The project runs its files one at a time, and tracker-store.ts empties the database before each test.

import type { TestProject } from 'vitest/node';
import { redisSkipReason, startRedisServer } from './redis-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    trackerStore: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const skip = redisSkipReason();
  if (skip !== undefined) {
    process.stderr.write(`tracker-on-redis: ${skip}; its tests run on the memory store\n`);
    project.provide('trackerStore', '');
    return async () => undefined;
  }
  const redis = await startRedisServer();
  project.provide('trackerStore', `redis://127.0.0.1:${redis.port}/0`);
  return () => redis.close();
}
