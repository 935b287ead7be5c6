// The download engine's knobs, with defaults and the reason for each; `get`/`resume` flags override them.

import { LIMITS } from '../limits.js';
import { DEFAULT_PEER_STATS, type PeerStatsOptions } from './peer-stats.js';

export interface EngineLimits {
  /** Requests in flight over all downloads and peers (one block buffer each). */
  maxInFlight: number;
  /** Memory for block buffers in flight; with big blocks it lowers the in-flight count (never below 4). */
  maxInFlightBytes: number;
  /** Largest multi-block range asked of one peer in one request (kfetch seeders and plain HTTP servers). */
  maxRangeBytes: number;
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
  // 32 × 256 KiB keeps 4 seeders on loopback busy; measured on a 1 GiB download: 64 gave no more speed and
  // 8 MiB more RSS.
  maxInFlight: 32,
  maxInFlightBytes: 8 * 1024 * 1024,
  maxRangeBytes: 1024 * 1024,
  checkpointBlocks: 256,
  checkpointMs: 500,
  endgameBlocks: 16,
  endgameCopies: 2,
  stallTimeoutMs: 300_000,
  peersKnownMax: LIMITS.peersKnownMax,
  peer: DEFAULT_PEER_STATS,
};
