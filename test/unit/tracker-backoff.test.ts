// Unit tests of the announcer's pure timing rules: retry schedule with jitter and Retry-After parsing.
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/limits.js';
import { retryAfterMs, retryDelayMs } from '../../src/tracker/backoff.js';

describe('retryDelayMs', () => {
  const mid = (): number => 0.5;
  it('follows the schedule, the last step repeating', () => {
    const s = LIMITS.announceRetrySchedule;
    expect([1, 2, 3, 4, 5, 6, 7, 100].map((f) => retryDelayMs(f, s, mid))).toEqual([
      20_000, 300_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 7_200_000, 7_200_000,
    ]);
  });

  it('keeps the jitter within ±25%', () => {
    expect(retryDelayMs(1, [20], () => 0)).toBe(15_000);
    expect(retryDelayMs(1, [20], () => 0.999999)).toBeCloseTo(25_000, -1);
    for (let i = 0; i < 1000; i++) {
      const d = retryDelayMs(1, [20]);
      expect(d).toBeGreaterThanOrEqual(15_000);
      expect(d).toBeLessThanOrEqual(25_000);
    }
  });

  it('treats 0 or negative failures as the first step and refuses an empty schedule', () => {
    expect(retryDelayMs(0, [1, 2], mid)).toBe(1000);
    expect(() => retryDelayMs(1, [], mid)).toThrow(RangeError);
  });
});

describe('retryAfterMs', () => {
  const bounds = { defaultMs: 60_000, minMs: 1000, maxMs: 3_600_000 };
  const now = Date.parse('2024-01-01T00:00:00Z');
  it.each([
    [undefined, 60_000],
    ['', 60_000],
    ['garbage', 60_000],
    ['-5', 60_000],
    ['1.5', 60_000],
    ['120', 120_000],
    ['0', 1000],
    ['99999999', 3_600_000],
    ['Mon, 01 Jan 2024 00:02:00 GMT', 120_000],
    ['Sun, 31 Dec 2023 23:00:00 GMT', 1000],
  ] as const)('%s -> %d ms', (header, want) => {
    expect(retryAfterMs(header, now, bounds)).toBe(want);
  });
});
