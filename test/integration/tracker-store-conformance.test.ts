// Issue 13: every peer store keeps the tracker's rules. One describeStoreConformance call per store
// (test/helpers/tracker-store-suite.ts); a new store adds one call here.
import { MemoryPeerStore } from '../../src/tracker/memory-peer-store.js';
import { describeStoreConformance } from '../helpers/tracker-store-suite.js';

describeStoreConformance('memory', (limits) => {
  const store = new MemoryPeerStore(limits);
  return Promise.resolve({ store, close: () => store.close() });
});
