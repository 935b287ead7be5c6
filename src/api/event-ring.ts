// The event stream's resume buffer: the last messages sent (already formatted, shared by every stream that writes
// them), bounded both in count and in bytes, oldest dropped first. Used by event-hub.ts.

export class EventRing {
  private readonly ids: number[];
  private readonly msgs: (Buffer | undefined)[];
  private head = 0; // index of the oldest entry
  private count = 0;
  private totalBytes = 0;
  /** The highest id ever dropped from the ring (-1 while none was). */
  private evictedMax = -1;

  constructor(
    private readonly maxEvents: number,
    private readonly maxBytes: number,
  ) {
    this.ids = new Array<number>(maxEvents).fill(0);
    this.msgs = new Array<Buffer | undefined>(maxEvents).fill(undefined);
  }

  get size(): number {
    return this.count;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** The highest id dropped so far, -1 if none: a reader who saw less than this has missed something. */
  get droppedUpTo(): number {
    return this.evictedMax;
  }

  /** Append message `msg` with `id` (ids must grow), dropping the oldest ones past either bound. */
  push(id: number, msg: Buffer): void {
    if (this.count === this.maxEvents) this.dropOldest();
    const at = (this.head + this.count) % this.maxEvents;
    this.ids[at] = id;
    this.msgs[at] = msg;
    this.count++;
    this.totalBytes += msg.length;
    // Bounded: each turn drops one of at most maxEvents entries. The newest always stays (one event is never over
    // the byte bound: the hub refuses events over its per-event cap, which is below it).
    while (this.totalBytes > this.maxBytes && this.count > 1) this.dropOldest();
  }

  /** Every message with an id above `afterId`, oldest first (an empty list when none). */
  after(afterId: number): Buffer[] {
    // Binary search for the first entry with id > afterId (ids grow along the ring).
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.ids[(this.head + mid) % this.maxEvents] ?? 0) > afterId) hi = mid;
      else lo = mid + 1;
    }
    const out: Buffer[] = [];
    for (let i = lo; i < this.count; i++) {
      const m = this.msgs[(this.head + i) % this.maxEvents];
      if (m !== undefined) out.push(m);
    }
    return out;
  }

  private dropOldest(): void {
    const m = this.msgs[this.head];
    this.totalBytes -= m?.length ?? 0;
    this.evictedMax = this.ids[this.head] ?? this.evictedMax;
    this.msgs[this.head] = undefined;
    this.head = (this.head + 1) % this.maxEvents;
    this.count--;
  }
}
