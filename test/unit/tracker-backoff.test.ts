// Unit tests of the announcer's pure timing rules: the retry policy (fast window, then exponential back-off up to a
// cap, with jitter), Retry-After parsing, and the spread of many swarms' first announces. Seeded randomness only.
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/limits.js';
import { RETRY_RESET, nextRetry, retryAfterMs, spreadStartDelayMs, type RetryPolicy, type RetryState } from '../../src/tracker/backoff.js';
import { seeded } from '../helpers/seeded.js';


const mid = (): number => 0.5;

const defaults: RetryPolicy = {
  fastWindowMs: LIMITS.announceFastWindowMs,
  fastScheduleSeconds: LIMITS.announceFastRetrySchedule,
  backoffBaseMs: LIMITS.announceBackoffBaseMs,
  backoffMaxMs: LIMITS.announceBackoffMaxMs,
  jitter: LIMITS.announceRetryJitter,
};

/** Delays of a failure run at the given times since the first announce. */
function run(times: number[], policy: RetryPolicy, random: () => number): number[] {
  let state: RetryState = RETRY_RESET;
  return times.map((t) => {
    const step = nextRetry(state, t, policy, random);
    state = step.state;
    return step.delayMs;
  });
}

describe('nextRetry', () => {
  it('retries on the fast schedule inside the window, the last step repeating', () => {
    expect(run([0, 5_000, 15_000, 35_000, 65_000, 95_000, 179_999], defaults, mid)).toEqual([
      5_000, 10_000, 20_000, 30_000, 30_000, 30_000, 30_000,
    ]);
  });

  it('after the window, starts at the base and doubles per failure up to the cap', () => {
    const t = 180_000;
    expect(run([t, t + 1, t + 2, t + 3, t + 4, t + 5, t + 6, t + 7, t + 8], defaults, mid)).toEqual([
      60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000, 3_150_000, 3_150_000, 3_150_000,
    ]);
    // Capped steps are drawn from [cap × 0.75, cap): the middle is 3,150,000, the top the cap itself.
    expect(nextRetry({ failures: 20, lateFailures: 20 }, 1e7, defaults, () => 1).delayMs).toBe(3_600_000);
  });

  it('a run that began in the window goes on exponentially after it, from the base, not from the run length', () => {
    // Eight fast failures, then the window closes: the ninth waits the base, not base × 2^8.
    const times = [0, 5e3, 15e3, 35e3, 65e3, 95e3, 125e3, 155e3, 185e3, 245e3];
    const delays = run(times, defaults, mid);
    expect(delays.slice(0, 8)).toEqual([5e3, 10e3, 20e3, 30e3, 30e3, 30e3, 30e3, 30e3]);
    expect(delays.slice(8)).toEqual([60e3, 120e3]);
  });

  it('counts the run in its state and starts over from RETRY_RESET', () => {
    const a = nextRetry(RETRY_RESET, 0, defaults, mid);
    expect(a.state).toEqual({ failures: 1, lateFailures: 0 });
    const b = nextRetry(a.state, 200_000, defaults, mid);
    expect(b.state).toEqual({ failures: 2, lateFailures: 1 });
    expect(nextRetry(RETRY_RESET, 200_000, defaults, mid).delayMs).toBe(60_000);
  });

  it('keeps jitter within ±jitter of each step and never above the cap (seeded, 20 runs of 30 failures)', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const random = seeded(seed);
      let state: RetryState = RETRY_RESET;
      let t = 0;
      for (let i = 0; i < 30; i++) {
        const want = nextRetry(state, t, defaults, mid); // the un-jittered centre
        const got = nextRetry(state, t, defaults, random);
        expect(got.state).toEqual(want.state);
        const centre = Math.min(want.delayMs, defaults.backoffMaxMs);
        if (want.delayMs < defaults.backoffMaxMs / (1 + defaults.jitter)) {
          expect(got.delayMs).toBeGreaterThanOrEqual(Math.floor(centre * 0.75));
          expect(got.delayMs).toBeLessThanOrEqual(Math.ceil(centre * 1.25));
        } else {
          // Near the cap: drawn from [cap × 0.75, cap].
          expect(got.delayMs).toBeGreaterThanOrEqual(defaults.backoffMaxMs * 0.75);
        }
        expect(got.delayMs).toBeLessThanOrEqual(defaults.backoffMaxMs);
        state = got.state;
        t += got.delayMs;
      }
    }
  });

  it('uses the extremes of the jitter range and spreads values across it', () => {
    const p = { ...defaults, fastScheduleSeconds: [20] };
    expect(nextRetry(RETRY_RESET, 0, p, () => 0).delayMs).toBe(15_000);
    expect(nextRetry(RETRY_RESET, 0, p, () => 0.999999)).toMatchObject({ delayMs: 25_000 });
    const random = seeded(42);
    const xs = Array.from({ length: 2000 }, () => nextRetry(RETRY_RESET, 0, p, random).delayMs);
    expect(Math.min(...xs)).toBeLessThan(15_500);
    expect(Math.max(...xs)).toBeGreaterThan(24_500);
    // Roughly uniform: each half of the range holds 40–60% of the draws.
    const low = xs.filter((x) => x < 20_000).length;
    expect(low).toBeGreaterThan(800);
    expect(low).toBeLessThan(1200);
  });

  it('at the cap, many swarms do not pile up on one value', () => {
    const random = seeded(7);
    const late: RetryState = { failures: 50, lateFailures: 40 };
    const xs = Array.from({ length: 1000 }, () => nextRetry(late, 1e9, defaults, random).delayMs);
    expect(new Set(xs).size).toBeGreaterThan(900);
    expect(Math.max(...xs)).toBeLessThanOrEqual(3_600_000);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(2_700_000);
  });

  it('survives absurd run lengths and refuses an empty schedule', () => {
    expect(nextRetry({ failures: 1e9, lateFailures: 1e9 }, 1e12, defaults, mid).delayMs).toBe(3_150_000);
    expect(() => nextRetry(RETRY_RESET, 0, { ...defaults, fastScheduleSeconds: [] }, mid)).toThrow(RangeError);
  });
});

