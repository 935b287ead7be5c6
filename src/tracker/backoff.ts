// Pure timing rules of the announcer: the retry delay after N failures (Transmission's schedule with
// jitter) and the wait a 403's Retry-After asks for. Used by announce-client.ts and announcer.ts.

/**
 * Delay before the next try after `failures` consecutive failures (1 = the first failure).
 * `scheduleSeconds[failures - 1]` (the last entry repeats) scaled by a uniform factor in [1 - jitter, 1 + jitter).
 */
export function retryDelayMs(
  failures: number,
  scheduleSeconds: readonly number[],
  random: () => number = Math.random,
  jitter = 0.25,
): number {
  if (scheduleSeconds.length === 0) throw new RangeError('empty retry schedule');
  const step = Math.min(Math.max(1, Math.floor(failures)), scheduleSeconds.length) - 1;
  const base = scheduleSeconds[step]! * 1000;
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(base * (1 - jitter + 2 * jitter * r));
}

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
