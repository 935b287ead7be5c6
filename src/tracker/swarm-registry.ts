// The tracker server's in-memory state: swarms of peers keyed by swarm id, with expiry, a per-address
// minimum announce gap and hard bounds on swarms and peers. Pure bookkeeping; tracker-server.ts owns the clock.
//
// Each swarm keeps two maps, each in "least recently heard first" order (a refresh re-inserts at the end):
// peers still downloading (expire after `expiryMs`) and peers whose last announce said progress 1 (expire after
// the longer `completeExpiryMs`: original 2015 peers announce complete once and never again, SPEC §6). With one
// expiry per map, sweeping a map stops at its first live peer, so a sweep costs O(1 + peers dropped).
//
// Bitfields (issue 10): a swarm's first bitfield fixes the largest file it can describe (8 × its bytes × its block
// size), and every later bitfield, at any block size, must fit that file: an attacker joining a live swarm cannot
// store more than an honest peer does. Their bytes are counted per swarm and in all; over either cap a peer is
// still listed, without its bitfield (downloaders then ask the peer's own /blocks).

import type { PeerInfo } from '../peer/peer-info.js';
import { peerKey } from '../peer/peer-info.js';
import { DEFAULT_FEEDER_POLICY, isFeeder, type FeederPolicy } from './feeder-policy.js';
import type { AnnounceEvent } from './parse-announce.js';

interface PeerRecord {
  ip: string;
  port: number;
  progress: number;
  event: AnnounceEvent | undefined;
  /** Wall-clock time of the last announce, for the `updated` field. */
  updatedIso: string;
  /** Monotonic ms of the last announce, for expiry and the minimum gap. */
  seenAt: number;
  blocks?: { hex: string; blockSize: number };
  /** The announce carried a bitfield that was not kept (over a memory cap): a repeat of it is still a repeat. */
  blocksDropped?: true;
  /** Extension (issue 14): the peer wire's port at `ip` (a number: no per-peer memory beyond a field). */
  wire?: number;
}

interface Swarm {
  /** progress < 1, least recently heard first. */
  active: Map<string, PeerRecord>;
  /** progress === 1, least recently heard first. */
  complete: Map<string, PeerRecord>;
  /** The keys of each source address's peers, least recently heard first (the per-address cap evicts the first). */
  byIp: Map<string, Set<string>>;
  /**
   * Largest file size the swarm's first kept bitfield could describe (8 × bytes × block size); unset until one came,
   * and unset again when the record that set it goes (so a liar who set it first cannot hold it for longer).
   */
  fileBytesBound?: number;
  /** The record whose bitfield set fileBytesBound. */
  boundBy?: string;
  /** Bytes of the bitfields kept (hex characters, one byte each). */
  bitfieldBytes: number;
}

export interface SwarmRegistryOptions {
  maxSwarms: number;
  maxPeersPerSwarm: number;
  /** Peers one address may have in one swarm; a new one beyond evicts that address's stalest (default unbounded). */
  maxPeersPerAddress?: number;
  /** Peers over all swarms; beyond, new peers are refused as `full` (default unbounded). */
  maxPeers?: number;
  /** A peer not heard from for this long is dropped. */
  expiryMs: number;
  /**
   * A peer whose last announce said progress 1 is dropped after this long instead (never sooner than expiryMs).
   * While its swarm is full it may be evicted once past expiryMs, to make room for a new peer.
   */
  completeExpiryMs?: number;
  /** A second announce of the same state from the same ip+port+swarm sooner than this is refused. */
  minIntervalMs: number;
  /** Who is reported `feeder: true` (default: peers that announced complete). */
  feeders?: FeederPolicy;
  /** Bitfield bytes kept per swarm / over all swarms; beyond, a peer is kept without its bitfield (default unbounded). */
  maxBitfieldBytesPerSwarm?: number;
  maxBitfieldBytes?: number;
}

