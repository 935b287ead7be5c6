import { describe, expect, it } from 'vitest';
import { BufferPool, ReadBuffers } from '../../src/server/buffer-pool.js';

describe('BufferPool', () => {
  it('reuses given-back buffers, keeps at most maxFree, and refuses beyond maxLive', () => {
    const p = new BufferPool(1024, 2, 3);
    const a = p.take()!;
    const b = p.take()!;
    const c = p.take()!;
    expect(p.take()).toBeUndefined();
    expect(p.stats()).toEqual({ live: 3, free: 0, allocated: 3 });
    p.give(a);
    p.give(b);
    p.give(c); // beyond maxFree: left to the GC
    expect(p.stats()).toEqual({ live: 0, free: 2, allocated: 3 });
    expect(p.take()).toBe(b);
    expect(p.take()).toBe(a);
    expect(p.stats().allocated).toBe(3);
  });

  it('a dropped buffer is never handed out again', () => {
    const p = new BufferPool(16, 4);
    const a = p.take()!;
    p.drop();
    expect(p.stats()).toEqual({ live: 0, free: 0, allocated: 1 });
    expect(p.take()).not.toBe(a);
  });
});

describe('ReadBuffers', () => {
  it('hands out large buffers up to the byte cap, small ones beyond, and never allocates more large ones', () => {
    const r = new ReadBuffers(1000, 100, 2500, 1000);
    const taken = Array.from({ length: 6 }, () => r.take());
    expect(taken.map((b) => b.length)).toEqual([1000, 1000, 100, 100, 100, 100]);
    expect(r.stats().liveBytes).toBe(2000 + 400);
    for (const b of taken) r.give(b);
    const again = Array.from({ length: 6 }, () => r.take());
    expect(r.stats().large.allocated).toBe(2);
    expect(r.stats().small.allocated).toBe(4);
    r.drop(again[0]!);
    for (const b of again.slice(1)) r.give(b);
    expect(r.stats().large.live + r.stats().small.live).toBe(0);
  });

  it('one size only when the small size is not smaller (a rate-limited server reads small chunks anyway)', () => {
    const r = new ReadBuffers(4096, 65536, 1 << 20, 1 << 20);
    expect(r.take().length).toBe(4096);
    expect(r.stats().large.live).toBe(0);
    expect(r.stats().small.live).toBe(1);
  });
});
