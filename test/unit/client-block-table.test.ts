// The block table (one phase per block, its requests and their controllers) and the pure scheduler (slots sized
// by the bytes of each request, runs up to a slab slot, room in the queue and slab), driven directly (issue 10
// "Shape"). Real modules, no I/O.

import { describe, expect, it } from 'vitest';
import { Availability } from '../../src/client/availability.js';
import { BlockTable, type BlockRequest } from '../../src/client/block-table.js';
import { DEFAULT_PEER_STATS, PeerStats } from '../../src/client/peer-stats.js';
import { schedule, type ScheduleInput } from '../../src/client/scheduler.js';
import { Bitfield } from '../../src/util/bitfield.js';

const bits = (n: number, set: number[]): Bitfield => {
  const b = new Bitfield(n);
  for (const i of set) b.set(i);
  return b;
};
const req = (peer: string, run: number[]): BlockRequest => ({ peer, ctrl: new AbortController(), run });
const none = (): number => 0;

describe('BlockTable', () => {
  it('starts with the durable blocks written and the rest waiting', () => {
    const t = new BlockTable(bits(8, [0, 3]));
    expect(t.writtenCount).toBe(2);
    expect(t.remaining).toBe(6);
    expect(t.isWritten(3)).toBe(true);
    expect(t.isWaiting(1)).toBe(true);
    expect(t.waiting.size).toBe(6);
    expect(t.complete).toBe(false);
  });

  it('a request takes its blocks out of waiting; when it settles unwritten they wait again', () => {
    const t = new BlockTable(new Bitfield(4));
    const r = req('a', [1, 2]);
    t.requested(r);
    expect(t.isWaiting(1)).toBe(false);
    expect(t.isNeeded(1)).toBe(true);
    expect(t.waiting.size).toBe(2);
    expect([...t.requests.get(2)!]).toEqual([r]);
    t.settled(r, none);
    expect(t.isWaiting(1) && t.isWaiting(2)).toBe(true);
    expect(t.requests.size).toBe(0);
    expect(t.waiting.size).toBe(4);
  });

  it('the first copy claimed wins: other single-block requests are aborted, a multi-block one is not, a second claim fails', () => {
    const t = new BlockTable(new Bitfield(4));
    const a = req('a', [1]);
    const b = req('b', [1]);
    const c = req('c', [0, 1]);
    for (const r of [a, b, c]) t.requested(r);
    expect(t.claim(1, a)).toBe(true);
    expect(b.ctrl.signal.aborted).toBe(true);
    expect(c.ctrl.signal.aborted).toBe(false);
    expect(a.ctrl.signal.aborted).toBe(false);
    expect(t.claim(1, c)).toBe(false); // being written: c's copy is skipped
    expect(t.isNeeded(1)).toBe(false);
    expect(t.remaining).toBe(3);
    t.writeDone(1, true);
    expect(t.isWritten(1)).toBe(true);
    expect(t.writtenCount).toBe(1);
    for (const r of [a, b, c]) t.settled(r, none);
    expect(t.isWritten(1)).toBe(true); // settling never un-writes
    expect(t.isWaiting(0)).toBe(true);
  });

  it('a bad copy puts the block back: requested again once no request for it is out', () => {
    const t = new BlockTable(new Bitfield(2));
    const a = req('a', [0]);
    const b = req('b', [0, 1]);
    t.requested(a);
    t.requested(b);
    expect(t.claim(0, a)).toBe(true);
    t.writeDone(0, false);
    t.writeDone(0, false); // a repeat is a no-op
    expect(t.isNeeded(0)).toBe(true);
    t.settled(a, none);
    expect(t.isWaiting(0)).toBe(false); // b still has it out
    expect(t.claim(0, b)).toBe(true);
    t.writeDone(0, true);
    t.settled(b, none);
    expect(t.isWritten(0)).toBe(true);
    expect(t.isWaiting(1)).toBe(true);
  });

  it('waiting blocks go back with their holder count; a block found bad on disk waits again; abortAll aborts every request', () => {
    const t = new BlockTable(bits(3, [2]));
    const r = req('a', [0]);
    t.requested(r);
    t.settled(r, (i) => (i === 0 ? 5 : 0));
    expect(t.waiting.pick((i) => i === 0, () => 0)).toBe(0);
    t.markMissing(2, 1);
    expect(t.isWaiting(2)).toBe(true);
    expect(t.writtenCount).toBe(0);
    const x = req('a', [1]);
    const y = req('b', [2]);
    t.requested(x);
    t.requested(y);
    t.abortAll(new Error('stopping'));
    expect(x.ctrl.signal.aborted && y.ctrl.signal.aborted).toBe(true);
  });
});