/** Outcome of recording an announce. */
export type RecordResult =
  /**
   * `blocksDropped`: the peer is listed, but its bitfield was not kept: a memory cap is full (`swarm`, `total`), or
   * it is longer than the swarm's geometry allows at its block size (`geometry`). Never a refusal: a refused
   * bitfield would let whoever announced first keep every honest peer out (or make them stop sending bitfields).
   */
  | { ok: true; blocksDropped?: 'swarm' | 'total' | 'geometry' }
  | { ok: false; reason: 'too-soon'; retryAfterMs: number }
  | { ok: false; reason: 'full'; what: 'swarms' | 'peers' };

export interface PeerUpdate {
  ip: string;
  port: number;
  progress: number;
  event?: AnnounceEvent;
  blocks?: { hex: string; blockSize: number };
  /** Extension (issue 14): the port of the peer's binary peer wire, 1..65535, at `ip`. */
  wire?: number;
}

export class SwarmRegistry {
  private readonly swarms = new Map<string, Swarm>();
  private readonly opts: SwarmRegistryOptions;
  private readonly completeExpiryMs: number;
  private readonly feeders: FeederPolicy;
  /** Records over all swarms. */
  private total = 0;
  /** Bitfield bytes kept over all swarms. */
  private totalBitfieldBytes = 0;
  /** Monotonic ms of the last full sweep done for a refused announce (at most one a second: a sweep is O(swarms)). */
  private lastForcedSweep = -Infinity;

  constructor(opts: SwarmRegistryOptions) {
    this.opts = opts;
    this.completeExpiryMs = Math.max(opts.expiryMs, opts.completeExpiryMs ?? opts.expiryMs);
    this.feeders = opts.feeders ?? DEFAULT_FEEDER_POLICY;
  }

