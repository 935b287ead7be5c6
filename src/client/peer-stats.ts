// What one download knows of each peer's behaviour: measured throughput, requests in flight, strikes, backoff
// and ban. Decides how many requests a peer may have in flight and how long one may take. Pure apart from `now`.

export interface PeerStatsOptions {
  /** Requests in flight per peer: start, floor and ceiling. */
  initialSlots: number;
  minSlots: number;
  maxSlots: number;
  /** Keep at least this much transfer time queued at each peer, at its per-request rate. */
  targetQueueMs: number;
  /**
   * …and at least this many times the bytes the peer's measured throughput delivers in its shortest recent request
   * time (its bandwidth-delay product): over 1, the count grows while added requests still add throughput (a peer
   * whose time is latency) and settles once they only queue (a peer whose limit is bandwidth).
   */
  bdpGain: number;
  /** Throughput is measured over windows of at least this long (and at least two request times). */
  rateWindowMs: number;
  /** The shortest request time is forgotten at this pace: it may rise by 100% per this many ms. */
  minLatencyAgingMs: number;
  /** Request deadline bounds, and the factor over the peer's recent block time. */
  minDeadlineMs: number;
  maxDeadlineMs: number;
  deadlineFactor: number;
  /** Strikes (timeouts, short bodies, errors) before a peer is dropped for the session. */
  maxStrikes: number;
  /** First backoff after a failure; doubles per consecutive failure, capped. */
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export const DEFAULT_PEER_STATS: PeerStatsOptions = {
  initialSlots: 4,
  minSlots: 1,
  maxSlots: 32,
  targetQueueMs: 400,
  bdpGain: 2,
  rateWindowMs: 50,
  minLatencyAgingMs: 10_000,
  minDeadlineMs: 5_000,
  maxDeadlineMs: 60_000,
  deadlineFactor: 8,
  maxStrikes: 8,
  backoffBaseMs: 1_000,
  backoffMaxMs: 30_000,
};

export class PeerStats {
  readonly addr: string;
  /** Where we learned of it (tracker, kascade, cli, …): shown by the box's API. */
  source = '';
  /** Blocks from it that failed their MD5 check. */
  badBlocks = 0;
  inFlight = 0;
  /** Bytes of slab its requests in flight hold (the scheduler's share of the memory in flight). */
  inFlightBytes = 0;
  strikes = 0;
  consecutiveFailures = 0;
  banned: string | undefined;
  backoffUntil = 0;
  bytesReceived = 0;
  /** Of `bytesReceived`, the bytes that came over the binary peer wire (the rest came over HTTP). */
  wireBytes = 0;
  /** False once the peer refused a multi-block range (an original Kascade peer); undefined until then. */
  multiBlock: boolean | undefined;
  /**
   * True when nobody claimed what the peer holds (no bitfield from it or the tracker; /blocks not offered) and it is
   * assumed to hold everything: its "not here" answers are then not lies and earn no strike.
   */
  assumedHeld = false;
  /** True once a tracker reply said what the peer holds (a bitfield, or complete); a late /blocks failure keeps it. */
  trackerClaimed = false;
  /** "Not here" answers (404/416/a shorter range) it gave while only assumed to hold everything. */
  notHere = 0;
  blocksOk = 0;
  /** Bytes per millisecond, exponentially weighted; undefined until the first block. */
  private rate: number | undefined;
  /** Milliseconds per request, exponentially weighted. */
  private latency: number | undefined;
  /** Bytes per request, exponentially weighted. */
  private reqBytes: number | undefined;
  /** The shortest recent request time and when it was measured (it ages, see minLatencyAgingMs). */
  private minLatency: number | undefined;
  private minLatencyAt = 0;
  /** Bytes per ms delivered by all of the peer's requests together: the best recent window, decaying. */
  private throughput: number | undefined;
  private windowStart: number | undefined;
  private windowBytes = 0;
  private readonly opts: PeerStatsOptions;

  constructor(addr: string, opts: PeerStatsOptions = DEFAULT_PEER_STATS) {
    this.addr = addr;
    this.opts = opts;
  }

  /** Bytes per millisecond, undefined before any block arrived. */
  get bytesPerMs(): number | undefined {
    return this.rate;
  }

  /** The peer's throughput as a whole (all its requests together), bytes per ms; undefined until measured. */
  get throughputBytesPerMs(): number | undefined {
    return this.throughput;
  }

  /** Milliseconds per request, exponentially weighted; undefined before any block arrived. */
  get latencyMs(): number | undefined {
    return this.latency;
  }

