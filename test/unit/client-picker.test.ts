// The picker (rarest-first with random or lowest-index tie-break, endgame) and the availability map it reads, and peer stats
// (slots, deadlines, strikes, bans). Pure modules: tables, no I/O.
import { describe, expect, it } from 'vitest';
import { Availability } from '../../src/client/availability.js';
import { PeerStats, DEFAULT_PEER_STATS } from '../../src/client/peer-stats.js';
import { pickBlock, type PickerState } from '../../src/client/picker.js';
import { RarityBuckets, lowWindow } from '../../src/client/rarity-buckets.js';
import { Bitfield } from '../../src/util/bitfield.js';

function bits(n: number, held: number[]): Bitfield {
  const b = new Bitfield(n);
  for (const i of held) b.set(i);
  return b;
}

function state(av: Availability, opts: { written?: number[]; inFlight?: [number, string[]][] } = {}): PickerState {
  const written = new Set(opts.written ?? []);
  const inFlight = new Map((opts.inFlight ?? []).map(([b, ps]) => [b, new Set(ps.map((peer) => ({ peer })))] as const));
  const waiting = new RarityBuckets(av.blockCount);
  let remaining = 0;
  for (let i = 0; i < av.blockCount; i++) {
    if (written.has(i)) continue;
    remaining++;
    if (!inFlight.has(i)) waiting.add(i, av.count(i));
  }
  return { availability: av, waiting, inFlight, remaining, isNeeded: (i) => !written.has(i), countsAsCopy: (p) => p !== 'stalled' };
}

const opts = { endgameBlocks: 2, endgameCopies: 2, random: () => 0.5 };