  /**
   * Register or refresh a peer. `now` is monotonic ms, `wallIso` the wall-clock time for `updated`.
   * The minimum gap refuses only a repeat of the recorded state (same progress, event, bitfield and wire): a peer that
   * reports a change is always heard. A change still refreshes the one record of that ip+port, so it costs no
   * memory and cannot get round the peer cap.
   */
  record(swarmId: string, peer: PeerUpdate, now: number, wallIso: string): RecordResult {
    let swarm = this.swarms.get(swarmId);
    const key = peerKey(peer.ip, peer.port);
    const existing = swarm === undefined ? undefined : (swarm.active.get(key) ?? swarm.complete.get(key));
    const live = existing !== undefined && now - existing.seenAt < this.expiryOf(existing);
    if (live && sameState(existing, peer)) {
      const gap = now - existing.seenAt;
      if (gap < this.opts.minIntervalMs) return { ok: false, reason: 'too-soon', retryAfterMs: this.opts.minIntervalMs - gap };
    }
    if (existing === undefined && this.total >= (this.opts.maxPeers ?? Infinity)) {
      this.forcedSweep(now);
      if (this.total >= (this.opts.maxPeers ?? Infinity)) return { ok: false, reason: 'full', what: 'peers' };
    }
    if (swarm === undefined) {
      if (this.swarms.size >= this.opts.maxSwarms) {
        this.forcedSweep(now);
        if (this.swarms.size >= this.opts.maxSwarms) return { ok: false, reason: 'full', what: 'swarms' };
      }
      swarm = { active: new Map(), complete: new Map(), byIp: new Map(), bitfieldBytes: 0 };
      this.swarms.set(swarmId, swarm);
    } else if (existing === undefined) {
      // One address filling a swarm (RELIABILITY "tracker abuse"): its own stalest peer makes room, nobody else's.
      const mine = swarm.byIp.get(peer.ip);
      if (mine !== undefined && mine.size >= (this.opts.maxPeersPerAddress ?? Infinity)) {
        const stalest = mine.values().next().value;
        if (stalest !== undefined) this.drop(swarm, stalest);
      }
      if (size(swarm) >= this.opts.maxPeersPerSwarm) {
        this.sweepSwarm(swarmId, swarm, now);
        if (size(swarm) >= this.opts.maxPeersPerSwarm) this.evictStaleComplete(swarm, now);
        if (size(swarm) >= this.opts.maxPeersPerSwarm) return { ok: false, reason: 'full', what: 'peers' };
      }
    }
    const rec: PeerRecord = { ip: peer.ip, port: peer.port, progress: peer.progress, event: peer.event, updatedIso: wallIso, seenAt: now };
    if (peer.wire !== undefined) rec.wire = peer.wire;
    // Delete then set, so each order stays "least recently heard first"; a peer lives in one map only.
    this.drop(swarm, key);
    let blocksDropped: 'swarm' | 'total' | 'geometry' | undefined;
    if (peer.blocks !== undefined) {
      const bytes = peer.blocks.hex.length;
      const bound = swarm.fileBytesBound;
      if (bound !== undefined && bytes > bitfieldBytesFor(bound, peer.blocks.blockSize) * 2) blocksDropped = 'geometry';
      else if (swarm.bitfieldBytes + bytes > (this.opts.maxBitfieldBytesPerSwarm ?? Infinity)) blocksDropped = 'swarm';
      else if (this.totalBitfieldBytes + bytes > (this.opts.maxBitfieldBytes ?? Infinity)) blocksDropped = 'total';
      if (blocksDropped === undefined) {
        if (bound === undefined) {
          swarm.fileBytesBound = (bytes / 2) * 8 * peer.blocks.blockSize;
          swarm.boundBy = key;
        }
        rec.blocks = peer.blocks;
        swarm.bitfieldBytes += bytes;
        this.totalBitfieldBytes += bytes;
      } else rec.blocksDropped = true;
    }
    (rec.progress === 1 ? swarm.complete : swarm.active).set(key, rec);
    let mine = swarm.byIp.get(rec.ip);
    if (mine === undefined) swarm.byIp.set(rec.ip, (mine = new Set()));
    mine.add(key);
    this.total++;
    return blocksDropped === undefined ? { ok: true } : { ok: true, blocksDropped };
  }

  /** Remove the record `key` of `swarm` from its map and its address's set (the swarm itself stays). */
  private drop(swarm: Swarm, key: string): boolean {
    const rec = swarm.active.get(key) ?? swarm.complete.get(key);
    if (rec === undefined) return false;
    swarm.active.delete(key);
    swarm.complete.delete(key);
    const mine = swarm.byIp.get(rec.ip);
    mine?.delete(key);
    if (mine !== undefined && mine.size === 0) swarm.byIp.delete(rec.ip);
    if (rec.blocks !== undefined) {
      swarm.bitfieldBytes -= rec.blocks.hex.length;
      this.totalBitfieldBytes -= rec.blocks.hex.length;
    }
    if (swarm.boundBy === key) {
      delete swarm.fileBytesBound;
      delete swarm.boundBy;
    }
    this.total--;
    return true;
  }

  /** A full sweep for an announce that would be refused, at most once a second (a sweep walks every swarm). */
  private forcedSweep(now: number): void {
    if (now - this.lastForcedSweep < 1_000) return;
    this.lastForcedSweep = now;
    this.sweep(now);
  }

  /** Remove a peer (event=stopped). Returns true if it was known. */
  remove(swarmId: string, ip: string, port: number): boolean {
    const swarm = this.swarms.get(swarmId);
    if (swarm === undefined) return false;
    const had = this.drop(swarm, peerKey(ip, port));
    if (size(swarm) === 0) this.swarms.delete(swarmId);
    return had;
  }

