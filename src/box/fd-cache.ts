// A bounded cache of read-only fds for the seeding box: a data file is opened when a request first needs it, kept
// while it is busy, closed when idle for a while or when the cache is full (least recently used first). An fd is
// never closed while a read through it is in flight, so a response can never read through a reused fd number.
// Used by box-file.ts; the box owns one cache.

import { close } from 'node:fs';

interface Entry {
  fd: number;
  /** Reads in flight through this fd. */
  refs: number;
  lastUsed: number;
  /** Closed as soon as no read holds it (evicted or invalidated while busy). */
  doomed: boolean;
}

export interface FdCacheStats {
  open: number;
  opens: number;
  closes: number;
  evictions: number;
}

export class FdCache {
  /** Insertion order is recency order: a use moves the entry to the end. */
  private readonly entries = new Map<string, Entry>();
  /** Opens in progress, so concurrent first reads of one file open it once. */
  private readonly opening = new Map<string, Promise<number>>();
  private readonly sweeper: NodeJS.Timeout;
  private counters = { opens: 0, closes: 0, evictions: 0 };
  private closed = false;

  /**
   * @param maxOpen fds kept open at most (busy ones may briefly exceed it: they close when their reads end)
   * @param idleMs an fd unused this long is closed
   */
  constructor(
    private readonly maxOpen: number,
    private readonly idleMs: number,
  ) {
    if (maxOpen < 1) throw new RangeError('maxOpen must be at least 1');
    this.sweeper = setInterval(() => this.sweep(), Math.max(50, Math.floor(idleMs / 2)));
    this.sweeper.unref();
  }

  /**
   * Run `fn` with the fd for `key`, opening it with `open` if it is not open. The fd stays open (and is not
   * closed by eviction) until `fn` settles.
   */
  async use<T>(key: string, open: () => Promise<number>, fn: (fd: number) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error('fd cache closed');
    let e = this.entries.get(key);
    if (e === undefined || e.doomed) {
      let pending = this.opening.get(key);
      if (pending === undefined) {
        pending = open().finally(() => this.opening.delete(key));
        this.opening.set(key, pending);
        const fd = await pending;
        this.counters.opens++;
        if (this.closed) {
          this.closeFd({ fd, refs: 0, lastUsed: 0, doomed: true });
          throw new Error('fd cache closed');
        }
        // Held from the start, so the trim below cannot evict the fd this very read is about to use.
        e = { fd, refs: 1, lastUsed: performance.now(), doomed: false };
        const old = this.entries.get(key);
        if (old !== undefined) this.retire(old);
        this.entries.set(key, e);
        this.trim();
        return this.run(e, fn);
      } else {
        await pending;
        e = this.entries.get(key);
        if (e === undefined) return this.use(key, open, fn);
      }
    }
    if (this.closed) throw new Error('fd cache closed');
    e.refs++;
    this.entries.delete(key);
    this.entries.set(key, e);
    return this.run(e, fn);
  }

  /** Run `fn` on a held entry; release it after, closing it if doomed and trimming if busy fds kept us over. */
  private async run<T>(e: Entry, fn: (fd: number) => Promise<T>): Promise<T> {
    e.lastUsed = performance.now();
    try {
      return await fn(e.fd);
    } finally {
      e.refs--;
      e.lastUsed = performance.now();
      if (e.doomed && e.refs === 0) this.closeFd(e);
      else if (this.entries.size > this.maxOpen) this.trim();
    }
  }

  /** Close the fd for `key` (now, or when its last read ends): the file changed and must be opened afresh. */
  invalidate(key: string): void {
    const e = this.entries.get(key);
    if (e === undefined) return;
    this.entries.delete(key);
    this.retire(e);
  }

  /** Close every fd that no read holds; busy ones close when their reads end. Stops the idle sweeper. */
  closeAll(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const e of this.entries.values()) this.retire(e);
    this.entries.clear();
  }

  stats(): FdCacheStats {
    return { open: this.entries.size, ...this.counters };
  }

  private retire(e: Entry): void {
    e.doomed = true;
    if (e.refs === 0) this.closeFd(e);
  }

  private closeFd(e: Entry): void {
    if (e.fd < 0) return;
    const fd = e.fd;
    e.fd = -1;
    this.counters.closes++;
    close(fd, () => undefined);
  }

  /** Least recently used idle fds go first while over the bound. */
  private trim(): void {
    if (this.entries.size <= this.maxOpen) return;
    for (const [key, e] of this.entries) {
      if (this.entries.size <= this.maxOpen) break;
      if (e.refs > 0) continue;
      this.entries.delete(key);
      this.counters.evictions++;
      this.retire(e);
    }
  }

  private sweep(): void {
    const cutoff = performance.now() - this.idleMs;
    for (const [key, e] of this.entries) {
      if (e.refs === 0 && e.lastUsed <= cutoff) {
        this.entries.delete(key);
        this.retire(e);
      }
    }
  }
}
