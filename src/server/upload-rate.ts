// The block server's upload rate limit: one token bucket in bytes/s shared by every response, and when tokens run
// short the waiting responses are served round-robin by client address (FIFO within one), so N busy clients each get
// about rate/N whatever number of connections each opens. Used by block-server.ts before each chunk it writes.
// Bookkeeping plus one unref'd refill timer; no I/O.

/** Bounds of an UploadRate. */
export interface UploadRateOptions {
  /** Sustained rate, bytes per second (> 0). */
  bytesPerSec: number;
  /** Bucket size: bytes that may go out at once after an idle spell. */
  burstBytes: number;
  /** Monotonic clock in ms (tests may pass their own). */
  now?: () => number;
}

interface Waiter {
  client: ClientQueue;
  bytes: number;
  onGrant: () => void;
}

interface ClientQueue {
  address: string;
  queue: Waiter[];
}

/**
 * A token bucket that may go into debt: a chunk is granted whenever the balance is positive and its whole size is
 * taken, so chunks of any size pass and the long-run rate is exact; the next grant waits until the debt is repaid.
 */
export class UploadRate {
  private tokens: number;
  private last: number;
  private readonly ring = new Map<string, ClientQueue>();
  private waitingNow = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: UploadRateOptions) {
    if (!(opts.bytesPerSec > 0)) throw new RangeError('bytesPerSec must be positive');
    this.now = opts.now ?? (() => performance.now());
    this.tokens = opts.burstBytes;
    this.last = this.now();
  }

  /**
   * Take `bytes` for `client`. Returns undefined when granted at once; otherwise the request waits its round-robin
   * turn, `onGrant` is called later (from a timer), and the returned function withdraws it (no-op once granted).
   */
  take(client: string, bytes: number, onGrant: () => void): (() => void) | undefined {
    this.refill();
    if (this.waitingNow === 0 && this.tokens > 0) {
      this.tokens -= bytes;
      return undefined;
    }
    let q = this.ring.get(client);
    if (q === undefined) {
      q = { address: client, queue: [] };
      this.ring.set(client, q);
    }
    const waiter: Waiter = { client: q, bytes, onGrant };
    q.queue.push(waiter);
    this.waitingNow++;
    this.schedule();
    return () => this.withdraw(waiter);
  }

  /** Requests waiting for tokens. */
  get waiting(): number {
    return this.waitingNow;
  }

  /** Drop the timer (the server is closing); waiters are not granted. */
  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private withdraw(waiter: Waiter): void {
    const q = waiter.client;
    const i = q.queue.indexOf(waiter);
    if (i < 0) return;
    q.queue.splice(i, 1);
    this.waitingNow--;
    if (q.queue.length === 0) this.ring.delete(q.address);
    if (this.waitingNow === 0) this.stop();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.opts.burstBytes, this.tokens + ((t - this.last) * this.opts.bytesPerSec) / 1000);
    this.last = t;
  }

  /** Grant waiters in round-robin order while the balance is positive, then sleep until it is again. */
  private pump(): void {
    this.timer = undefined;
    this.refill();
    while (this.tokens > 0) {
      const q = this.ring.values().next().value;
      if (q === undefined) return;
      const waiter = q.queue.shift()!;
      this.waitingNow--;
      this.ring.delete(q.address);
      if (q.queue.length > 0) this.ring.set(q.address, q); // to the back of the ring
      this.tokens -= waiter.bytes;
      waiter.onGrant();
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.timer !== undefined || this.waitingNow === 0) return;
    // Until the balance is positive again (at least 1 ms, so a tiny debt does not spin).
    const ms = Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.opts.bytesPerSec));
    this.timer = setTimeout(() => this.pump(), ms);
    this.timer.unref();
  }
}

/**
 * The chunk size to stream with under a rate limit: about `chunkMs` worth of the rate, so one chunk never waits
 * seconds for tokens, within [minBytes, maxBytes].
 */
export function chunkBytesFor(bytesPerSec: number, chunkMs: number, minBytes: number, maxBytes: number): number {
  return Math.max(minBytes, Math.min(maxBytes, Math.floor((bytesPerSec * chunkMs) / 1000)));
}
