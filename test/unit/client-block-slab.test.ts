// The block slab (src/client/block-slab.ts): whole slots for runs, pieces of a slot for single small blocks
// (issue 9: a 4 KiB block must not hold a 1 MiB slot), no two buffers handed out overlap, memory bounded.

import { describe, expect, it } from 'vitest';
import { BlockSlab, type Slot } from '../../src/client/block-slab.js';

const MiB = 1024 * 1024;

/** Fill each slot with its own byte, then check none was overwritten by another's fill. */
function assertDisjoint(slots: Slot[]): void {
  slots.forEach((s, i) => s.view.fill(i % 251));
  slots.forEach((s, i) => expect(s.view.every((b) => b === i % 251)).toBe(true));
}

describe('block slab', () => {
  it('hands out whole slots up to its count, then nothing', () => {
    const slab = new BlockSlab(4, MiB);
    const got = [slab.acquire(), slab.acquire(), slab.acquire(), slab.acquire()];
    expect(got.every((s) => s !== undefined && s.view.length === MiB)).toBe(true);
    expect(slab.acquire()).toBeUndefined();
    expect(slab.canAcquire()).toBe(false);
    assertDisjoint(got as Slot[]);
    slab.release(got[2]!);
    expect(slab.canAcquire()).toBe(true);
  });

  it('issue 9: single 4 KiB blocks take 4 KiB each, not a slot each (2,048 in 8 MiB)', () => {
    const slab = new BlockSlab(8, MiB);
    const pieces: Slot[] = [];
    for (;;) {
      const s = slab.acquire(4096);
      if (s === undefined) break;
      pieces.push(s);
      expect(pieces.length).toBeLessThanOrEqual(2048);
    }
    expect(pieces.length).toBe(2048);
    expect(pieces.every((p) => p.view.length === 4096)).toBe(true);
    expect(slab.bytesInUse).toBe(8 * MiB);
    expect(slab.available).toBe(0);
    assertDisjoint(pieces);
  });

  it('a carved slot becomes whole again when all its pieces are back', () => {
    const slab = new BlockSlab(2, MiB);
    const a = slab.acquire(1024)!;
    const b = slab.acquire(1024)!;
    expect(slab.available).toBe(1); // both pieces come from one carved slot
    slab.release(a);
    expect(slab.available).toBe(1);
    slab.release(b);
    expect(slab.available).toBe(2);
    expect(slab.bytesInUse).toBe(0);
    const whole = [slab.acquire()!, slab.acquire()!];
    assertDisjoint(whole);
  });

  it('pieces of two sizes and whole slots never overlap', () => {
    const slab = new BlockSlab(4, 64 * 1024);
    const out: Slot[] = [];
    for (let i = 0; i < 20; i++) out.push(slab.acquire(4096)!);
    for (let i = 0; i < 10; i++) out.push(slab.acquire(1000)!); // rounded up to 1024
    out.push(slab.acquire()!);
    expect(out.every((s) => s !== undefined)).toBe(true);
    assertDisjoint(out);
    // Release in a scattered order, then everything is whole again.
    for (let i = out.length - 1; i >= 0; i -= 2) slab.release(out[i]!);
    for (let i = out.length - 2; i >= 0; i -= 2) slab.release(out[i]!);
    expect(slab.available).toBe(4);
    expect(slab.bytesInUse).toBe(0);
  });

  it('a request over half a slot takes a whole slot; over a slot is refused', () => {
    const slab = new BlockSlab(2, 64 * 1024);
    const s = slab.acquire(40 * 1024)!;
    expect(s.view.length).toBe(64 * 1024);
    expect(slab.available).toBe(1);
    expect(() => slab.acquire(64 * 1024 + 1)).toThrow(RangeError);
    expect(() => slab.release({ shared: new SharedArrayBuffer(8), byteOffset: 0, view: Buffer.alloc(8) })).toThrow();
  });
});
