// Notices a box download that makes no progress: no newly verified block for `stallMs` (issue 10 point 6). Fed
// by the session's progress events (twice a second); one lazy timer per download, re-armed only when it fires,
// so progress costs a comparison, not a timer. Monotonic clock: a clock jump or a sleep does not fire it early.

export class StallWatch {
  private verified = -1;
  private lastAt = performance.now();
  private timer: NodeJS.Timeout | undefined;
  /** Whether any block was verified while watched (a stall after progress starts its back-off afresh). */
  progressed = false;

  constructor(
    private readonly stallMs: number,
    private readonly onStall: () => void,
  ) {
    this.arm(stallMs);
  }

  /** The download's verified bytes so far (the first report is the baseline); more than last time is progress. */
  progress(verifiedBytes: number): void {
    if (this.verified < 0) {
      this.verified = verifiedBytes;
      return;
    }
    if (verifiedBytes <= this.verified) return;
    this.verified = verifiedBytes;
    this.progressed = true;
    this.lastAt = performance.now();
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => {
      const idle = performance.now() - this.lastAt;
      if (idle >= this.stallMs) {
        this.timer = undefined;
        this.onStall();
      } else {
        this.arm(this.stallMs - idle);
      }
    }, ms);
    this.timer.unref();
  }
}