  /** True if the registry holds this swarm (live or not yet swept). */
  has(swarmId: string): boolean {
    return this.swarms.has(swarmId);
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
    for (const [map, expiry] of [
      [swarm.active, this.opts.expiryMs],
      [swarm.complete, this.completeExpiryMs],
    ] as const) {
      for (const [key, rec] of map) {
        if (key === exclude || now - rec.seenAt >= expiry) continue;
        seen++;
        if (chosen.length < n) chosen.push(rec);
        else {
          const j = Math.floor(random() * seen);
          if (j < n) chosen[j] = rec;
        }
      }
    }
    // Shuffle so the order carries no information about who announced first.
    for (let i = chosen.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [chosen[i], chosen[j]] = [chosen[j]!, chosen[i]!];
    }
    return chosen.map((rec) => this.toPeerInfo(rec));
  }

  /** Drop every expired peer and empty swarm. */
  sweep(now: number): void {
    for (const [id, swarm] of this.swarms) this.sweepSwarm(id, swarm, now);
  }

  /** Number of swarms and of peers, for logs and tests. */
  stats(): { swarms: number; peers: number } {
    return { swarms: this.swarms.size, peers: this.total };
  }

  /** Bytes of the bitfields kept, in one swarm or over all swarms: the account the memory caps bound. */
  bitfieldBytes(swarmId?: string): number {
    return swarmId === undefined ? this.totalBitfieldBytes : (this.swarms.get(swarmId)?.bitfieldBytes ?? 0);
  }

  private expiryOf(rec: PeerRecord): number {
    return rec.progress === 1 ? this.completeExpiryMs : this.opts.expiryMs;
  }

  private sweepSwarm(id: string, swarm: Swarm, now: number): void {
    this.dropExpired(swarm, swarm.active, now, this.opts.expiryMs);
    this.dropExpired(swarm, swarm.complete, now, this.completeExpiryMs);
    if (size(swarm) === 0) this.swarms.delete(id);
  }

  /** Map order is least recently heard first, so stop at the first live peer. */
  private dropExpired(swarm: Swarm, map: Map<string, PeerRecord>, now: number, expiryMs: number): void {
    for (const [key, rec] of map) {
      if (now - rec.seenAt < expiryMs) break;
      this.drop(swarm, key);
    }
  }

  /** A full swarm makes room by dropping its stalest complete peer if that one is past the ordinary expiry. */
  private evictStaleComplete(swarm: Swarm, now: number): void {
    const first = swarm.complete.entries().next();
    if (first.done === true) return;
    const [key, rec] = first.value;
    if (now - rec.seenAt >= this.opts.expiryMs) this.drop(swarm, key);
  }

  private toPeerInfo(rec: PeerRecord): PeerInfo {
    const p: PeerInfo = {
      ip: rec.ip,
      port: rec.port,
      progress: rec.progress,
      updated: rec.updatedIso,
      feeder: isFeeder(this.feeders, rec.ip, rec.port, rec.progress),
    };
    if (rec.wire !== undefined) p.wire = rec.wire;
    if (rec.blocks !== undefined) {
      p.blocks = rec.blocks.hex;
      p.blocksize = rec.blocks.blockSize;
    }
    return p;
  }
}

function size(swarm: Swarm): number {
  return swarm.active.size + swarm.complete.size;
}

/** Bytes of a bitfield at `blockSize` for a file of at most `fileBytes` (SPEC §4: ceil(blocks / 8)). */
function bitfieldBytesFor(fileBytes: number, blockSize: number): number {
  return Math.ceil(Math.ceil(fileBytes / blockSize) / 8);
}

function sameState(rec: PeerRecord, peer: PeerUpdate): boolean {
  // A bitfield that was not kept (memory cap) cannot be compared; the rest of the state still can.
  const sameBlocks =
    rec.blocksDropped === true
      ? peer.blocks !== undefined
      : rec.blocks?.hex === peer.blocks?.hex && rec.blocks?.blockSize === peer.blocks?.blockSize;
  return rec.progress === peer.progress && rec.event === peer.event && sameBlocks && rec.wire === peer.wire;
}
