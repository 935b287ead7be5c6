// The upload rate limiter without sockets, on vitest's fake clock (it fakes timers and Date, not kfetch code): the
// long-run rate, the burst, round-robin shares per client address whatever the number of streams each has open,
// withdrawal of a waiter, and the chunk size under a limit.

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

  it('refuses a rate that is not positive', () => {
    expect(() => new UploadRate({ bytesPerSec: 0, burstBytes: 1 })).toThrow(RangeError);
    expect(() => new UploadRate({ bytesPerSec: Number.NaN, burstBytes: 1 })).toThrow(RangeError);
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
