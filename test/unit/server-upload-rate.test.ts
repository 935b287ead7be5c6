// The upload rate limiter without sockets, on vitest's fake clock (it fakes timers and Date, not kfetch code): the
// long-run rate, the burst, round-robin shares per client address whatever the number of streams each has open,
// withdrawal of a waiter, and the chunk size under a limit. Issue 12: the rate changes at run time, also from and to
// no limit, with the balance carried over (no debt forgiven into a burst, no stall on a debt run up at a higher rate).

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { UploadRate, chunkBytesFor } from '../../src/server/upload-rate.js';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
});
afterEach(() => {
  vi.useRealTimers();
});

/**
 * `streams` maps a client address to its number of streams; each stream asks for `chunk` bytes again as soon as it
 * is granted, for `ms` of fake time. Returns the bytes granted per client.
 */
async function run(rate: UploadRate, streams: Record<string, number>, chunk: number, ms: number): Promise<Record<string, number>> {
  const got: Record<string, number> = {};
  let stopped = false;
  const ask = (client: string): void => {
    if (stopped) return;
    const granted = (): void => {
      got[client] = (got[client] ?? 0) + chunk;
      queueMicrotask(() => ask(client));
    };
    if (rate.take(client, chunk, granted) === undefined) granted();
  };
  for (const [client, n] of Object.entries(streams)) for (let i = 0; i < n; i++) ask(client);
  // The async form runs the microtask re-asks between timer firings.
  await vi.advanceTimersByTimeAsync(ms);
  stopped = true;
  return got;
}

describe('UploadRate', () => {
  it('holds the long-run rate, after a burst of at most burstBytes (plus one chunk)', async () => {
    const rate = new UploadRate({ bytesPerSec: 1_000_000, burstBytes: 250_000, now: () => Date.now() });
    const got = await run(rate, { a: 1 }, 10_000, 10_000);
    const total = got.a ?? 0;
    // 10 s at 1 MB/s plus the initial bucket; within one chunk and one timer step.
    expect(total).toBeGreaterThanOrEqual(10_000_000 + 250_000 - 20_000);
    expect(total).toBeLessThanOrEqual(10_000_000 + 250_000 + 20_000);
  });

  it('shares the rate equally between client addresses, whatever number of streams each has', async () => {
    const rate = new UploadRate({ bytesPerSec: 1_000_000, burstBytes: 10_000, now: () => Date.now() });
    const got = await run(rate, { a: 8, b: 1, c: 2 }, 10_000, 6_000);
    const total = (got.a ?? 0) + (got.b ?? 0) + (got.c ?? 0);
    expect(total).toBeGreaterThan(5_900_000);
    expect(total).toBeLessThan(6_100_000);
    for (const c of ['a', 'b', 'c']) {
      expect((got[c] ?? 0) / total, c).toBeGreaterThan(0.3);
      expect((got[c] ?? 0) / total, c).toBeLessThan(0.37);
    }
  });

  it('serves waiters round-robin by client, FIFO within one', () => {
    const rate = new UploadRate({ bytesPerSec: 1000, burstBytes: 1, now: () => Date.now() });
    const order: string[] = [];
    expect(rate.take('a', 1000, () => order.push('first'))).toBeUndefined(); // the bucket had a token: debt now
    for (const label of ['a1', 'a2', 'a3']) rate.take('a', 1000, () => order.push(label));
    rate.take('b', 1000, () => order.push('b1'));
    rate.take('c', 1000, () => order.push('c1'));
    expect(rate.waiting).toBe(5);
    vi.advanceTimersByTime(5_100);
    expect(order).toEqual(['a1', 'b1', 'c1', 'a2', 'a3']);
    expect(rate.waiting).toBe(0);
  });

  it('a withdrawn waiter is never granted, and no timer is left when nobody waits', () => {
    const rate = new UploadRate({ bytesPerSec: 1000, burstBytes: 1, now: () => Date.now() });
    rate.take('a', 5000, () => undefined);
    const granted: string[] = [];
    const withdraw = rate.take('b', 100, () => granted.push('b'));
    expect(withdraw).toBeDefined();
    expect(vi.getTimerCount()).toBe(1);
    withdraw!();
    withdraw!();
    expect(rate.waiting).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10_000);
    expect(granted).toEqual([]);
  });

  it('refuses a negative or non-finite rate, and a limited one without a burst; 0 is no limit', () => {
    expect(() => new UploadRate({ bytesPerSec: -1, burstBytes: 1 })).toThrow(RangeError);
    expect(() => new UploadRate({ bytesPerSec: Number.NaN, burstBytes: 1 })).toThrow(RangeError);
    expect(() => new UploadRate({ bytesPerSec: Number.POSITIVE_INFINITY, burstBytes: 1 })).toThrow(RangeError);
    expect(() => new UploadRate({ bytesPerSec: 1000, burstBytes: 0 })).toThrow(RangeError);
    const free = new UploadRate({ bytesPerSec: 0, burstBytes: 0 });
    for (let i = 0; i < 100; i++) expect(free.take('a', 1 << 30, () => undefined)).toBeUndefined();
    expect(() => free.setRate(-5, 1)).toThrow(RangeError);
    expect(free.bytesPerSec).toBe(0);
  });
});

