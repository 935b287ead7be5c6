// The block server's read buffers: fixed-size buffers reused across responses, so serving does not allocate (and
// the kernel does not zero-fill fresh pages for) a new buffer per chunk — that was ~10% of a seeder's CPU. A
// response takes one buffer for its whole body and gives it back once its last read and write are done; the
// free list keeps at most `maxFree`, so the memory held is bounded by the responses in flight plus `maxFree`
// buffers. Used by block-server.ts.

export interface BufferPoolStats {
  /** Buffers taken and not yet given back or dropped: at most one per response streaming now. */
  live: number;
  /** Buffers waiting on the free list (≤ maxFree). */
  free: number;
  /** Buffers ever allocated (a pool that works keeps this near the peak of `live`). */
  allocated: number;
}

export class BufferPool {
  private readonly freeList: Buffer[] = [];
  private live = 0;
  private allocated = 0;

  constructor(
    readonly bufferBytes: number,
    private readonly maxFree: number,
  ) {}

  /** A buffer of bufferBytes (contents undefined); give it back (or drop it) when done. */
  take(): Buffer {
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
