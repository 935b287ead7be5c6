// The download engine's knobs, with defaults and the reason for each; `get`/`resume` flags override them.

import { LIMITS } from '../limits.js';
import { DEFAULT_PEER_STATS, type PeerStatsOptions } from './peer-stats.js';

export interface EngineLimits {
  /** Requests in flight over all downloads and peers (one buffer each: a block, or a run of up to maxRangeBytes). */
  maxInFlight: number;
  /**
   * Memory for buffers in flight: slots of max(maxRangeBytes, block size) (never fewer than 4); a single small block
   * takes a piece of a slot its own size, so small requests are bounded by bytes, not by the slot count.
   */
  maxInFlightBytes: number;
  /** Largest multi-block range asked of one peer in one request (kfetch seeders and plain HTTP servers). */
  maxRangeBytes: number;
  /**
   * A multi-block range asks about this much transfer time of its peer at the peer's measured throughput (at least
   * one block, at most maxRangeBytes; 0: always maxRangeBytes): a slow peer's requests take small pieces of the
   * slab, so the memory in flight goes to peers in proportion to their speed instead of waiting on the slow ones.
   */
  requestMs: number;
  /** Checkpoint after this many written blocks, or this many ms, whichever first (DESIGN.md checkpoint rule). */
  checkpointBlocks: number;
  checkpointMs: number;
  /** Endgame: with this many blocks left, late blocks are also requested from a second peer. */
  endgameBlocks: number;
  endgameCopies: number;
  /** Give up (KF_E_NO_PEERS, resumable) when no block arrived for this long; 0 waits forever. */
  stallTimeoutMs: number;
  peersKnownMax: number;
  peer: PeerStatsOptions;
}

export const DEFAULT_ENGINE_LIMITS: EngineLimits = {
  // A count cap for requests of one small block each (original peers: 1–4 KiB, one block per request, tens of ms
  // each): 128 covers 4 such peers × 32 connections. Large requests are bounded by the memory below first: 8 slots
  // of 1 MiB, which keep 4 seeders on loopback busy (measured on 1 GiB: 16 MiB gave no more speed, 8 MiB more RSS).
  maxInFlight: 128,
  maxInFlightBytes: 8 * 1024 * 1024,
  maxRangeBytes: 1024 * 1024,
  // Issue 11, swarm-shaped (2 × 32 + 2 × 8 MiB/s seeders, 8 MiB in flight): whole 1 MiB ranges used 58% of the
  // seeders' aggregate rate, the 8 MiB/s seeders holding the slab; ~25 ms ranges (one block from a slow seeder,
  // four from a fast one) keep every seeder's link busy. Peers on loopback still get whole 1 MiB ranges.
  requestMs: 25,
  checkpointBlocks: 256,
  checkpointMs: 500,
  endgameBlocks: 16,
  endgameCopies: 2,
  stallTimeoutMs: 300_000,
  peersKnownMax: LIMITS.peersKnownMax,
  peer: DEFAULT_PEER_STATS,
};