  /** Bytes per second, 0 before any block arrived. */
  get bytesPerSecond(): number {
    return (this.rate ?? 0) * 1000;
  }

  /** Bytes per request, exponentially weighted; undefined before any block arrived. */
  get requestBytes(): number | undefined {
    return this.reqBytes;
  }

  /**
   * How many requests of `bytes` this peer may have in flight, + 1: enough to keep targetQueueMs of transfer queued at
   * its per-request rate (what a peer limited by bandwidth needs), and at least bdpGain × its bandwidth-delay product
   * (throughput of all its requests together × its shortest recent request time), which keeps growing while added
   * requests add throughput: a peer answering single 4 KiB blocks after 20 ms gets enough to cover those 20 ms.
   * Sized by the bytes of its own requests, not by a buffer slot (issue 9).
   */
  slots(bytes: number, now: number = performance.now()): number {
    if (this.rate === undefined) return this.opts.initialSlots;
    const b = Math.max(1, bytes);
    const queued = (this.rate * this.opts.targetQueueMs) / b;
    const minLatency = this.agedMinLatency(now);
    const bdp = this.throughput === undefined || minLatency === undefined ? 0 : (this.opts.bdpGain * this.throughput * minLatency) / b;
    const want = Math.ceil(Math.max(queued, bdp)) + 1;
    return Math.min(this.opts.maxSlots, Math.max(this.opts.minSlots, want));
  }

  private agedMinLatency(now: number): number | undefined {
    if (this.minLatency === undefined) return undefined;
    return this.minLatency * (1 + Math.max(0, now - this.minLatencyAt) / this.opts.minLatencyAgingMs);
  }

  usable(now: number): boolean {
    return this.banned === undefined && now >= this.backoffUntil;
  }

  /**
   * The deadline for one request of `bytes`: the peer's recent time per request × factor, clamped. A peer not yet
   * measured is judged by `swarmBytesPerMs` (the best rate seen from any peer) when there is one.
   */
  deadlineMs(bytes: number, swarmBytesPerMs?: number): number {
    const rate = this.rate ?? swarmBytesPerMs;
    const expected = rate === undefined || rate <= 0 ? undefined : Math.max(this.latency ?? 0, bytes / rate);
    const d = expected === undefined ? this.opts.maxDeadlineMs / 2 : expected * this.opts.deadlineFactor;
    return Math.min(this.opts.maxDeadlineMs, Math.max(this.opts.minDeadlineMs, d));
  }

  /** A request of `bytes` that took `ms` finished at `now` (monotonic ms). */
  success(bytes: number, ms: number, now: number = performance.now()): void {
    const r = bytes / Math.max(ms, 1);
    this.rate = this.rate === undefined ? r : this.rate * 0.7 + r * 0.3;
    this.latency = this.latency === undefined ? ms : this.latency * 0.7 + ms * 0.3;
    this.reqBytes = this.reqBytes === undefined ? bytes : this.reqBytes * 0.7 + bytes * 0.3;
    const aged = this.agedMinLatency(now);
    if (aged === undefined || ms <= aged) {
      this.minLatency = Math.max(ms, 0.1);
      this.minLatencyAt = now;
    }
    // Throughput of the peer as a whole: bytes finished per window (a window opens when its first request began).
    if (this.windowStart === undefined) {
      this.windowStart = now - ms;
      this.windowBytes = 0;
    }
    this.windowBytes += bytes;
    const span = now - this.windowStart;
    if (span >= Math.max(this.opts.rateWindowMs, 2 * this.latency)) {
      const sample = this.windowBytes / span;
      this.throughput = this.throughput === undefined ? sample : Math.max(sample, this.throughput * 0.8);
      this.windowStart = now;
      this.windowBytes = 0;
    }
    this.bytesReceived += bytes;
    this.blocksOk++;
    this.consecutiveFailures = 0;
  }

  /** A failure that is not proof of malice: strike, and back off exponentially. */
  failure(now: number, random: () => number = Math.random): void {
    this.strikes++;
    this.consecutiveFailures++;
    const base = Math.min(this.opts.backoffMaxMs, this.opts.backoffBaseMs * 2 ** (this.consecutiveFailures - 1));
    this.backoffUntil = now + base * (0.75 + random() * 0.5);
    if (this.rate !== undefined) this.rate /= 2;
    if (this.throughput !== undefined) this.throughput /= 2;
    this.windowStart = undefined;
    if (this.strikes >= this.opts.maxStrikes && this.banned === undefined) this.banned = `${this.strikes} failures`;
  }

  ban(reason: string): void {
    this.banned ??= reason;
  }
}
