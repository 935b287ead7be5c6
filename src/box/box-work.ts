// The seeding box's background work, kept so stop() can wait for all of it (issue 10 point 7: every stop path
// settles). Each promise here settles, never rejects: an error that escaped its own handling is logged as a bug.
// Used by seed-box.ts.

import type { Logger } from 'pino';
import { errorText } from './entry-facts.js';

export class BoxWork {
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly log: Logger) {}

  /** Keep `p` until it settles. */
  track(p: Promise<unknown> | undefined): void {
    if (p !== undefined) void this.tracked(p);
  }

  /** `p`, kept until it settles, settling once it has. */
  tracked(p: Promise<unknown>): Promise<void> {
    const t: Promise<void> = p
      .then(() => undefined)
      .catch((err: unknown) => this.log.error({ err: errorText(err) }, 'box: internal error'))
      .finally(() => this.running.delete(t));
    this.running.add(t);
    return t;
  }

  /**
   * Wait until everything kept (and `also`) settled, or `deadlineMs`; resolves with what was still running then (0:
   * all settled). The bound is a ref'ed timer: with nothing else left on the event loop, an unref'ed one would let
   * the process exit mid-await (exit 13).
   */
  async settled(also: Promise<unknown>, deadlineMs: number): Promise<number> {
    let bound: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all([...this.running, also]), new Promise((res) => (bound = setTimeout(res, deadlineMs)))]);
    clearTimeout(bound);
    return this.running.size;
  }
}
