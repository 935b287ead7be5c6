// Which peer store the tracker tests run on (issue 13): memory by default, or the one KFETCH_TEST_TRACKER_STORE
// names (`redis://127.0.0.1:PORT/DB`), read here and nowhere else. In-process tests start their tracker with
// startTestTracker(); tests that spawn `kfetch tracker` add trackerStoreArgs() to its arguments.

import { openPeerStore, parseStoreSpec, type StoreSpec } from '../../src/tracker/open-peer-store.js';
import { startTracker, storeLimits, trackerLimits, type RunningTracker, type TrackerOptions } from '../../src/tracker/tracker-server.js';

export const TRACKER_STORE_ENV = 'KFETCH_TEST_TRACKER_STORE';

/** The store named by KFETCH_TEST_TRACKER_STORE (memory when unset or empty). */
export function testStoreSpec(): StoreSpec {
  const v = process.env[TRACKER_STORE_ENV];
  return v === undefined || v === '' ? { kind: 'memory' } : parseStoreSpec(v);
}

/** `['--store', value]` for a `kfetch tracker` child when a store is named, else nothing (the CLI's memory default). */
export function trackerStoreArgs(): string[] {
  const v = process.env[TRACKER_STORE_ENV];
  return v === undefined || v === '' ? [] : ['--store', v];
}

/**
 * startTracker on the test store, with the tracker's limits from `opts`; close() closes the tracker, then the store.
 * Memory goes through startTracker's own store (exactly what production does without --store).
 * TODO(issue 13): a Redis store shared by tests needs a clean keyspace per tracker (the Redis store's open or a flush here).
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
