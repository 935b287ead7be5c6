// A peer store whose availability a test switches (issue 13): the real MemoryPeerStore inside, and while `down`
// every call fails with StoreUnavailableError, as a store that lost its server does. It also counts sweeps and
// closes. A real Redis outage (a killed redis-server) is tested with the Redis store; this exercises the tracker's
// side of the contract on any machine.

import { MemoryPeerStore } from '../../src/tracker/memory-peer-store.js';
import { StoreUnavailableError, type AnnounceOutcome, type PeerStore, type PeerStoreLimits, type PeerUpdate } from '../../src/tracker/peer-store.js';
import type { PeerInfo } from '../../src/peer/peer-info.js';

export class SwitchablePeerStore implements PeerStore {
  readonly kind = 'memory' as const;
  down = false;
  sweeps = 0;
  closes = 0;
  private readonly inner: MemoryPeerStore;

  constructor(limits: PeerStoreLimits, readonly retryAfterSeconds = 7) {
    this.inner = new MemoryPeerStore(limits);
  }

  private check(): void {
    if (this.down) throw new StoreUnavailableError('test store switched off (ECONNREFUSED)', this.retryAfterSeconds);
  }

  async announce(swarmId: string, peer: PeerUpdate, o: { now: number; sample: number }): Promise<AnnounceOutcome> {
    this.check();
    return this.inner.announce(swarmId, peer, o);
  }
  async list(swarmId: string, n: number, o: { now: number; excludeKey?: string }): Promise<PeerInfo[]> {
    this.check();
    return this.inner.list(swarmId, n, o);
  }
  async remove(swarmId: string, ip: string, port: number): Promise<boolean> {
    this.check();
    return this.inner.remove(swarmId, ip, port);
  }
  async sweep(now: number): Promise<void> {
    this.sweeps++;
    this.check();
    return this.inner.sweep(now);
  }
  async stats(): Promise<{ swarms: number; peers: number; bitfieldBytes: number }> {
    this.check();
    return this.inner.stats();
  }
  async close(): Promise<void> {
    this.closes++;
    return this.inner.close();
  }
}
