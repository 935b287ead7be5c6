// Which peer store the tracker tests run on (issue 13): memory by default, or the one the `tracker-on-redis` test
// project provides (vitest.config.ts, redis-global-setup.ts), or KFETCH_TEST_TRACKER_STORE names
// (`redis://127.0.0.1:PORT/DB`), read here and nowhere else. In-process tests start their tracker with
// startTestTracker(); tests that spawn `kfetch tracker` add trackerStoreArgs() to its arguments. On Redis the
// database is emptied before each test (that project runs its files one at a time), so no test sees another's peers.

import { Redis } from 'ioredis';
import { beforeEach, inject } from 'vitest';
import { openPeerStore, parseStoreSpec, type StoreSpec } from '../../src/tracker/open-peer-store.js';
import { startTracker, storeLimits, trackerLimits, type RunningTracker, type TrackerOptions } from '../../src/tracker/tracker-server.js';

export const TRACKER_STORE_ENV = 'KFETCH_TEST_TRACKER_STORE';

/** The store URL the project provides, else KFETCH_TEST_TRACKER_STORE's; '' for memory. */
function storeUrl(): string {
  let provided: string | undefined;
  try {
    provided = inject('trackerStore');
  } catch {
    provided = undefined; // not in a vitest worker
  }
  return provided !== undefined && provided !== '' ? provided : (process.env[TRACKER_STORE_ENV] ?? '');
}

/** The store the tests run on (memory when none is named). */
export function testStoreSpec(): StoreSpec {
  const v = storeUrl();
  return v === '' ? { kind: 'memory' } : parseStoreSpec(v);
}

/** `['--store', value]` for a `kfetch tracker` child when a store is named, else nothing (the CLI's memory default). */
export function trackerStoreArgs(): string[] {
  const v = storeUrl();
  return v === '' ? [] : ['--store', v];
}

if (storeUrl() !== '') {
  beforeEach(async () => {
    const redis = new Redis(storeUrl(), { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      await redis.flushdb();
    } finally {
      redis.disconnect();
    }
  });
}

/**
 * startTracker on the test store, with the tracker's limits from `opts`; close() closes the tracker, then the store.
 * Memory goes through startTracker's own store (exactly what production does without --store).
 */
export async function startTestTracker(opts: TrackerOptions = {}): Promise<RunningTracker> {
  const spec = testStoreSpec();
  if (spec.kind === 'memory' || opts.store !== undefined) return startTracker(opts);
  const store = await openPeerStore(spec, storeLimits(trackerLimits(opts), opts.feeders), opts.log === undefined ? {} : { log: opts.log });
  let tracker: RunningTracker;
  try {
    tracker = await startTracker({ ...opts, store });
  } catch (err) {
    await store.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    ...tracker,
    close() {
      closing ??= tracker.close().then(() => store.close());
      return closing;
    },
  };
}
