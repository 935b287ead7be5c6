// Issue 13: every peer store keeps the tracker's rules. One describeStoreConformance call per store
// (test/helpers/tracker-store-suite.ts); a new store adds one call here.
import { describe, it } from 'vitest';
import { MemoryPeerStore } from '../../src/tracker/memory-peer-store.js';
import { openRedisPeerStore } from '../../src/tracker/redis-peer-store.js';
import { redisSkipReason, startRedisServer } from '../helpers/redis-server.js';
import { describeStoreConformance } from '../helpers/tracker-store-suite.js';

describeStoreConformance('memory', (limits) => {
  const store = new MemoryPeerStore(limits);
  return Promise.resolve({ store, close: () => store.close() });
});

// Each store on its own redis-server (a fresh keyspace), stopped with the store.
const skipRedis = redisSkipReason();
if (skipRedis === undefined) {
  describeStoreConformance('redis', async (limits) => {
    const server = await startRedisServer();
    try {
      const store = await openRedisPeerStore(server.url, limits);
      return { store, close: () => store.close().finally(() => server.close()) };
    } catch (err) {
      await server.close();
      throw err;
    }
  });
} else {
  describe('peer store conformance: redis', () => it.skip(skipRedis, () => undefined));
}