describe('spreadStartDelayMs', () => {
  const bounds = { perItemMs: LIMITS.announceSpreadPerKascadeMs, maxMs: LIMITS.announceSpreadMaxMs };

  it.each([
    [1, 20],
    [10, 200],
    [2000, 40_000],
    [3000, 60_000],
    [100_000, 60_000],
  ])('n = %d spreads over %d ms, each swarm in its own slot', (n, windowMs) => {
    const random = seeded(n);
    const slot = windowMs / n;
    const xs: number[] = [];
    for (let i = 0; i < n; i++) {
      const d = spreadStartDelayMs(i, n, random, bounds);
      expect(d).toBeGreaterThanOrEqual(Math.floor(i * slot));
      expect(d).toBeLessThan(Math.max(1, windowMs));
      expect(d).toBeLessThanOrEqual(Math.floor((i + 1) * slot));
      xs.push(d);
    }
    if (n >= 2000) {
      // Uniform over the window: a tenth of it holds about a tenth of the swarms.
      const first = xs.filter((x) => x < windowMs / 10).length;
      expect(first / n).toBeGreaterThan(0.08);
      expect(first / n).toBeLessThan(0.12);
    }
  });

  it('stays inside the window at the random extremes and for out-of-range input', () => {
    expect(spreadStartDelayMs(0, 10, () => 0, bounds)).toBe(0);
    expect(spreadStartDelayMs(9, 10, () => 1, bounds)).toBe(199);
    expect(spreadStartDelayMs(50, 10, () => 0.5, bounds)).toBeLessThan(200);
    expect(spreadStartDelayMs(-3, 10, () => 0.5, bounds)).toBeLessThan(20);
    expect(spreadStartDelayMs(0, 0, () => 0.5, bounds)).toBeLessThan(20);
    expect(spreadStartDelayMs(0, 1, () => 0.5, { perItemMs: 0, maxMs: 0 })).toBe(0);
  });

  it('uses LIMITS by default and Math.random if none is given', () => {
    const d = spreadStartDelayMs(1999, 2000);
    expect(d).toBeGreaterThanOrEqual(39_980);
    expect(d).toBeLessThan(40_000);
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
