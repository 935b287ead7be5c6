// The block server's read buffers: buffers reused across responses, so serving does not allocate (and the kernel
// does not zero-fill fresh pages for) a new buffer per chunk — that was ~10% of a seeder's CPU. A response takes
// one buffer for its whole body and gives it back once its last read and write are done. Two sizes: a large one
// (a whole ≤ 1 MiB range in one read and one write) while at most `largeMaxBytes` of them exist, else a small one,
// so the memory held is bounded overall (largeMaxBytes + one small buffer per response streaming + the small free
// list) and per response (one buffer), however many slow readers hold theirs. Used by block-server.ts.

export interface BufferPoolStats {
  /** Buffers taken and not yet given back or dropped: at most one per response streaming now. */
  live: number;
  /** Buffers waiting on the free list (≤ maxFree). */
  free: number;
  /** Buffers ever allocated (a pool that works keeps this near the peak of `live`). */
  allocated: number;
}

/** Buffers of one size; at most `maxLive` taken at once (take() says undefined beyond), `maxFree` kept for reuse. */
export class BufferPool {
  private readonly freeList: Buffer[] = [];
  private live = 0;
  private allocated = 0;

  constructor(
    readonly bufferBytes: number,
    private readonly maxFree: number,
    private readonly maxLive = Number.POSITIVE_INFINITY,
  ) {}

  /** A buffer of bufferBytes (contents undefined), or undefined when maxLive are out; give it back or drop it. */
  take(): Buffer | undefined {
    if (this.live >= this.maxLive) return undefined;
    this.live++;
    const b = this.freeList.pop();
    if (b !== undefined) return b;
    this.allocated++;
    // Its own ArrayBuffer (never a slice of Node's shared slab), so reuse cannot touch anybody else's bytes.
    return Buffer.allocUnsafeSlow(this.bufferBytes);
  }

  /** Return a buffer nothing reads into or writes from any more; beyond maxFree free ones it is left to the GC. */
  give(b: Buffer): void {
    this.live--;
    if (this.freeList.length < this.maxFree) this.freeList.push(b);
  }

  /** Forget a buffer that something may still hold (a write cut short): it is never handed out again. */
  drop(): void {
    this.live--;
  }

  stats(): BufferPoolStats {
    return { live: this.live, free: this.freeList.length, allocated: this.allocated };
  }
}

export interface ReadBuffersStats {
  large: BufferPoolStats;
  small: BufferPoolStats;
  /** Bytes of the buffers responses hold now (large and small). */
  liveBytes: number;
}

/** The two tiers: large buffers while fewer than largeMaxBytes of them are out, small ones beyond. */
export class ReadBuffers {
  private readonly large: BufferPool;
  private readonly small: BufferPool;

  constructor(largeBytes: number, smallBytes: number, largeMaxBytes: number, smallMaxFreeBytes: number) {
    const small = Math.min(smallBytes, largeBytes);
    const maxLarge = Math.max(0, Math.floor(largeMaxBytes / largeBytes));
    // Every large buffer ever allocated stays within the cap: live ones plus free ones never exceed maxLarge.
    this.large = new BufferPool(largeBytes, maxLarge, small === largeBytes ? 0 : maxLarge);
    this.small = new BufferPool(small, Math.max(1, Math.floor(smallMaxFreeBytes / small)));
  }

  /** One buffer for one response: a large one while the cap allows, else a small one. */
  take(): Buffer {
    return this.large.take() ?? this.small.take()!;
  }

  give(b: Buffer): void {
    this.poolOf(b).give(b);
  }

  drop(b: Buffer): void {
    this.poolOf(b).drop();
  }

  stats(): ReadBuffersStats {
    const large = this.large.stats();
    const small = this.small.stats();
    return { large, small, liveBytes: large.live * this.large.bufferBytes + small.live * this.small.bufferBytes };
  }

  private poolOf(b: Buffer): BufferPool {
    return b.length === this.large.bufferBytes && this.large.bufferBytes !== this.small.bufferBytes ? this.large : this.small;
  }
}
