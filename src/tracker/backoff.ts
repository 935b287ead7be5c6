// Pure timing rules of the announcer: the retry delay after failures (a fast schedule just after start, then
// exponential back-off, both with jitter), the wait a 403's Retry-After asks for, and the spread of many swarms'
// first announces. Used by announce-client.ts and announcer.ts, and by callers that add many swarms at once.

import { LIMITS } from '../limits.js';

export interface RetryAfterBounds {
  /** Used when the header is missing or unreadable (SPEC §2: 60 s). */
  defaultMs: number;
  minMs: number;
  maxMs: number;
}

/**
 * The wait a `Retry-After` header asks for: delta-seconds (`120`) or an HTTP-date, relative to `nowMs`
 * (wall clock, since HTTP-dates are wall-clock). Missing or malformed gives the default; the result is clamped.
 */
export function retryAfterMs(header: string | undefined, nowMs: number, bounds: RetryAfterBounds): number {
  let ms = bounds.defaultMs;
  const v = header?.trim() ?? '';
  if (/^[0-9]{1,10}$/.test(v)) ms = Number(v) * 1000;
  else if (v !== '' && /[a-zA-Z]/.test(v)) {
    const at = Date.parse(v);
    if (Number.isFinite(at)) ms = at - nowMs;
  }
  return Math.min(Math.max(ms, bounds.minMs), bounds.maxMs);
}

/** The announcer's retry rules after failed announces. */
export interface RetryPolicy {
  /** For this long (monotonic ms) after the first announce, failures retry on `fastScheduleSeconds`. */
  fastWindowMs: number;
  /** Delays in seconds after 1, 2, … consecutive failures inside the fast window (the last entry repeats). */
  fastScheduleSeconds: readonly number[];
  /** After the window: the first delay, doubled for each further consecutive failure… */
  backoffBaseMs: number;
  /** …up to this; no delay (jitter included) is longer. */
  backoffMaxMs: number;
  /** Each delay is scaled by a uniform factor in [1 - jitter, 1 + jitter). */
  jitter: number;
}

/** A run of consecutive failures; start from RETRY_RESET and go back to it after a success. */
export interface RetryState {
  /** Consecutive failures. */
  readonly failures: number;
  /** Of those, the ones that happened after the fast window (the exponent of the back-off). */
  readonly lateFailures: number;
}

export const RETRY_RESET: RetryState = { failures: 0, lateFailures: 0 };

/** Doublings past which the back-off is at its cap anyway (keeps 2 ** n finite). */
const MAX_DOUBLINGS = 40;

/**
 * Account for one more failure at `sinceFirstMs` (monotonic ms since the first announce) and say how long to wait.
 * Inside the fast window the delay follows `fastScheduleSeconds` (so a tracker starting alongside us is found
 * soon); after it, `backoffBaseMs` doubling per consecutive late failure; both with jitter and at most
 * `backoffMaxMs`. A delay near the cap is drawn from [cap × (1 - jitter), cap), never piled up at the cap, so
 * many swarms failing together stay out of step.
 */
export function nextRetry(
  state: RetryState,
  sinceFirstMs: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): { delayMs: number; state: RetryState } {
  const failures = Math.max(0, state.failures) + 1;
  const late = sinceFirstMs >= policy.fastWindowMs;
  const lateFailures = Math.max(0, state.lateFailures) + (late ? 1 : 0);
  const baseMs = late
    ? policy.backoffBaseMs * 2 ** Math.min(lateFailures - 1, MAX_DOUBLINGS)
    : scheduleStepMs(failures, policy.fastScheduleSeconds);
  return { delayMs: jittered(baseMs, policy.backoffMaxMs, policy.jitter, random), state: { failures, lateFailures } };
}

/** `baseMs` scaled by a uniform factor in [1 - jitter, 1 + jitter), the range then cut at `capMs` (see nextRetry). */
function jittered(baseMs: number, capMs: number, jitter: number, random: () => number): number {
  const j = Math.min(Math.max(jitter, 0), 1);
  const hi = Math.min(baseMs * (1 + j), capMs);
  const lo = Math.min(baseMs, capMs) * (1 - j);
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(lo + (hi - lo) * r);
}

function scheduleStepMs(failures: number, scheduleSeconds: readonly number[]): number {
  if (scheduleSeconds.length === 0) throw new RangeError('empty retry schedule');
  const step = Math.min(Math.max(1, Math.floor(failures)), scheduleSeconds.length) - 1;
  return scheduleSeconds[step]! * 1000;
}

/** How the first announces of many swarms added at once are spread out. */
export interface SpreadBounds {
  /** The window grows by this per swarm… */
  perItemMs: number;
  /** …up to this. */
  maxMs: number;
}

/**
 * First-announce delay (ms, for `startDelayMs`) for the `i`-th (0-based) of `n` swarms added at once, so that
 * thousands of them do not announce in the same instant. The window min(n × perItemMs, maxMs) is cut into n equal
 * slots and swarm i gets a uniformly random point in its own slot: uniform over the window, and no clumps.
 */
export function spreadStartDelayMs(
  i: number,
  n: number,
  random: () => number = Math.random,
  bounds: SpreadBounds = { perItemMs: LIMITS.announceSpreadPerKascadeMs, maxMs: LIMITS.announceSpreadMaxMs },
): number {
  const count = Math.max(1, Math.floor(n));
  const index = Math.min(Math.max(0, Math.floor(i)), count - 1);
  const windowMs = Math.max(0, Math.min(count * bounds.perItemMs, bounds.maxMs));
  const slotMs = windowMs / count;
  const r = Math.min(Math.max(random(), 0), 1);
  // floor keeps the result inside its slot (and below the window) for r just under 1.
  return Math.min(Math.floor((index + r) * slotMs), Math.max(0, Math.ceil(windowMs) - 1));
}
