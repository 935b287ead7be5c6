// Plain outcome counters that one or many Announcers add to, so a seeding box can export announce metrics or show
// a status line without wrapping callbacks. Written by announcer.ts; read by whoever created the object.

import type { ErrorCode } from '../errors.js';

/** Announce outcomes, summed over every announcer given the same object. Plain fields: read them any time. */
export interface AnnounceStats {
  /** Announces answered with a peer list. */
  ok: number;
  /** Failed announces by error code. A 403 back-off is not a failure here: it is counted in `backoff403`. */
  failed: Partial<Record<ErrorCode, number>>;
  /** Announces answered 403 (the tracker asked us to wait; we did). */
  backoff403: number;
  /** `event=stopped` announces the tracker accepted (200). */
  stoppedSent: number;
  /** `event=stopped` announces not delivered: failed, timed out, or cut by stopAll's deadline before their turn. */
  stoppedFailed: number;
  /** Wall-clock time (Date.now) of the last success, for display and metrics; scheduling never reads it. */
  lastOkAtMs: number | undefined;
  /** Wall-clock time (Date.now) of the last failure or 403. */
  lastFailureAtMs: number | undefined;
}

/** A zeroed AnnounceStats to pass to many Announcers. */
export function createAnnounceStats(): AnnounceStats {
  return { ok: 0, failed: {}, backoff403: 0, stoppedSent: 0, stoppedFailed: 0, lastOkAtMs: undefined, lastFailureAtMs: undefined };
}
