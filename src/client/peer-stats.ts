// What one download knows of each peer's behaviour: measured throughput, requests in flight, strikes, backoff
// and ban. Decides how many requests a peer may have in flight and how long one may take. Pure apart from `now`.

export interface PeerStatsOptions {
  /** Requests in flight per peer: start, floor and ceiling. */
  initialSlots: number;
  minSlots: number;
  maxSlots: number;
  /** Aim to keep this much transfer time queued at each peer. */
  targetQueueMs: number;
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
  minDeadlineMs: 5_000,
  maxDeadlineMs: 60_000,
  deadlineFactor: 8,
  maxStrikes: 8,
  backoffBaseMs: 1_000,
  backoffMaxMs: 30_000,
};

export class PeerStats {
  readonly addr: string;
  inFlight = 0;
  strikes = 0;
  consecutiveFailures = 0;
  banned: string | undefined;
  backoffUntil = 0;
  bytesReceived = 0;
  /** False once the peer refused a multi-block range (an original Kascade peer); undefined until then. */
  multiBlock: boolean | undefined;
  blocksOk = 0;
  /** Bytes per millisecond, exponentially weighted; undefined until the first block. */
  private rate: number | undefined;
  /** Milliseconds per request, exponentially weighted. */
  private latency: number | undefined;
  private readonly opts: PeerStatsOptions;

  constructor(addr: string, opts: PeerStatsOptions = DEFAULT_PEER_STATS) {
    this.addr = addr;
    this.opts = opts;
  }

  /** Bytes per millisecond, undefined before any block arrived. */
  get bytesPerMs(): number | undefined {
    return this.rate;
  }

  /** Bytes per second, 0 before any block arrived. */
  get bytesPerSecond(): number {
    return (this.rate ?? 0) * 1000;
  }

  /** How many requests this peer may have in flight: enough to cover targetQueueMs at its measured rate. */
  slots(blockSize: number): number {
    if (this.rate === undefined) return this.opts.initialSlots;
    const want = Math.ceil((this.rate * this.opts.targetQueueMs) / blockSize) + 1;
    return Math.min(this.opts.maxSlots, Math.max(this.opts.minSlots, want));
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

  success(bytes: number, ms: number): void {
    const r = bytes / Math.max(ms, 1);
    this.rate = this.rate === undefined ? r : this.rate * 0.7 + r * 0.3;
    this.latency = this.latency === undefined ? ms : this.latency * 0.7 + ms * 0.3;
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
    if (this.strikes >= this.opts.maxStrikes && this.banned === undefined) this.banned = `${this.strikes} failures`;
  }

  ban(reason: string): void {
    this.banned ??= reason;
  }
}
