// Notices a box download that makes no progress: no newly verified block for `stallMs` (issue 10 point 6). Fed
// by the session's progress events (twice a second); one lazy timer per download, re-armed only when it fires,
// so progress costs a comparison, not a timer. Monotonic clock: a clock jump or a sleep does not fire it early.
// Once every block is verified it stands down: the final whole-file check is not a stall, however long it takes.
// Nor is a verification in flight: blocks that arrived and are being hashed and written (`busy`) either count as
// progress or fail (and ban their sender) soon, so the watch waits another `stallMs` for them; on a loaded machine
// a cold worker pool took over a second for the first blocks, and a complete download was given up as stalled.

export class StallWatch {
  private timer: NodeJS.Timeout | undefined;
  private lastAt = performance.now();
  /** Whether any block was verified while watched (a stall after progress starts its back-off afresh). */
  progressed = false;

  /** `verified`: the bytes already verified when the download starts (what its progress counts from). */
  constructor(
    private readonly stallMs: number,
    private readonly onStall: () => void,
    private verified: number,
    private readonly busy: () => boolean = () => false,
  ) {
    this.arm(stallMs);
  }

  /** The download's verified bytes so far, of `size`; more than last time is progress. */
  progress(verifiedBytes: number, size: number): void {
    if (verifiedBytes <= this.verified) return;
    this.verified = verifiedBytes;
    this.progressed = true;
    this.lastAt = performance.now();
    if (verifiedBytes >= size) this.stop();
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => {
      const idle = performance.now() - this.lastAt;
      if (idle >= this.stallMs && this.busy()) {
        this.arm(this.stallMs);
      } else if (idle >= this.stallMs) {
        this.timer = undefined;
        this.onStall();
      } else {
        this.arm(this.stallMs - idle);
      }
    }, ms);
    this.timer.unref();
  }
}
