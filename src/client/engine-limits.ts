// The download engine's knobs, with defaults and the reason for each; `get`/`resume` flags override them.

import { LIMITS } from '../limits.js';
import { DEFAULT_PEER_STATS, type PeerStatsOptions } from './peer-stats.js';

export interface EngineLimits {
  /** Requests in flight over all downloads and peers: bounds memory (one block buffer each). */
  maxInFlight: number;
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
  maxInFlight: 64,
  checkpointBlocks: 256,
  checkpointMs: 500,
  endgameBlocks: 16,
  endgameCopies: 2,
  stallTimeoutMs: 300_000,
  peersKnownMax: LIMITS.peersKnownMax,
  peer: DEFAULT_PEER_STATS,
};
