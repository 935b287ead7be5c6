// Chooses the next block to request from a peer: the rarest missing block it holds (random tie-break), and in the
// endgame a block already in flight elsewhere so a slow peer cannot hold up the tail. Pure: no I/O, no clock.

import type { Availability } from './availability.js';

export interface PickerState {
  availability: Availability;
  /** Blocks not yet written (missing or in flight). */
  isNeeded: (i: number) => boolean;
  /** Peers a block is currently requested from. */
  inFlight: ReadonlyMap<number, ReadonlySet<string>>;
  /** Blocks still needed, for the endgame test. */
  remaining: number;
}

export interface PickerOptions {
  /** Endgame starts when this many blocks or fewer remain. */
  endgameBlocks: number;
  /** At most this many peers fetch the same block in the endgame. */
  endgameCopies: number;
  random: () => number;
}

/**
 * The rarest needed block that `peer` holds and that is not in flight (outside the endgame), or undefined.
 * In the endgame, a block in flight at fewer than `endgameCopies` other peers may be picked too; blocks not in
 * flight at all come first.
 */
export function pickBlock(peer: string, s: PickerState, opts: PickerOptions): number | undefined {
  const held = s.availability.held(peer);
  if (held === undefined) return undefined;
  const endgame = s.remaining <= opts.endgameBlocks;
  let best: number | undefined;
  let bestRank = Infinity;
  let ties = 0;
  const n = s.availability.blockCount;
  for (let i = 0; i < n; i++) {
    if (!held.has(i) || !s.isNeeded(i)) continue;
    const flying = s.inFlight.get(i);
    let penalty = 0;
    if (flying !== undefined && flying.size > 0) {
      if (!endgame || flying.has(peer) || flying.size >= opts.endgameCopies) continue;
      // Duplicates only after every untouched block: rank them behind any block not in flight.
      penalty = 1_000_000 * flying.size;
    }
    const rank = s.availability.count(i) + penalty;
    if (rank < bestRank) {
      bestRank = rank;
      best = i;
      ties = 1;
    } else if (rank === bestRank) {
      // Reservoir sampling: each of the equally rare blocks is chosen with equal probability.
      ties++;
      if (opts.random() * ties < 1) best = i;
    }
  }
  return best;
}
