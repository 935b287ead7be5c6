// The block server's upload rate limit: one token bucket in bytes/s shared by every response, and when tokens run
// short the waiting responses are served round-robin by client address (FIFO within one), so N busy clients each get
// about rate/N whatever number of connections each opens. Used by block-server.ts before each chunk it writes.
// Bookkeeping plus one unref'd refill timer; no I/O. The rate may change at run time (the API's `maxUpload`), also
// from and to 0 (no limit); see setRate for how the balance carries over.

/** Bounds of an UploadRate. */
export interface UploadRateOptions {
  /** Sustained rate, bytes per second; 0 is no limit. */
  bytesPerSec: number;
  /** Bucket size: bytes that may go out at once after an idle spell (> 0 under a limit). */
  burstBytes: number;
  /** Monotonic clock in ms (tests may pass their own). */
  now?: () => number;
}

interface Waiter {
  client: ClientQueue;
  bytes: number;
  onGrant: (bytes: number) => void;
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
  private rate: number;
  private burst: number;
  private readonly ring = new Map<string, ClientQueue>();
  private waitingNow = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(opts: UploadRateOptions) {
    checkRate(opts.bytesPerSec, opts.burstBytes);
    this.now = opts.now ?? (() => performance.now());
    this.rate = opts.bytesPerSec;
    this.burst = opts.burstBytes;
    this.tokens = opts.burstBytes;
    this.last = this.now();
  }

  /** The rate now, bytes/s (0: no limit). */
  get bytesPerSec(): number {
    return this.rate;
  }

  /**
   * Change the rate now. The balance carries over in bytes (capped at the new burst), so raising the rate forgives
   * no debt (no burst); a debt under a lowered rate is shortened to what the old rate would have taken to repay it
   * (a debt is at most about one chunk of the old rate, and repaid at a rate 1,000 times lower it would stall every
   * response for minutes). From no limit the bucket starts empty: the new rate holds from this moment. To no limit
   * every waiter goes at once. Waiters asleep on the old rate's timer are rescheduled on the new one, and those
   * that asked for more than `maxGrantBytes` (a chunk sized for the old rate) are granted only that much: the
   * caller sends what onGrant says.
   */
  setRate(bytesPerSec: number, burstBytes: number, maxGrantBytes = burstBytes): void {
    checkRate(bytesPerSec, burstBytes);
    if (bytesPerSec > 0 && !(maxGrantBytes > 0)) throw new RangeError(`maxGrantBytes must be positive, got ${maxGrantBytes}`);
    const old = this.rate;
    if (old > 0) this.refill();
    this.last = this.now();
    this.rate = bytesPerSec;
    this.burst = burstBytes;
    this.stop();
    if (bytesPerSec === 0) return this.grantAll();
    for (const q of this.ring.values()) for (const w of q.queue) w.bytes = Math.min(w.bytes, maxGrantBytes);
    if (old === 0) this.tokens = 0;
    else if (this.tokens < 0) this.tokens *= Math.min(1, bytesPerSec / old);
    else this.tokens = Math.min(burstBytes, this.tokens);
    this.schedule();
  }

  /**
   * Take `bytes` for `client`. Returns undefined when granted at once; otherwise the request waits its round-robin
   * turn, `onGrant` is called later (from a timer) with the bytes granted (`bytes`, or fewer after setRate lowered
   * the rate), and the returned function withdraws it (no-op once granted).
   */
  take(client: string, bytes: number, onGrant: (bytes: number) => void): (() => void) | undefined {
    if (this.rate === 0) return undefined;
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
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.rate) / 1000);
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
      waiter.onGrant(waiter.bytes);
    }
    this.schedule();
  }

  /** No limit any more: every waiter goes now, round-robin order kept. */
  private grantAll(): void {
    const waiters: Waiter[] = [];
    while (this.ring.size > 0) {
      const q = this.ring.values().next().value!;
      waiters.push(q.queue.shift()!);
      this.ring.delete(q.address);
      if (q.queue.length > 0) this.ring.set(q.address, q);
    }
    this.waitingNow = 0;
    for (const w of waiters) w.onGrant(w.bytes);
  }

  private schedule(): void {
    if (this.timer !== undefined || this.waitingNow === 0 || this.rate === 0) return;
    // Until the balance is positive again (at least 1 ms, so a tiny debt does not spin).
    const ms = Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.rate));
    this.timer = setTimeout(() => this.pump(), ms);
    this.timer.unref();
  }
}

function checkRate(bytesPerSec: number, burstBytes: number): void {
  if (!Number.isFinite(bytesPerSec) || bytesPerSec < 0) throw new RangeError(`bytesPerSec must be >= 0, got ${bytesPerSec}`);
  if (bytesPerSec > 0 && !(burstBytes > 0 && Number.isFinite(burstBytes))) throw new RangeError(`burstBytes must be positive, got ${burstBytes}`);
}

/**
 * The chunk size to stream with under a rate limit: about `chunkMs` worth of the rate, so one chunk never waits
 * seconds for tokens, within [minBytes, maxBytes].
 */
export function chunkBytesFor(bytesPerSec: number, chunkMs: number, minBytes: number, maxBytes: number): number {
  return Math.max(minBytes, Math.min(maxBytes, Math.floor((bytesPerSec * chunkMs) / 1000)));
}