describe('picker', () => {
  it('picks the rarest block the peer holds', () => {
    const av = new Availability(4);
    av.setPeer('a', bits(4, [0, 1, 2, 3]));
    av.setPeer('b', bits(4, [0, 1, 3]));
    av.setPeer('c', bits(4, [0, 3]));
    // counts: 0→3, 1→2, 2→1, 3→3
    expect(pickBlock('a', state(av), opts)).toBe(2);
    expect(pickBlock('b', state(av), opts)).toBe(1);
    expect(pickBlock('c', state(av), opts)).toBeOneOf([0, 3]);
  });

  it('skips blocks already written or in flight (outside the endgame), and blocks the peer lacks', () => {
    const av = new Availability(6);
    av.setPeer('a', bits(6, [0, 1, 2, 3, 4]));
    expect(pickBlock('a', state(av, { written: [0, 1], inFlight: [[2, ['b']], [3, ['c']]] }), opts)).toBe(4);
    // Blocks 2, 3, 5 remain (3 > endgameBlocks): nothing in flight is duplicated, and 'a' lacks block 5.
    expect(pickBlock('a', state(av, { written: [0, 1, 4], inFlight: [[2, ['b']], [3, ['c']]] }), opts)).toBeUndefined();
  });

  it('breaks ties at random, giving every equally rare block a chance', () => {
    const av = new Availability(8);
    av.setPeer('a', Bitfield.full(8));
    const seen = new Set<number>();
    let x = 0;
    const random = (): number => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let k = 0; k < 400; k++) seen.add(pickBlock('a', state(av), { ...opts, random })!);
    expect([...seen].sort((p, q) => p - q)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('in the endgame requests a block in flight elsewhere, never twice from one peer, at most endgameCopies', () => {
    const av = new Availability(3);
    av.setPeer('a', Bitfield.full(3));
    const s = state(av, { written: [0], inFlight: [[1, ['b']], [2, ['b', 'c']]] });
    // Nothing waits any more: block 1 (one copy) may be duplicated, block 2 already has 2 copies.
    expect(pickBlock('a', s, opts)).toBe(1);
    expect(pickBlock('b', s, opts)).toBeUndefined();
  });

  it('does not count copies at peers that never delivered a block', () => {
    const av = new Availability(2);
    av.setPeer('a', Bitfield.full(2));
    const s = state(av, { written: [0], inFlight: [[1, ['b', 'stalled']]] });
    // One real copy (b) plus one at a peer that has not delivered anything: 'a' may still take it.
    expect(pickBlock('a', s, opts)).toBe(1);
  });

  it('outside the endgame never duplicates a block in flight', () => {
    const av = new Availability(4);
    av.setPeer('a', bits(4, [0, 1, 2]));
    av.setPeer('z', bits(4, [3]));
    // Blocks 1, 2 in flight and 3 waiting (held by z only): 3 remain.
    const s = state(av, { written: [0], inFlight: [[1, ['b']], [2, ['b', 'c']]] });
    expect(pickBlock('a', s, { ...opts, endgameBlocks: 2 })).toBeUndefined();
    expect(pickBlock('a', s, { ...opts, endgameBlocks: 3 })).toBe(1);
  });

  it('prefers untouched blocks over duplicates in the endgame', () => {
    const av = new Availability(3);
    av.setPeer('a', Bitfield.full(3));
    expect(pickBlock('a', state(av, { inFlight: [[0, ['b']], [1, ['b']]] }), { ...opts, endgameBlocks: 3 })).toBe(2);
  });

  it('returns nothing for a peer it does not know', () => {
    expect(pickBlock('zz', state(new Availability(2)), opts)).toBeUndefined();
  });
});

// Issue 4: the whole-file SHA-256 follows the verified prefix, so among equally rare blocks one of the lowest few
// goes first (a random one of them, so downloaders starting together still differ).
describe('picker with lowFirst', () => {
  const low = { ...opts, lowFirst: true, random: Math.random };

  it('takes one of the lowest equally rare blocks the peer holds, not always the same one', () => {
    const n = 1000; // window: 16 blocks
    expect(lowWindow(n)).toBe(16);
    const av = new Availability(n);
    av.setPeer('a', bits(n, Array.from({ length: n - 2 }, (_, i) => i + 2)));
    av.setPeer('b', Bitfield.full(n));
    const seen = new Set<number>();
    for (let k = 0; k < 200; k++) seen.add(pickBlock('a', state(av, { written: [3], inFlight: [[2, ['b']]] }), low)!);
    // Candidates for a: 4, 5, … — the lowest 16 of them are 4..19.
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(4);
    expect(Math.max(...seen)).toBeLessThanOrEqual(19);
    expect(seen.size).toBeGreaterThan(8);
    // 0 and 1 are held by b alone: rarer, so b takes one of them first.
    for (let k = 0; k < 20; k++) expect([0, 1]).toContain(pickBlock('b', state(av, { written: [3], inFlight: [[2, ['b']]] }), low));
    expect(lowWindow(10)).toBe(4);
    expect(lowWindow(1 << 20)).toBe(64);
  });

  it('still takes rarer blocks first', () => {
    const av = new Availability(6);
    av.setPeer('a', Bitfield.full(6));
    av.setPeer('b', bits(6, [0, 1, 2, 3]));
    // 4 and 5 are held by a alone: the rarest, so they come before the lower 0..3.
    for (let k = 0; k < 20; k++) expect([4, 5]).toContain(pickBlock('a', state(av), low));
    expect(pickBlock('a', state(av, { written: [4] }), low)).toBe(5);
    expect([0, 1, 2, 3]).toContain(pickBlock('a', state(av, { written: [4, 5] }), low));
  });

  it('goes back to a lower block that waits again (a failed request) and follows picks up the file', () => {
    const b = new RarityBuckets(10); // window: 4 blocks
    for (let i = 0; i < 10; i++) b.add(i, 2);
    for (let k = 0; k < 4; k++) {
      const i = b.pick(() => true, Math.random, true)!;
      expect(i).toBeLessThan(k + 4); // always within the lowest 4 still waiting
      b.remove(i);
    }
    const c = new RarityBuckets(10);
    for (let i = 2; i < 10; i++) c.add(i, 2); // 0 and 1 were asked for
    c.add(1, 2); // 1's request failed: it waits again, and is the lowest
    expect(c.pick(() => true, () => 0, true)).toBe(1);
    c.update(1, 1); // now rarer than the rest; a lower, commoner one does not beat it
    c.add(0, 2);
    expect(c.pick(() => true, Math.random, true)).toBe(1);
  });

  it('bounds the scan: a held block far above the lowest waiting one falls back to the random pick', () => {
    const n = 1 << 16;
    const b = new RarityBuckets(n);
    for (let i = 0; i < n; i++) b.add(i, 1);
    // The peer holds only blocks from 10_000 up: more than the scan bound above block 0.
    const got = b.pick((i) => i >= 10_000, () => 0.5, true)!;
    expect(got).toBeGreaterThanOrEqual(10_000);
    // Within the bound, one of the lowest held ones (window 64 at this size) is found.
    expect(b.pick((i) => i >= 100 && i % 7 === 0, () => 0, true)).toBe(105);
    expect(b.pick((i) => i >= 100 && i % 7 === 0, () => 0.999, true)).toBe(105 + 7 * 63);
  });
});

describe('rarity buckets', () => {
  it('keeps blocks by holder count through add, update and remove, and picks the rarest accepted one', () => {
    const b = new RarityBuckets(6);
    for (let i = 0; i < 6; i++) b.add(i, 3);
    b.update(4, 1);
    b.update(2, 2);
    expect(b.pick(() => true, () => 0)).toBe(4);
    expect(b.pick((i) => i !== 4, () => 0)).toBe(2);
    b.remove(2);
    expect(b.has(2)).toBe(false);
    expect(b.size).toBe(5);
    expect(b.pick((i) => i !== 4, () => 0.99)).toBeOneOf([0, 1, 3, 5]);
    b.update(4, 0); // nobody holds it any more: never picked
    expect(b.pick((i) => i === 4, () => 0)).toBeUndefined();
  });
});

describe('availability', () => {
  it('counts per block, updates on drop and removal', () => {
    const av = new Availability(3);
    av.setPeer('a', bits(3, [0, 1]));
    av.setPeer('b', bits(3, [1, 2]));
    expect([av.count(0), av.count(1), av.count(2)]).toEqual([1, 2, 1]);
    av.dropBlock('b', 1);
    expect(av.count(1)).toBe(1);
    av.addBlock('b', 0);
    expect(av.count(0)).toBe(2);
    av.removePeer('a');
    expect([av.count(0), av.count(1), av.count(2)]).toEqual([1, 0, 1]);
    av.setPeer('b', bits(3, []));
    expect([av.count(0), av.count(1), av.count(2)]).toEqual([0, 0, 0]);
  });
});

describe('peer stats', () => {
  it('starts at initialSlots and stays within [minSlots, maxSlots]', () => {
    const p = new PeerStats('x');
    expect(p.slots(65536, 0)).toBe(DEFAULT_PEER_STATS.initialSlots);
    // 64 KiB in 1 ms, many times over: a huge bandwidth-delay product is capped.
    for (let t = 1; t <= 200; t++) p.success(65536, 1, t);
    expect(p.slots(4096, 200)).toBe(DEFAULT_PEER_STATS.maxSlots);
    // One 64 KiB request at a time, 10 s each: its bandwidth-delay product is one request, so 2 × 1 + 1.
    const slow = new PeerStats('y');
    slow.success(65536, 10_000, 10_000);
    slow.success(65536, 10_000, 20_000);
    expect(slow.slots(65536, 20_000)).toBe(3);
    // Failures halve the measured throughput: down to one request beyond a vanishing product.
    for (let i = 0; i < 4; i++) slow.failure(20_000, () => 0.5);
    expect(slow.slots(65536, 20_000)).toBe(DEFAULT_PEER_STATS.minSlots + 1);
  });

  /**
   * Drive a PeerStats in virtual time against a model peer: each request of `bytes` takes max(latency, the
   * bytes queued ahead of it at `capacity` bytes/ms). Requests are issued up to slots() whenever one ends.
   * Returns the slots the peer settles at after `ms` of virtual time.
   */
  function settle(o: { latencyMs: number; bytes: number; capacity: number; ms: number }): number {
    const p = new PeerStats('model');
    let now = 0;
    let served = 0; // when the peer's sending is busy until
    const open: { asked: number; end: number }[] = [];
    while (now < o.ms) {
      while (open.length < p.slots(o.bytes, now)) {
        // Sent one after another at `capacity`, each no sooner than latencyMs after it was asked for.
        served = Math.max(served, now) + o.bytes / o.capacity;
        open.push({ asked: now, end: Math.max(now + o.latencyMs, served) });
        open.sort((a, b) => a.end - b.end);
      }
      const r = open.shift()!;
      now = r.end;
      p.success(o.bytes, r.end - r.asked, now);
    }
    return p.slots(o.bytes, now);
  }

  it('issue 9: a single-block peer with 20 ms latency gets enough requests in flight to cover it', () => {
    // 4 KiB per request, 20 ms each, a peer that could serve 10 MB/s: covering 20 ms takes ~49 requests, so the
    // count grows to the ceiling; sized by a 1 MiB slot (the old bug) it would stay at 1–2.
    expect(settle({ latencyMs: 20, bytes: 4096, capacity: 10_000, ms: 5_000 })).toBe(DEFAULT_PEER_STATS.maxSlots);
    // A peer whose limit is 1 MB/s (250 blocks/s, 5 in 20 ms): a few requests beyond its bandwidth-delay product.
    const limited = settle({ latencyMs: 20, bytes: 4096, capacity: 1_000, ms: 10_000 });
    expect(limited).toBeGreaterThanOrEqual(5);
    expect(limited).toBeLessThan(DEFAULT_PEER_STATS.maxSlots);
  });

  it('a fast peer limited by bandwidth keeps about targetQueueMs queued, not the ceiling', () => {
    // 1 MiB requests, 1 ms latency, 100 MB/s: each takes ~10 ms to send, so ~40 requests' worth of time is 400 ms;
    // queued ones wait, their per-request rate falls, and the count settles where N requests ≈ 400 ms / (N × 10 ms).
    const n = settle({ latencyMs: 1, bytes: 1024 * 1024, capacity: 100_000, ms: 10_000 });
    expect(n).toBeGreaterThanOrEqual(4);
    expect(n).toBeLessThanOrEqual(12);
  });

  it('clamps deadlines to [min, max]', () => {
    const p = new PeerStats('x');
    p.success(1000, 1);
    expect(p.deadlineMs(1000)).toBe(DEFAULT_PEER_STATS.minDeadlineMs);
    p.success(1000, 1_000_000);
    expect(p.deadlineMs(1_000_000)).toBe(DEFAULT_PEER_STATS.maxDeadlineMs);
  });

  it('backs off after failures with growing delays and drops a peer after maxStrikes', () => {
    const p = new PeerStats('x');
    p.failure(0, () => 0.5);
    expect(p.usable(0)).toBe(false);
    expect(p.usable(DEFAULT_PEER_STATS.backoffBaseMs)).toBe(true);
    p.failure(0, () => 0.5);
    expect(p.usable(DEFAULT_PEER_STATS.backoffBaseMs)).toBe(false);
    for (let i = 2; i < DEFAULT_PEER_STATS.maxStrikes; i++) p.failure(0, () => 0.5);
    expect(p.banned).toBeDefined();
  });

  it('a ban keeps its first reason', () => {
    const p = new PeerStats('x');
    p.ban('block 3 failed its MD5 check');
    p.ban('other');
    expect(p.banned).toBe('block 3 failed its MD5 check');
    expect(p.usable(Infinity)).toBe(false);
  });
});
