// Where the tracker keeps its swarms (issue 13): one interface, two stores. `memory` (the default; swarm-registry.ts
// behind it, unchanged behaviour and speed) and `redis` (`--store redis://host:port/db`, shared by several tracker
// processes: one round trip per announce, a server-side script). Every rule the in-memory registry enforces holds
// in both (caps per swarm, per source address, swarms, peers, bitfield bytes; the minimum gap for a repeat; the
// feeder policy; expiry of downloading and complete peers); test/integration/tracker-store-conformance.test.ts runs
// one suite against both. Times are ms on the wall-clock scale: `Date.now()` for a shared store (several processes
// share a Redis store); the memory store gets a monotonic clock on that scale (tracker-server.ts), so it never jumps.

import type { PeerInfo } from '../peer/peer-info.js';
import type { FeederPolicy } from './feeder-policy.js';
import type { PeerUpdate, RecordResult } from './swarm-registry.js';

export type { PeerUpdate, RecordResult } from './swarm-registry.js';

/** What one announce gets back: the outcome of recording it and up to `sample` other peers of the swarm. */
export interface AnnounceOutcome {
  result: RecordResult;
  /** Live peers of the swarm but the caller, a fair random sample of at most `sample`. Also on a refusal. */
  peers: PeerInfo[];
}

/**
 * The rules a store enforces, all resolved (tracker-server.ts trackerLimits() fills them from LIMITS): the same
 * meaning as swarm-registry.ts SwarmRegistryOptions. Every store is opened with one of these.
 */
export interface PeerStoreLimits {
  maxSwarms: number;
  maxPeersPerSwarm: number;
  maxPeersPerAddress: number;
  maxPeers: number;
  expiryMs: number;
  /** Never below expiryMs (the tracker clamps it). */
  completeExpiryMs: number;
  minIntervalMs: number;
  maxBitfieldBytesPerSwarm: number;
  maxBitfieldBytes: number;
  feeders: FeederPolicy;
}

export interface PeerStore {
  /** Which store this is (`memory`, `redis`), for logs and /metrics. */
  readonly kind: 'memory' | 'redis';
  /** Record (or refresh) `peer` in `swarmId` and list the others: one round trip on Redis. */
  announce(swarmId: string, peer: PeerUpdate, o: { now: number; sample: number }): Promise<AnnounceOutcome>;
  /** Up to `n` live peers of `swarmId` but `excludeKey` (`ip:port`), without recording anything (a port-0 caller). */
  list(swarmId: string, n: number, o: { now: number; excludeKey?: string }): Promise<PeerInfo[]>;
  /** `event=stopped`: forget the peer; true if it was listed. */
  remove(swarmId: string, ip: string, port: number): Promise<boolean>;
  /** Drop expired peers (memory: a timer calls it; Redis: expiry is by score, this trims what is left). */
  sweep(now: number): Promise<void>;
  stats(): Promise<{ swarms: number; peers: number; bitfieldBytes: number }>;
  close(): Promise<void>;
}

/**
 * The store is unreachable or failed (Redis down): the tracker answers 503 + Retry-After to kfetch clients and the
 * interop-safe empty array to original ones, and tries again on the next announce.
 */
export class StoreUnavailableError extends Error {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}
