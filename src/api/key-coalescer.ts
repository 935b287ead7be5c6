// Per-key coalescing for the event stream (docs/api.md: one kascade's changes at most 4 a second). Leading edge:
// the first event of a quiet key goes out at once and opens a window of `windowMs`; events of that key inside the
// window replace each other (the latest wins) and the survivor goes out when the window ends, opening the next
// one. So a key sends at most one event per window, and a burst's last value always goes out within one window.
// One unref'ed timer serves every key. Used by event-hub.ts.

interface Held {
  type: string;
  data: unknown;
}

interface KeyWindow {
  /** performance.now() at which this key's window ends. */
  end: number;
  held: Held | undefined;
}

/** Keys tracked at most; past it a keyed event goes out at once (uncoalesced) rather than grow the map. */
export const COALESCE_MAX_KEYS = 100_000;

export class KeyCoalescer {
  /** Open windows in the order they opened, which is also the order they end (every window is windowMs long). */
  private readonly windows = new Map<string, KeyWindow>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private closed = false;

  constructor(
    private readonly windowMs: number,
    private readonly emit: (type: string, data: unknown) => void,
  ) {}

  /** Keys with an open window. */
  get openKeys(): number {
    return this.windows.size;
  }

  offer(key: string, type: string, data: unknown): void {
    if (this.closed) return;
    const w = this.windows.get(key);
    if (w !== undefined) {
      w.held = { type, data }; // latest wins; goes out when the window ends (the timer may be due already)
      return;
    }
    if (this.windows.size >= COALESCE_MAX_KEYS || this.windowMs <= 0) {
      this.emit(type, data);
      return;
    }
    this.windows.set(key, { end: performance.now() + this.windowMs, held: undefined });
    this.emit(type, data);
    this.arm();
  }

  /** Drop every held event and the timer. */
  close(): void {
    this.closed = true;
    this.windows.clear();
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    const first = this.windows.values().next();
    if (first.done === true) return;
    const at = first.value.end;
    if (this.timer !== undefined && this.timerAt <= at) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.tick(), Math.max(0, at - performance.now()));
    this.timer.unref();
  }

  private tick(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = performance.now();
    // Bounded: each turn removes an ended window from the front; a re-opened one goes to the back with an end past
    // `now`, so the walk stops when it reaches it.
    for (const [key, w] of this.windows) {
      if (w.end > now || this.closed) break;
      this.windows.delete(key);
      if (w.held === undefined) continue; // quiet for a whole window: forget the key
      this.windows.set(key, { end: now + this.windowMs, held: undefined });
      this.emit(w.held.type, w.held.data);
    }
    if (!this.closed) this.arm();
  }
}
