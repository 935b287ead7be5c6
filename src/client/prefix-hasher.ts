// The whole-file SHA-256 of a download, computed while it downloads: a running hash over the file's verified
// prefix, advanced as blocks at its edge are written and MD5-verified, so the final check only hashes what is left.
// Used by download-session.ts. It reads the blocks back from the data file (page cache) on the main thread, one
// positional read at a time, and only ever reads blocks that are verified and are never written again.

import { createHash, type Hash } from 'node:crypto';

/** Bytes per read and per hash update: about 0.7 ms of SHA-256 on the event loop per step (measured, issue 4). */
export const PREFIX_READ_BYTES = 1024 * 1024;

/**
 * The share of the file that must be hashed already for finishing the prefix hash to be worth it: on the main
 * thread (async reads) it hashes about 1.3× slower than a worker's full pass (measured here, 1 GiB from the page
 * cache: 1.05–1.19 s against 0.78–0.80 s), so a prefix far behind (a resumed, complete file) is left to the worker.
 */
export const PREFIX_FINISH_SHARE = 0.5;

export interface PrefixHasherOptions {
  /** File size in bytes. */
  size: number;
  blockSize: number;
  /** Whether block i is written and verified; once true it must stay true and the block's bytes unchanged. */
  isVerified: (i: number) => boolean;
  /** Positional read from the data file; returns the bytes read (fewer only at end of file). */
  read: (buf: Buffer, length: number, position: number) => Promise<number>;
  /** Bytes per read (default PREFIX_READ_BYTES). */
  readBytes?: number;
}

/** The digest of the whole file, with the bytes the hash covered (the file's size when it read back whole). */
export interface PrefixDigest {
  hex: string;
  read: number;
}

/**
 * A running SHA-256 over bytes [0, hashed) of the data file. `hashed` only advances over blocks that are verified
 * and contiguous from block 0. Anything uncertain (a failed or short read, `invalidate`) makes it unusable:
 * `finish` then resolves undefined and the caller hashes the whole file instead.
 */
export class PrefixHasher {
  private readonly o: PrefixHasherOptions;
  private readonly n: number;
  private hash: Hash = createHash('sha256');
  private buf: Buffer | undefined;
  /** Blocks [0, edge) are verified. */
  private edge = 0;
  /** Bytes hashed so far, always within [0, end of block edge-1]. */
  private hashedBytes = 0;
  private running: Promise<void> | undefined;
  private unusable = false;
  private stopped = false;

  constructor(o: PrefixHasherOptions) {
    if (!Number.isSafeInteger(o.size) || o.size < 0 || !Number.isSafeInteger(o.blockSize) || o.blockSize <= 0) {
      throw new RangeError(`prefix hasher: size ${o.size}, block size ${o.blockSize}`);
    }
    this.o = o;
    this.n = Math.ceil(o.size / o.blockSize);
  }

  /** Bytes of the file hashed so far. */
  get hashed(): number {
    return this.hashedBytes;
  }

  /** Whether `finish` can still give the file's digest (no failed read, not invalidated). */
  get usable(): boolean {
    return !this.unusable;
  }

  /** Whether finishing this hash is faster than a full pass over the file (usable and PREFIX_FINISH_SHARE hashed). */
  get worthFinishing(): boolean {
    return !this.unusable && !this.stopped && this.hashedBytes >= this.o.size * PREFIX_FINISH_SHARE;
  }

  /** A block became verified: move the edge over the verified blocks and hash up to it (in the background). */
  advance(): void {
    if (this.unusable || this.stopped) return;
    while (this.edge < this.n && this.o.isVerified(this.edge)) this.edge++;
    if (this.running === undefined && this.hashedBytes < this.edgeBytes()) {
      this.running = this.pump().finally(() => (this.running = undefined));
    }
  }

  /** Resolves once the hash has caught up with the verified blocks (or stopped), i.e. no read is in flight. */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  /**
   * Something hashed may have changed (a block re-verified or repaired): this hasher is done for. Resolves once a
   * read in flight has finished.
   */
  async invalidate(): Promise<void> {
    this.unusable = true;
    await this.running;
  }

  /** Stop hashing (the session ends); resolves once a read in flight has finished, so the fd can be closed. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  /**
   * Every block is verified: hash the rest and return the file's digest; undefined when this hasher is unusable or
   * a block is not verified (the caller then hashes the whole file). Rejects with the signal's reason when aborted.
   */
  async finish(signal?: AbortSignal): Promise<PrefixDigest | undefined> {
    signal?.throwIfAborted();
    this.advance();
    if (this.edge < this.n) return undefined; // not every block verified: no digest to give
    const onAbort = (): void => void (this.stopped = true);
    signal?.addEventListener('abort', onAbort);
    try {
      while (this.running !== undefined) {
        await this.running;
        this.advance(); // a pump that ended early because the edge moved on while it ran
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    signal?.throwIfAborted();
    if (this.unusable || this.stopped || this.hashedBytes !== this.o.size) return undefined;
    this.stopped = true;
    const hex = this.hash.digest('hex');
    return { hex, read: this.hashedBytes };
  }

  /** File offset just past block edge-1. */
  private edgeBytes(): number {
    return this.edge >= this.n ? this.o.size : this.edge * this.o.blockSize;
  }

  /** Read and hash sequentially until the edge, one read in flight; any failure makes the hasher unusable. */
  private async pump(): Promise<void> {
    const step = this.o.readBytes ?? PREFIX_READ_BYTES;
    this.buf ??= Buffer.allocUnsafe(Math.max(1, Math.min(step, this.o.size)));
    const buf = this.buf;
    while (!this.unusable && !this.stopped) {
      const end = this.edgeBytes();
      if (this.hashedBytes >= end) return;
      const len = Math.min(buf.length, end - this.hashedBytes);
      let got: number;
      try {
        got = await this.o.read(buf, len, this.hashedBytes);
      } catch {
        this.unusable = true; // the full pass at the end reads again and reports a real I/O error
        return;
      }
      // Checked after the read: bytes read across an invalidate() are not hashed.
      if (this.unusable || this.stopped) return;
      if (got !== len) {
        this.unusable = true; // the file is shorter than its verified blocks: leave the verdict to the full pass
        return;
      }
      this.hash.update(buf.subarray(0, len));
      this.hashedBytes += len;
    }
  }
}
