// Edges of the picker's endgame and of the rarity buckets that the first mutation run (`npm run mutate`, issue 10)
// showed no test would notice: which in-flight blocks may be duplicated and in what order, the reservoir
// tie-break, and the buckets' bookkeeping (absent blocks, swaps on removal, the lazily moved low bound). Pure.

import { describe, expect, it } from 'vitest';
import { Availability } from '../../src/client/availability.js';
import { pickBlock, type PickerState } from '../../src/client/picker.js';
import { RarityBuckets } from '../../src/client/rarity-buckets.js';
import { Bitfield } from '../../src/util/bitfield.js';

function bits(n: number, held: number[]): Bitfield {
  const b = new Bitfield(n);
  for (const i of held) b.set(i);
  return b;
}

/** A state where nothing waits: every block not written is in flight at the peers named. */
function endgame(av: Availability, inFlight: [number, string[]][], o: { written?: number[]; remaining?: number } = {}): PickerState {
  const written = new Set(o.written ?? []);
  return {
    availability: av,
    waiting: new RarityBuckets(av.blockCount),
    inFlight: new Map(inFlight.map(([b, ps]) => [b, new Set(ps.map((peer) => ({ peer })))] as const)),
    remaining: o.remaining ?? inFlight.length,
    isNeeded: (i) => !written.has(i),
    countsAsCopy: (p) => p !== 'stalled',
  };
}

/** random() returning `xs` in turn, then the last one. */
const seq = (...xs: number[]): (() => number) => {
  let k = 0;
  return () => xs[Math.min(k++, xs.length - 1)]!;
};

const opts = { endgameBlocks: 2, endgameCopies: 2, random: () => 0.5 };

describe('picker endgame edges', () => {
  it('returns nothing for a peer it does not know, even with blocks waiting', () => {
    const av = new Availability(2);
    av.setPeer('a', Bitfield.full(2));
    const waiting = new RarityBuckets(2);
    waiting.add(0, 1);
    expect(pickBlock('zz', { ...endgame(av, []), waiting, remaining: 2 }, opts)).toBeUndefined();
  });

  it('once nothing waits, duplicates even when more than endgameBlocks remain', () => {
    const av = new Availability(5);
    av.setPeer('a', Bitfield.full(5));
    const s = endgame(av, [[0, ['b']], [1, ['b']], [2, ['b']], [3, ['b']], [4, ['b']]]);
    expect(s.remaining).toBeGreaterThan(opts.endgameBlocks);
    expect(pickBlock('a', s, opts)).toBeDefined();
  });

  it('never duplicates a block this peer fetches already, lacks, no longer needs, or nobody fetches', () => {
    const av = new Availability(4);
    av.setPeer('a', bits(4, [0, 1, 2, 3]));
    av.setPeer('b', bits(4, [0, 1, 2]));
    expect(pickBlock('a', endgame(av, [[0, ['a']]]), opts)).toBeUndefined();
    expect(pickBlock('b', endgame(av, [[3, ['a']]]), opts)).toBeUndefined();
    expect(pickBlock('a', endgame(av, [[1, ['b']]], { written: [1] }), opts)).toBeUndefined();
    expect(pickBlock('a', endgame(av, [[2, []]]), opts)).toBeUndefined();
    expect(pickBlock('a', endgame(av, [[0, ['a']], [3, ['b']]]), opts)).toBe(3);
  });

  it('stops at endgameCopies copies that count', () => {
    const av = new Availability(2);
    av.setPeer('a', Bitfield.full(2));
    expect(pickBlock('a', endgame(av, [[1, ['b', 'c']]]), opts)).toBeUndefined();
    expect(pickBlock('a', endgame(av, [[1, ['b', 'c']]]), { ...opts, endgameCopies: 3 })).toBe(1);
    expect(pickBlock('a', endgame(av, [[1, ['b', 'stalled']]]), opts)).toBe(1);
  });

  it('prefers fewer copies first, then the rarer block', () => {
    const av = new Availability(3);
    av.setPeer('a', Bitfield.full(3));
    av.setPeer('x', bits(3, [1, 2]));
    av.setPeer('y', bits(3, [1, 2]));
    // Counts: 0→1, 1→3, 2→3. Block 0 has one copy, block 1 none that count: fewer copies beat rarity.
    expect(pickBlock('a', endgame(av, [[0, ['b']], [1, ['stalled']]]), { ...opts, endgameCopies: 3 })).toBe(1);
    // Same copies: the rarer block (0) first, whichever comes first in the map.
    expect(pickBlock('a', endgame(av, [[1, ['b']], [0, ['b']]]), opts)).toBe(0);
    expect(pickBlock('a', endgame(av, [[0, ['b']], [2, ['b']]]), opts)).toBe(0);
  });

  it('picks among equally ranked blocks by reservoir sampling', () => {
    const av = new Availability(3);
    av.setPeer('a', Bitfield.full(3));
    const s = endgame(av, [[0, ['b']], [1, ['b']], [2, ['b']]]);
    // random() * k < 1 replaces the pick with the k-th equal block.
    expect(pickBlock('a', s, { ...opts, random: () => 0.99 })).toBe(0);
    expect(pickBlock('a', s, { ...opts, random: () => 0 })).toBe(2);
    expect(pickBlock('a', s, { ...opts, random: seq(0.4, 0.9) })).toBe(1);
    expect(pickBlock('a', s, { ...opts, random: seq(0.5, 0.3) })).toBe(2);
    // Exactly 1/k is not below 1/k: the first of two equal blocks stays.
    expect(pickBlock('a', endgame(av, [[0, ['b']], [1, ['b']]]), { ...opts, random: () => 0.5 })).toBe(0);
  });

  it('a worse block after the best one never takes its place, whatever the tie-break draws', () => {
    const av = new Availability(3);
    av.setPeer('a', Bitfield.full(3));
    av.setPeer('x', bits(3, [1, 2]));
    expect(pickBlock('a', endgame(av, [[0, ['b']], [1, ['b']], [2, ['b', 'c']]]), { ...opts, endgameCopies: 3, random: () => 0 })).toBe(0);
  });
});

