// The default peer store (issue 13): the tracker's swarms in this process's memory, swarm-registry.ts behind the
// PeerStore interface, with its behaviour and speed unchanged. Used by tracker-server.ts when no other store is given.
//
// Clock: the store uses the `now` each call passes, as the registry always has (tracker-server.ts owns the clock).
// The tracker passes a monotonic clock on the wall-clock scale for this store (performance.timeOrigin +
// performance.now(): it never jumps when the system clock is set), so expiry and the minimum gap keep RELIABILITY's
// "monotonic time" rule, while the conformance suite can drive the same store with explicit `now` values.
// `updated` in replies is the real wall clock at record time, as before.

import type { PeerInfo } from '../peer/peer-info.js';
import { peerKey } from '../peer/peer-info.js';
import type { AnnounceOutcome, PeerStore, PeerStoreLimits, PeerUpdate } from './peer-store.js';
import { SwarmRegistry } from './swarm-registry.js';

/**
 * `new Date().toISOString()`, made once per millisecond: a busy tracker records several announces a millisecond, and
 * each Date and string cost ~1 µs (the same text either way).
 */
let isoMs = Number.NaN;
let iso = '';
function wallIso(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    iso = new Date(ms).toISOString();
  }
  return iso;
}

export class MemoryPeerStore implements PeerStore {
  readonly kind = 'memory' as const;
  private readonly registry: SwarmRegistry;
  private readonly random: () => number;

  /** `random` picks the sample (default Math.random; tests pass a seeded one). */
  constructor(limits: PeerStoreLimits, o: { random?: () => number } = {}) {
    this.registry = new SwarmRegistry(limits);
    this.random = o.random ?? Math.random;
  }

  /** Synchronous work in an async shell: a resolved promise costs one microtask, no timer or I/O. */
  announce(swarmId: string, peer: PeerUpdate, o: { now: number; sample: number }): Promise<AnnounceOutcome> {
    const result = this.registry.record(swarmId, peer, o.now, wallIso());
    // On a refusal too: an original client gets the swarm's peers anyway (never itself).
    const peers = this.registry.sample(swarmId, o.sample, o.now, peerKey(peer.ip, peer.port), this.random);
    return Promise.resolve({ result, peers });
  }

  list(swarmId: string, n: number, o: { now: number; excludeKey?: string }): Promise<PeerInfo[]> {
    return Promise.resolve(this.registry.sample(swarmId, n, o.now, o.excludeKey, this.random));
  }

  remove(swarmId: string, ip: string, port: number): Promise<boolean> {
    return Promise.resolve(this.registry.remove(swarmId, ip, port));
  }

  sweep(now: number): Promise<void> {
    this.registry.sweep(now);
    return Promise.resolve();
  }

  stats(): Promise<{ swarms: number; peers: number; bitfieldBytes: number }> {
    return Promise.resolve({ ...this.registry.stats(), bitfieldBytes: this.registry.bitfieldBytes() });
  }

  /** Nothing to release: the maps go with the object. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
