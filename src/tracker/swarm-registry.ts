// The tracker server's in-memory state: swarms of peers keyed by swarm id, with expiry, a per-address
// minimum announce gap and hard bounds on swarms and peers. Pure bookkeeping; tracker-server.ts owns the clock.

import type { PeerInfo } from '../peer/peer-info.js';
import { peerKey } from '../peer/peer-info.js';

interface PeerRecord {
  ip: string;
  port: number;
  progress: number;
  /** Wall-clock time of the last announce, for the `updated` field. */
  updatedIso: string;
  /** Monotonic ms of the last announce, for expiry and the minimum gap. */
  seenAt: number;
  blocks?: { hex: string; blockSize: number };
}

export interface SwarmRegistryOptions {
  maxSwarms: number;
  maxPeersPerSwarm: number;
  /** A peer not heard from for this long is dropped. */
  expiryMs: number;
  /** A second announce from the same ip+port+swarm sooner than this is refused. */
  minIntervalMs: number;
}

/** Outcome of recording an announce. */
export type RecordResult =
  | { ok: true }
  | { ok: false; reason: 'too-soon'; retryAfterMs: number }
  | { ok: false; reason: 'full'; what: 'swarms' | 'peers' };

export interface PeerUpdate {
  ip: string;
  port: number;
  progress: number;
  blocks?: { hex: string; blockSize: number };
}

export class SwarmRegistry {
  private readonly swarms = new Map<string, Map<string, PeerRecord>>();
  private readonly opts: SwarmRegistryOptions;

  constructor(opts: SwarmRegistryOptions) {
    this.opts = opts;
  }

  /** Register or refresh a peer. `now` is monotonic ms, `wallIso` the wall-clock time for `updated`. */
  record(swarmId: string, peer: PeerUpdate, now: number, wallIso: string): RecordResult {
    let swarm = this.swarms.get(swarmId);
    const key = peerKey(peer.ip, peer.port);
    const existing = swarm?.get(key);
    if (existing !== undefined && now - existing.seenAt < this.opts.expiryMs) {
      const gap = now - existing.seenAt;
      if (gap < this.opts.minIntervalMs) return { ok: false, reason: 'too-soon', retryAfterMs: this.opts.minIntervalMs - gap };
    }
    if (swarm === undefined) {
      if (this.swarms.size >= this.opts.maxSwarms) {
        this.sweep(now);
        if (this.swarms.size >= this.opts.maxSwarms) return { ok: false, reason: 'full', what: 'swarms' };
      }
      swarm = new Map();
      this.swarms.set(swarmId, swarm);
    } else if (existing === undefined && swarm.size >= this.opts.maxPeersPerSwarm) {
      this.sweepSwarm(swarmId, swarm, now);
      if (swarm.size >= this.opts.maxPeersPerSwarm) return { ok: false, reason: 'full', what: 'peers' };
    }
    const rec: PeerRecord = { ip: peer.ip, port: peer.port, progress: peer.progress, updatedIso: wallIso, seenAt: now };
    if (peer.blocks !== undefined) rec.blocks = peer.blocks;
    // Re-insert so the map's order stays "least recently heard first".
    swarm.delete(key);
    swarm.set(key, rec);
    return { ok: true };
  }

  /** Remove a peer (event=stopped). Returns true if it was known. */
  remove(swarmId: string, ip: string, port: number): boolean {
    const swarm = this.swarms.get(swarmId);
    if (swarm === undefined) return false;
    const had = swarm.delete(peerKey(ip, port));
    if (swarm.size === 0) this.swarms.delete(swarmId);
    return had;
  }

  /**
   * Up to `n` live peers of the swarm chosen uniformly at random (reservoir sampling, one pass, no copy of
   * the swarm), never the peer `exclude` (an ip:port key).
   */
  sample(swarmId: string, n: number, now: number, exclude: string | undefined, random: () => number): PeerInfo[] {
    const swarm = this.swarms.get(swarmId);
    if (swarm === undefined || n <= 0) return [];
    const chosen: PeerRecord[] = [];
    let seen = 0;
    for (const [key, rec] of swarm) {
      if (key === exclude || now - rec.seenAt >= this.opts.expiryMs) continue;
      seen++;
      if (chosen.length < n) chosen.push(rec);
      else {
        const j = Math.floor(random() * seen);
        if (j < n) chosen[j] = rec;
      }
    }
    // Shuffle so the order carries no information about who announced first.
    for (let i = chosen.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [chosen[i], chosen[j]] = [chosen[j]!, chosen[i]!];
    }
    return chosen.map(toPeerInfo);
  }

  /** Drop every expired peer and empty swarm. */
  sweep(now: number): void {
    for (const [id, swarm] of this.swarms) this.sweepSwarm(id, swarm, now);
  }

  /** Number of swarms and of peers, for logs and tests. */
  stats(): { swarms: number; peers: number } {
    let peers = 0;
    for (const s of this.swarms.values()) peers += s.size;
    return { swarms: this.swarms.size, peers };
  }

  private sweepSwarm(id: string, swarm: Map<string, PeerRecord>, now: number): void {
    // Map order is least recently heard first, so stop at the first live peer.
    for (const [key, rec] of swarm) {
      if (now - rec.seenAt < this.opts.expiryMs) break;
      swarm.delete(key);
    }
    if (swarm.size === 0) this.swarms.delete(id);
  }
}

function toPeerInfo(rec: PeerRecord): PeerInfo {
  const p: PeerInfo = { ip: rec.ip, port: rec.port, progress: rec.progress, updated: rec.updatedIso, feeder: false };
  if (rec.blocks !== undefined) {
    p.blocks = rec.blocks.hex;
    p.blocksize = rec.blocks.blockSize;
  }
  return p;
}
