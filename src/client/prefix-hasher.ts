// The whole-file SHA-256 of a download, computed while it downloads: a running hash over the file's verified
// prefix, advanced as blocks at its edge are written and MD5-verified, so the final check only hashes what is left.
// Used by download-session.ts. The hashing runs in the download's SHA-256 thread (sha256-thread.ts), off the main
// thread; a run written right at the edge is hashed from its block slot before the slot is freed (no read back),
// and blocks written ahead of the edge are read back from the data file when the edge reaches them. Only blocks
// that are verified and are never written again are hashed.

import type { PrefixHashBackend } from './sha256-thread.js';

/** Bytes per read-back request to the hashing thread. */
export const PREFIX_READ_BYTES = 4 * 1024 * 1024;

/**
 * The share of the file that must be hashed already for finishing the prefix hash to be worth it: a prefix far
 * behind (a resumed, complete file) is left to a worker's full pass, which both worker threads can run while
 * nothing else is going on.
 */
export const PREFIX_FINISH_SHARE = 0.5;

export interface PrefixHasherOptions {
  /** File size in bytes. */
  size: number;
  blockSize: number;
  /** Whether block i is written and verified; once true it must stay true and the block's bytes unchanged. */
  isVerified: (i: number) => boolean;
  /** The running SHA-256 (a thread over the session's data file). The hasher closes it when it stops or finishes. */
  backend: PrefixHashBackend;
  /** Bytes per read-back request (default PREFIX_READ_BYTES). */
  readBytes?: number;
}

/** The digest of the whole file, with the bytes the hash covered (the file's size when it read back whole). */
export interface PrefixDigest {
  hex: string;
  read: number;
}

/**
 * A running SHA-256 over bytes [0, hashed) of the data file. Requests go to the hashing thread strictly in file
 * order (the thread takes them in the order sent): `requested` is where the next one starts, `hashed` what it has
 * confirmed. Only blocks that are verified and contiguous from block 0 are ever requested. Anything uncertain (a
 * failed or short read, `invalidate`) makes it unusable: `finish` then resolves undefined and the caller hashes
 * the whole file instead.
 */
export class PrefixHasher {
  private readonly o: PrefixHasherOptions;
  private readonly n: number;
  /** Blocks [0, edge) are verified. */
  private edge = 0;
  /** Bytes hashed and confirmed, always within [0, requested]. */
  private hashedBytes = 0;
  /** Bytes sent to the thread (from memory or as file reads), always within [0, end of block edge-1]. */
  private requested = 0;
  /** Requests sent and not answered. */
  private readonly inFlight = new Set<Promise<void>>();
  /** A file read is among them (at most one at a time: reads of blocks written ahead are not urgent). */
  private reading = false;
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
    this.moveEdge();
    this.readAhead();
  }

  /**
   * Blocks were just written and verified from memory that still holds them: `length` bytes at `byteOffset` of
   * `shared`, the file's bytes from `position`. When they are exactly the next bytes to request, they are hashed
   * from that memory and the returned promise settles once the memory may be reused; else this is `advance()` and
   * the bytes are read back from the file when the edge reaches them. Never rejects.
   */
  offer(position: number, shared: SharedArrayBuffer, byteOffset: number, length: number): Promise<void> | undefined {
    if (this.unusable || this.stopped) return undefined;
    this.moveEdge();
    if (length === 0 || position !== this.requested || position + length > this.edgeBytes()) {
      this.readAhead();
      return undefined;
    }
    const done = this.send(length, () => this.o.backend.hashMemory(shared, byteOffset, length).then(() => length));
    this.readAhead(); // blocks written ahead of these, now at the edge
    return done;
  }

  /** Resolves once every request sent has been answered and nothing more is to be read (or it stopped). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
  }

  /**
   * Something hashed may have changed (a block re-verified or repaired): this hasher is done for. Resolves once the
   * requests in flight have been answered.
   */
  async invalidate(): Promise<void> {
    this.unusable = true;
    await this.idle();
  }

  /** Stop hashing (the session ends); resolves once no read is in flight, so the fd can be closed. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.idle();
    await this.o.backend.close();
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
      await this.idle();
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    signal?.throwIfAborted();
    if (this.unusable || this.stopped || this.hashedBytes !== this.o.size) return undefined;
    this.stopped = true;
    try {
      const hex = await this.o.backend.digest();
      return { hex, read: this.hashedBytes };
    } catch {
      return undefined; // the caller hashes the whole file instead
    } finally {
      await this.o.backend.close();
    }
  }

  private moveEdge(): void {
    while (this.edge < this.n && this.o.isVerified(this.edge)) this.edge++;
  }

  /** File offset just past block edge-1. */
  private edgeBytes(): number {
    return this.edge >= this.n ? this.o.size : this.edge * this.o.blockSize;
  }

  /**
   * Send one request for the next `length` bytes (`hash` resolves with the bytes hashed); `requested` moves on at
   * once so later requests follow it. A failure or a short answer makes the hasher unusable.
   */
  private send(length: number, hash: () => Promise<number>): Promise<void> {
    this.requested += length;
    const p: Promise<void> = hash()
      .then(
        (got) => {
          if (got !== length) this.unusable = true; // the file is shorter than its verified blocks: the full pass decides
          else this.hashedBytes += length;
        },
        () => void (this.unusable = true), // the full pass at the end reads again and reports a real I/O error
      )
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
    return p;
  }

  /** Read back and hash the verified bytes not yet requested, one read at a time, until the edge. */
  private readAhead(): void {
    if (this.reading || this.unusable || this.stopped) return;
    const end = this.edgeBytes();
    if (this.requested >= end) return;
    const len = Math.min(this.o.readBytes ?? PREFIX_READ_BYTES, end - this.requested);
    const position = this.requested;
    this.reading = true;
    void this.send(len, () => this.o.backend.hashFile(position, len)).finally(() => {
      this.reading = false;
      this.readAhead();
    });
  }
}