describe('rarity buckets edges', () => {
  it('has() is true for a present block; add() of a present block and remove() of an absent one change nothing', () => {
    const b = new RarityBuckets(4);
    b.add(1, 2);
    b.add(1, 5);
    expect(b.has(1)).toBe(true);
    expect(b.size).toBe(1);
    b.remove(3);
    expect(b.size).toBe(1);
    expect(b.pick(() => true, () => 0)).toBe(1);
    b.update(3, 1); // absent: stays absent
    expect(b.has(3)).toBe(false);
    expect(b.pick((i) => i === 3, () => 0)).toBeUndefined();
  });

  it('removing a block from the middle of its bucket keeps the others findable', () => {
    const b = new RarityBuckets(3);
    for (let i = 0; i < 3; i++) b.add(i, 1);
    b.remove(0);
    expect(b.pick((i) => i === 2, () => 0)).toBe(2);
    b.remove(2);
    expect(b.pick(() => true, () => 0)).toBe(1);
    expect(b.size).toBe(1);
  });

  it('without lowFirst starts at a random place in the bucket, not at the lowest block', () => {
    const b = new RarityBuckets(100);
    for (let i = 0; i < 100; i++) b.add(i, 1);
    expect(b.pick(() => true, () => 0.99)).toBe(99);
  });

  it('with lowFirst, a block added below the lowest one is seen again', () => {
    const b = new RarityBuckets(10);
    for (let i = 0; i < 10; i++) b.add(i, 1);
    for (let i = 0; i < 5; i++) b.remove(i);
    expect(b.pick(() => true, () => 0, true)).toBe(5);
    b.add(2, 1);
    expect(b.pick(() => true, () => 0, true)).toBe(2);
  });

  it('with lowFirst, takes only present, equally rare, accepted blocks as candidates', () => {
    const b = new RarityBuckets(10);
    for (let i = 0; i < 10; i++) b.add(i, 1);
    b.remove(1);
    b.remove(2);
    b.update(3, 2);
    // The window (4 at 10 blocks) of candidates is 0, 4, 5, 6; random 0.3 takes the second.
    expect(b.pick((i) => i !== 5, seq(0, 0.3), true)).toBe(4);
    expect(b.pick((i) => i !== 5, seq(0, 0.6), true)).toBe(6);
  });

  it('with lowFirst, moves its low bound past removed blocks, and scans at most 4096 blocks above it', () => {
    const n = 10_000;
    const b = new RarityBuckets(n);
    for (let i = 0; i < n; i++) b.add(i, 1);
    for (let i = 0; i < 5000; i++) b.remove(i);
    expect(b.pick(() => true, () => 0.5, true)).toBe(5000 + 32); // the window is 64 blocks at 10,000
    const c = new RarityBuckets(n);
    c.add(0, 1);
    c.add(9000, 1);
    c.add(9500, 1);
    // 9500 is the random pick; 9000 and 9500 lie beyond the scan from block 0, so that pick stands.
    expect(c.pick((i) => i !== 0, seq(0.99, 0), true)).toBe(9500);
  });
});