describe('schedule', () => {
  const B = 1024;
  function input(n: number, o: Partial<ScheduleInput> & { table: BlockTable; availability: Availability }): ScheduleInput {
    return {
      peers: [],
      blockSize: B,
      slotBytes: 4 * B,
      requestMs: 0,
      now: 0,
      room: () => true,
      canBuffer: () => true,
      picker: { endgameBlocks: 0, endgameCopies: 2, random: () => 0, lowFirst: true },
      countsAsCopy: () => true,
      ...o,
    };
  }
  /** Issue into the table as the session does, recording (peer, run, buffer bytes). */
  function recorder(t: BlockTable): { out: [string, number[], number][]; issue: Parameters<typeof schedule>[1] } {
    const out: [string, number[], number][] = [];
    return {
      out,
      issue: (run, peer, bytes) => {
        out.push([peer.addr, run, bytes]);
        t.requested(req(peer.addr, run));
        peer.inFlight++;
      },
    };
  }

  it('a peer that takes ranges gets runs of waiting blocks it holds, up to a slot, as many as its slots', () => {
    const n = 16;
    const t = new BlockTable(bits(n, [5]));
    const av = new Availability(n, (i, c) => t.waiting.update(i, c));
    const p = new PeerStats('a', { ...DEFAULT_PEER_STATS, initialSlots: 3 });
    av.setPeer('a', Bitfield.full(n));
    const r = recorder(t);
    expect(schedule(input(n, { table: t, availability: av, peers: [p] }), r.issue)).toBe(3);
    expect(r.out).toEqual([
      ['a', [0, 1, 2, 3], 4 * B],
      ['a', [4], 4 * B], // block 5 is written: the run stops before it
      ['a', [6, 7, 8, 9], 4 * B],
    ]);
  });

  it('with requestMs, a slow peer gets short runs in pieces of the slab, a fast one whole slots (issue 11)', () => {
    const n = 32;
    const t = new BlockTable(new Bitfield(n));
    const av = new Availability(n, (i, c) => t.waiting.update(i, c));
    const fast = new PeerStats('fast', { ...DEFAULT_PEER_STATS, initialSlots: 1, rateWindowMs: 1 });
    const slow = new PeerStats('slow', { ...DEFAULT_PEER_STATS, initialSlots: 1, rateWindowMs: 1 });
    // Measured throughput: fast 4 blocks per 10 ms, slow 1 block per 40 ms.
    fast.success(4 * B, 10, 100);
    fast.success(4 * B, 10, 110);
    slow.success(B, 40, 100);
    slow.success(B, 40, 140);
    fast.inFlight = slow.inFlight = 0;
    av.setPeer('fast', Bitfield.full(n));
    av.setPeer('slow', Bitfield.full(n));
    const r = recorder(t);
    const fresh = new PeerStats('fresh', { ...DEFAULT_PEER_STATS, initialSlots: 1 });
    av.setPeer('fresh', Bitfield.full(n));
    schedule(input(n, { table: t, availability: av, peers: [fast, slow, fresh], requestMs: 20, now: 200, room: () => r.out.length < 3 }), r.issue);
    expect(r.out).toEqual([
      ['fast', [0, 1, 2, 3], 4 * B], // 20 ms of 0.4 blocks/ms: 8 blocks, capped at a slot
      ['slow', [4], B], // 20 ms of 1/40 block per ms: one block, in a piece its size
      ['fresh', [5], B], // not measured yet: one block, which measures it
    ]);
    // Without requestMs both get whole slots.
    const t2 = new BlockTable(new Bitfield(n));
    const av2 = new Availability(n, (i, c) => t2.waiting.update(i, c));
    av2.setPeer('slow', Bitfield.full(n));
    const r2 = recorder(t2);
    slow.inFlight = 0;
    schedule(input(n, { table: t2, availability: av2, peers: [slow], now: 200, room: () => r2.out.length < 1 }), r2.issue);
    expect(r2.out).toEqual([['slow', [0, 1, 2, 3], 4 * B]]);
  });

  it('with a buffer total, a measured peer holds at most its share of it, in proportion to its throughput (issue 11)', () => {
    const n = 64;
    const make = (): { t: BlockTable; av: Availability } => {
      const t = new BlockTable(new Bitfield(n));
      return { t, av: new Availability(n, (i, c) => t.waiting.update(i, c)) };
    };
    const peers = (): PeerStats[] => {
      const fast = new PeerStats('fast', { ...DEFAULT_PEER_STATS, minSlots: 32, rateWindowMs: 1 });
      const slow = new PeerStats('slow', { ...DEFAULT_PEER_STATS, minSlots: 32, rateWindowMs: 1 });
      fast.success(30 * B, 10, 100); // throughput 3 B/ms …
      fast.success(30 * B, 10, 110);
      slow.success(10 * B, 10, 100); // … and 1 B/ms (per-request rates: fast first in the round)
      slow.success(10 * B, 10, 110);
      return [fast, slow];
    };
    const run = (bufferBytesTotal: number | undefined): string[] => {
      const { t, av } = make();
      const ps = peers();
      for (const p of ps) av.setPeer(p.addr, Bitfield.full(n));
      const out: string[] = [];
      const issue: Parameters<typeof schedule>[1] = (r, peer, bytes) => {
        out.push(peer.addr);
        t.requested(req(peer.addr, r));
        peer.inFlight++;
        peer.inFlightBytes += bytes;
      };
      schedule(input(n, { table: t, availability: av, peers: ps, requestMs: 1000, now: 200, room: () => out.length < 6, ...(bufferBytesTotal === undefined ? {} : { bufferBytesTotal }) }), issue);
      return out;
    };
    // Shares of 16 blocks of buffer (× 1.25): fast 15 blocks, slow 5; each request a 4-block slot.
    expect(run(16 * B)).toEqual(['fast', 'slow', 'fast', 'slow', 'fast', 'fast']);
    // Without a total, round robin: the slow peer takes as many slots as the fast one.
    expect(run(undefined)).toEqual(['fast', 'slow', 'fast', 'slow', 'fast', 'slow']);
  });

  it('a pick inside a free stretch takes the run from the slot-aligned boundary below it (issue 11)', () => {
    const n = 16;
    const t = new BlockTable(bits(n, [9]));
    const av = new Availability(n, (i, c) => t.waiting.update(i, c));
    const p = new PeerStats('a', { ...DEFAULT_PEER_STATS, initialSlots: 4 });
    av.setPeer('a', Bitfield.full(n));
    const r = recorder(t);
    // random() near 1: the picker takes the highest of its low window (3 of 0..3, 7, 12, then 11 of 8, 10, 11).
    schedule(input(n, { table: t, availability: av, peers: [p], picker: { endgameBlocks: 0, endgameCopies: 2, random: () => 0.99, lowFirst: true } }), r.issue);
    expect(r.out).toEqual([
      ['a', [0, 1, 2, 3], 4 * B],
      ['a', [4, 5, 6, 7], 4 * B],
      ['a', [12, 13, 14, 15], 4 * B],
      ['a', [10, 11], 4 * B], // block 9 is written: the run starts after it, not at 8
    ]);
  });

  it('a single-block peer gets one block per request in a piece its own size, and slots sized by one block', () => {
    const n = 64;
    const t = new BlockTable(new Bitfield(n));
    const av = new Availability(n, (i, c) => t.waiting.update(i, c));
    const p = new PeerStats('s', { ...DEFAULT_PEER_STATS, initialSlots: 2, targetQueueMs: 100 });
    p.multiBlock = false;
    // Measured: 1 KiB per 10 ms, i.e. 102.4 B/ms; 100 ms of queue = 10 blocks (+1): slots by the block, not a slot.
    p.success(B, 10, 10);
    av.setPeer('s', Bitfield.full(n));
    const r = recorder(t);
    const issued = schedule(input(n, { table: t, availability: av, peers: [p] }), r.issue);
    expect(issued).toBe(p.slots(B, 0));
    expect(issued).toBeGreaterThan(4 * 2); // far more than slot-sized requests would allow
    for (const [, run, bytes] of r.out) {
      expect(run).toHaveLength(1);
      expect(bytes).toBe(B);
    }
  });

  it('fastest peer first; no request without room in the queue or the slab; banned and backing-off peers get none', () => {
    const n = 32;
    const t = new BlockTable(new Bitfield(n));
    const av = new Availability(n, (i, c) => t.waiting.update(i, c));
    const slow = new PeerStats('slow');
    const fast = new PeerStats('fast');
    const banned = new PeerStats('banned');
    const away = new PeerStats('away');
    slow.success(B, 100, 100);
    fast.success(B, 1, 100);
    banned.ban('test');
    away.backoffUntil = 1_000;
    for (const p of ['slow', 'fast', 'banned', 'away']) av.setPeer(p, Bitfield.full(n));
    let room = 1;
    const r = recorder(t);
    const s = input(n, { table: t, availability: av, peers: [slow, fast, banned, away], room: () => room > 0, now: 500 });
    const issue: Parameters<typeof schedule>[1] = (run, peer, bytes, best) => {
      room--;
      expect(best).toBe(fast.bytesPerMs);
      r.issue(run, peer, bytes, best);
    };
    expect(schedule(s, issue)).toBe(1);
    expect(r.out[0]![0]).toBe('fast');
    expect(schedule({ ...s, room: () => true, canBuffer: () => false }, issue)).toBe(0);
    room = 100;
    schedule(s, issue);
    expect(new Set(r.out.map(([peer]) => peer))).toEqual(new Set(['fast', 'slow']));
  });
});
