// Chooses the next block to request from a peer: the rarest waiting block it holds (random tie-break, or a random one
// of the lowest few so the whole-file hash can follow the download; see `lowFirst`), and in the endgame a block already in
// flight elsewhere so a slow peer cannot hold up the tail. Pure: no I/O, no clock.

import type { Availability } from './availability.js';
import type { RarityBuckets } from './rarity-buckets.js';

export interface PickerState {
  availability: Availability;
  /** Blocks needed and not in flight, by rarity. */
  waiting: RarityBuckets;
  /** The requests out for each block (block-table.ts), each naming its peer. */
  inFlight: ReadonlyMap<number, ReadonlySet<{ readonly peer: string }>>;
  /** Blocks still needed (waiting or in flight), for the endgame test. */
  remaining: number;
  /** False for blocks written or being written: never requested again, even in the endgame. */
  isNeeded: (i: number) => boolean;
  /**
   * Whether a request at this peer counts as a copy in the endgame. Peers that never delivered a block do not:
   * two copies stuck at peers that stall must not keep the block from a peer that works.
   */
  countsAsCopy: (peer: string) => boolean;
}

export interface PickerOptions {
  /** Endgame starts when this many blocks or fewer remain (and always once nothing is waiting). */
  endgameBlocks: number;
  /** At most this many peers fetch the same block in the endgame. */
  endgameCopies: number;
  random: () => number;
  /**
   * Among equally rare blocks take a random one of the lowest few (rarity-buckets.ts `lowWindow`) rather than any:
   * the verified prefix, which the whole-file SHA-256 hashes while downloading, then grows steadily, and
   * downloaders starting together still ask for different blocks. Rarer blocks still come first.
   */
  lowFirst?: boolean;
}

/**
 * The rarest waiting block that `peer` holds; failing that, in the endgame, the block in flight at the fewest other
 * peers that count as copies (below `endgameCopies`, never one this peer already fetches), rarest first.
 */
export function pickBlock(peer: string, s: PickerState, opts: PickerOptions): number | undefined {
  const held = s.availability.held(peer);
  if (held === undefined) return undefined;
  const fresh = s.waiting.pick((i) => held.has(i), opts.random, opts.lowFirst === true);
  if (fresh !== undefined) return fresh;
  if (s.remaining > opts.endgameBlocks && s.waiting.size > 0) return undefined;
  let best: number | undefined;
  let bestRank = Infinity;
  let ties = 0;
  for (const [i, flying] of s.inFlight) {
    if (flying.size === 0 || !held.has(i) || !s.isNeeded(i)) continue;
    let copies = 0;
    let ours = false;
    for (const r of flying) {
      if (r.peer === peer) ours = true;
      else if (s.countsAsCopy(r.peer)) copies++;
    }
    if (ours || copies >= opts.endgameCopies) continue;
    const rank = copies * 1_000_000 + s.availability.count(i);
    if (rank < bestRank) {
      bestRank = rank;
      best = i;
      ties = 1;
    } else if (rank === bestRank && opts.random() * ++ties < 1) {
      best = i; // reservoir sampling: equally ranked blocks are equally likely
    }
  }
  return best;
}