describe('UploadRate.setRate (issue 12: PATCH /settings maxUpload applied at once)', () => {
  /**
   * One client asking again for `chunk()` bytes (read at each ask, as block-server.ts sizes each chunk from the rate
   * now) as soon as it is granted. Returns the grants as [fake ms, bytes] and a stop function.
   */
  function stream(rate: UploadRate, chunk: () => number): { grants: Array<[number, number]>; stop: () => void } {
    const grants: Array<[number, number]> = [];
    let stopped = false;
    const ask = (): void => {
      if (stopped) return;
      const n = chunk();
      const granted = (g = n): void => {
        grants.push([Date.now(), g]);
        queueMicrotask(ask);
      };
      if (rate.take('a', n, granted) === undefined) granted();
    };
    ask();
    return { grants, stop: () => (stopped = true) };
  }
  const bytesIn = (g: Array<[number, number]>, from: number, to: number): number =>
    g.filter(([t]) => t >= from && t < to).reduce((sum, [, n]) => sum + n, 0);
  const chunkOf = (r: number): number => Math.max(1024, Math.floor(r * 0.05)); // as chunkBytesFor: 50 ms of the rate

  it('lowered mid-stream: from then on at most the new rate (plus one chunk), and no stall on the old debt', async () => {
    const rate = new UploadRate({ bytesPerSec: 10_000_000, burstBytes: 2_500_000, now: () => Date.now() });
    let r = 10_000_000;
    const s = stream(rate, () => chunkOf(r));
    await vi.advanceTimersByTimeAsync(2_025); // between two grants: a debt is outstanding
    const t0 = Date.now();
    r = 20_000;
    rate.setRate(r, 5_000, chunkOf(r));
    await vi.advanceTimersByTimeAsync(10_000);
    s.stop();
    const after = bytesIn(s.grants, t0 + 1, t0 + 10_000);
    // A debt of one old chunk (500 kB, 25 s at the new rate) would stall; it is repaid in the old rate's 50 ms. The
    // request waiting at the change, sized for the old rate, is granted one new chunk only.
    const firstAfter = s.grants.find(([t]) => t > t0)!;
    expect(firstAfter[0] - t0).toBeLessThanOrEqual(60);
    expect(after).toBeLessThanOrEqual(20_000 * 10 + chunkOf(20_000));
    expect(after).toBeGreaterThanOrEqual(20_000 * 10 - 2 * chunkOf(20_000));
    expect(Math.max(...s.grants.filter(([t]) => t > t0 + 100).map(([, n]) => n))).toBe(chunkOf(20_000));
  });

  it('raised mid-stream: a waiter asleep on the old timer goes at once, then the new rate holds; no debt forgiven', async () => {
    const rate = new UploadRate({ bytesPerSec: 1_000, burstBytes: 1, now: () => Date.now() });
    // A debt of 10 s at 1,000 B/s.
    expect(rate.take('a', 10_000, () => undefined)).toBeUndefined();
    const granted: number[] = [];
    rate.take('a', 1, () => granted.push(Date.now()));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(granted).toEqual([]);
    const t0 = Date.now();
    rate.setRate(3_000, 750); // 9,000 bytes of debt left, repaid at 3,000 B/s: 3 s, not 0 and not 9 s
    await vi.advanceTimersByTimeAsync(2_900);
    expect(granted).toEqual([]);
    await vi.advanceTimersByTimeAsync(200);
    expect(granted).toHaveLength(1);
    expect(granted[0]! - t0).toBeGreaterThanOrEqual(2_990);
    expect(granted[0]! - t0).toBeLessThanOrEqual(3_010);

    let r = 3_000;
    const s = stream(rate, () => chunkOf(r));
    await vi.advanceTimersByTimeAsync(2_000);
    const t1 = Date.now();
    r = 10_000_000;
    rate.setRate(r, 2_500_000, chunkOf(r));
    await vi.advanceTimersByTimeAsync(3_000);
    s.stop();
    const after = bytesIn(s.grants, t1, t1 + 3_000);
    expect(after).toBeGreaterThanOrEqual(30_000_000 - 2 * chunkOf(r));
    expect(after).toBeLessThanOrEqual(30_000_000 + chunkOf(r));
  });

  it('to no limit: every waiter goes at once, round-robin by client, and no timer is left', () => {
    const rate = new UploadRate({ bytesPerSec: 1_000, burstBytes: 1, now: () => Date.now() });
    const order: string[] = [];
    expect(rate.take('a', 100_000, () => order.push('first'))).toBeUndefined();
    for (const label of ['a1', 'a2']) rate.take('a', 1_000, () => order.push(label));
    rate.take('b', 1_000, () => order.push('b1'));
    expect(vi.getTimerCount()).toBe(1);
    rate.setRate(0, 0);
    expect(order).toEqual(['a1', 'b1', 'a2']);
    expect(rate.waiting).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    expect(rate.take('c', 1 << 30, () => order.push('never'))).toBeUndefined();
  });

  it('from no limit: the bucket starts empty, so the new rate holds from the change (no burst)', async () => {
    const rate = new UploadRate({ bytesPerSec: 0, burstBytes: 0, now: () => Date.now() });
    let r = 0;
    const s = stream(rate, () => (r === 0 ? 1_000_000 : chunkOf(r)));
    // Unlimited: every ask is granted at once; stop it after a few.
    await Promise.resolve();
    const t0 = Date.now();
    r = 100_000;
    rate.setRate(r, 25_000, chunkOf(r));
    await vi.advanceTimersByTimeAsync(5_000);
    s.stop();
    // Grants at t0 before the change went unlimited; count those after the first paced one.
    const paced = s.grants.filter(([, n]) => n === chunkOf(r));
    const bytes = paced.filter(([t]) => t < t0 + 5_000).reduce((sum, [, n]) => sum + n, 0);
    expect(bytes).toBeLessThanOrEqual(100_000 * 5 + chunkOf(r));
    expect(bytes).toBeGreaterThanOrEqual(100_000 * 5 - 2 * chunkOf(r));
    expect(paced[0]![0]).toBeGreaterThan(t0); // not granted from a full bucket at the change
  });
});

describe('chunkBytesFor', () => {
  it.each([
    [4 * 1024 * 1024, 209_715], // 50 ms of 4 MiB/s
    [100 * 1024 * 1024, 256 * 1024], // capped at the read chunk
    [1000, 1024], // floored at the minimum
  ])('%d B/s -> %d', (rate, want) => {
    expect(chunkBytesFor(rate, 50, 1024, 256 * 1024)).toBe(want);
  });
});
