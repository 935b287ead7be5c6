// When the box tries a failed or stalled entry again: the tracker back-off rules without their fast window,
// 30 s doubling per failure up to an hour, jittered so a folder of entries that failed together does not retry
// together. Used by seed-box.ts.

import { LIMITS } from '../limits.js';
import { nextRetry, type RetryPolicy } from '../tracker/backoff.js';

const ENTRY_RETRY: RetryPolicy = {
  fastWindowMs: 0,
  fastScheduleSeconds: [LIMITS.boxRetryBaseMs / 1000],
  backoffBaseMs: LIMITS.boxRetryBaseMs,
  backoffMaxMs: LIMITS.boxRetryMaxMs,
  jitter: LIMITS.announceRetryJitter,
};

/** The wait before the next try after the `n`-th failure (or stall) in a row, n ≥ 1. */
export function entryRetryDelayMs(n: number, random: () => number = Math.random): number {
  const late = Math.max(0, n - 1);
  return nextRetry({ failures: late, lateFailures: late }, Infinity, ENTRY_RETRY, random).delayMs;
}
