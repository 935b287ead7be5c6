// Keeps one swarm's tracker informed: announces at start (optionally after a spread delay), then on the tracker's
// interval; after failures retries fast for a short window, then with exponential back-off; honours 403 Retry-After,
// and says `event=stopped` on the way out. With several trackers (a kascade's `trackers`, docs/spec-trackers.md) it
// announces to one at a time: a failed announce (not a 403, which asks us to wait) moves the next attempt to the next
// tracker in the list, on the one retry schedule of the whole announcer (N dead trackers cost no more announces than
// one), and a tracker that answers is kept. `event=stopped` goes to the trackers that last accepted us. Many announcers can share an AnnounceQueue (bounded announces in flight)
// and an AnnounceStats (outcome counters); stopAll() tells a tracker about many of them under one deadline.
// Used by the seed and get commands; all timers are unref'd so it never holds a process open.

import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { KfetchError, isKfetchError } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { Bitfield } from '../util/bitfield.js';
import { announce as announceHttp, type AnnounceLimits, type AnnounceRequest, type AnnounceResult } from './announce-client.js';
import type { AnnounceQueue } from './announce-queue.js';
import type { AnnounceStats } from './announce-stats.js';
import { RETRY_RESET, nextRetry, type RetryPolicy, type RetryState } from './backoff.js';
import { announceUdp } from './udp-announce-client.js';

/** A `udp://` tracker (a kascade's `trackers` extension, docs/spec-udp-tracker.md) is announced to over UDP. */
function announce(req: AnnounceRequest): Promise<AnnounceResult> {
  return /^udp:/i.test(req.url) ? announceUdp(req) : announceHttp(req);
}

/** What we tell the tracker, read afresh before every announce. */
export interface AnnounceState {
  port: number;
  progress: number;
  blocks?: { blockSize: number; bitfield: Bitfield };
  /** Extension (issue 14): the port of our binary peer wire, advertised to the tracker as `wire` (HTTP trackers only). */
  wirePort?: number;
}

/** Bounds of one announcer; each defaults to the LIMITS constant of the same name (stopTimeoutMs: 3 s). */
export interface AnnouncerLimits extends AnnounceLimits {
  /** For this long after the first announce, failures retry on announceFastRetrySchedule. */
  announceFastWindowMs: number;
  /** Retry delays in seconds inside the fast window after 1, 2, … consecutive failures (the last repeats). */
  announceFastRetrySchedule: readonly number[];
  /** After the fast window: first retry delay, doubling per consecutive failure, up to announceBackoffMaxMs. */
  announceBackoffBaseMs: number;
  announceBackoffMaxMs: number;
  /** Retry delays are scaled by a random factor in [1 - jitter, 1 + jitter). */
  announceRetryJitter: number;
  /** Deadline of the final `event=stopped` announce from stop(), including any wait in the queue. */
  stopTimeoutMs: number;
}

export interface AnnouncerOptions {
  /** The tracker (a kascade's `tracker`): announced to first. */
  url: string;
  /**
   * Failover order (a kascade's `trackers`: `url` first, then the others). Repeats are dropped, and at most
   * LIMITS.kascadeTrackersMax are used. Missing: just `url`.
   */
  trackers?: readonly string[];
  state: () => AnnounceState;
  log?: Logger;
  /** Called with each successful reply. */
  onPeers?: (result: AnnounceResult) => void;
  /** Called with each failed announce (the announcer retries on its own). */
  onError?: (err: KfetchError) => void;
  limits?: Partial<AnnouncerLimits>;
  /** Random source for the retry jitter (default Math.random). */
  random?: () => number;
  ip?: string;
  peerId?: string;
  /** The first announce happens this long after start() (default 0); see spreadStartDelayMs in backoff.ts. */
  startDelayMs?: number;
  /** Shared bound on announces in flight across many announcers (default: none; each announces at once). */
  queue?: AnnounceQueue;
  /** Shared outcome counters this announcer adds to. */
  stats?: AnnounceStats;
}

export interface StopAllOptions {
  /** Everything is over by then, delivered or not (default LIMITS.announceStopAllDeadlineMs). */
  deadlineMs?: number;
  /** `event=stopped` announces in flight at once (default LIMITS.announceStopAllConcurrency). */
  concurrency?: number;
}

export interface StopAllResult {
  /** Trackers that accepted our `event=stopped`. */
  sent: number;
  /** Announcers that had announced but whose `event=stopped` failed, timed out or was cut by the deadline. */
  failed: number;
  /** Announcers with nothing to say: never announced successfully, or already stopped. */
  skipped: number;
}

/** `event=stopped` goes ahead of periodic announces waiting in a shared queue. */
const STOP_PRIORITY = 1;

export class Announcer {
  private readonly opts: AnnouncerOptions;
  private readonly limits: AnnouncerLimits;
  private readonly policy: RetryPolicy;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private controller = new AbortController();
  private started = false;
  private stopped = false;
  private announcedOk = false;
  /** Every tracker, in failover order; `current` indexes the one the next announce goes to. */
  private readonly urls: readonly string[];
  private current = 0;
  /** Trackers that accepted an announce, most recent first, at most announceStoppedTrackersMax: owed `stopped`. */
  private heard: string[] = [];
  /**
   * The tracker refused our bitfield (400 naming `blocks`: longer than its swarm's geometry, issue 10): announce
   * without it from then on, so we stay listed; downloaders read our /blocks instead.
   */
  private withoutBlocks = false;
  /** The tracker refused our `wire` (400 naming it): announce without it from then on (clients learn it from our HTTP replies). */
  private withoutWire = false;
  private retry: RetryState = RETRY_RESET;
  /** Monotonic time of the first announce: the fast retry window counts from it. */
  private firstAt: number | undefined;
  private nextAt: number | undefined;
  /** Wall-clock time of the last announce that ended (ok or not), and the last failure's `code: message`. */
  private lastAt: number | undefined;
  private lastErr: string | undefined;

  constructor(opts: AnnouncerOptions) {
    this.opts = opts;
    this.limits = { ...LIMITS, stopTimeoutMs: 3000, ...opts.limits };
    this.urls = [...new Set([opts.url, ...(opts.trackers ?? [])])].slice(0, Math.max(1, LIMITS.kascadeTrackersMax));
    this.policy = {
      fastWindowMs: this.limits.announceFastWindowMs,
      fastScheduleSeconds: this.limits.announceFastRetrySchedule,
      backoffBaseMs: this.limits.announceBackoffBaseMs,
      backoffMaxMs: this.limits.announceBackoffMaxMs,
      jitter: this.limits.announceRetryJitter,
    };
  }

  /**
   * Tell many announcers' trackers we are gone: each stops announcing at once, then those that ever announced
   * successfully send `event=stopped`, at most `concurrency` at a time (not through any shared queue), all under one
   * deadline. Resolves by the deadline even if a tracker hangs; never rejects.
   */
  static async stopAll(announcers: Iterable<Announcer>, opts: StopAllOptions = {}): Promise<StopAllResult> {
    const deadlineMs = Math.max(0, opts.deadlineMs ?? LIMITS.announceStopAllDeadlineMs);
    const concurrency = Math.max(1, Math.floor(opts.concurrency ?? LIMITS.announceStopAllConcurrency));
    const deadline = AbortSignal.timeout(deadlineMs);
    const all = [...new Set(announcers)];
    // Owed a stopped: announced successfully and not stopped yet. Known now: halt() marks each one stopped
    // synchronously, so an announce still in flight can no longer count as a success.
    const toTell = all.filter((a) => !a.stopped && a.announcedOk);
    const skipped = all.length - toTell.length;
    // Halt every one before telling any, so none starts a periodic announce while the others are told.
    const halting = all.filter((a) => !a.stopped).map((a) => a.halt());
    let sent = 0;
    let started = 0;
    const work = async (): Promise<void> => {
      await Promise.all(halting);
      const worker = async (): Promise<void> => {
        while (started < toTell.length && !deadline.aborted) {
          const a = toTell[started++]!;
          if (await a.sendStopped(deadline, false)) sent++;
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, toTell.length) }, worker));
    };
    let onDeadline: (() => void) | undefined;
    try {
      await Promise.race([
        work(),
        new Promise<void>((resolve) => {
          onDeadline = resolve;
          if (deadline.aborted) resolve();
          else deadline.addEventListener('abort', onDeadline, { once: true });
        }),
      ]);
    } finally {
      if (onDeadline !== undefined) deadline.removeEventListener('abort', onDeadline);
    }
    // Those whose turn never came were not delivered either (the ones in flight count themselves as they abort).
    for (const a of toTell.slice(started)) a.countStopped(false);
    return { sent, failed: toTell.length - sent, skipped };
  }

  /** Announce (after `startDelayMs`), then keep announcing on the reply's interval. Calling it twice does nothing. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.schedule(Math.max(0, this.opts.startDelayMs ?? 0));
  }

  /** Announce at once (e.g. when our progress changed a lot); resolves when that announce is done. Never rejects. */
  announceNow(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.inFlight !== undefined) return this.inFlight;
    this.clearTimer();
    this.inFlight = this.run().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** Milliseconds (monotonic) until the next scheduled announce, or undefined if none is scheduled. */
  get nextAnnounceInMs(): number | undefined {
    return this.nextAt === undefined ? undefined : Math.max(0, this.nextAt - performance.now());
  }

  /** The tracker the next announce goes to (with failover, the one that last answered, or the next to try). */
  get url(): string {
    return this.urls[this.current]!;
  }

  /** Every tracker this announcer may use, in failover order. */
  get trackers(): readonly string[] {
    return this.urls;
  }

  /** What the box's API shows: the current tracker, when it was last heard (ms since epoch), the next announce, the last error. */
  get facts(): { url: string; lastAnnounceAt: number | undefined; nextAnnounceAt: number | undefined; lastError: string | undefined } {
    const inMs = this.nextAnnounceInMs;
    return { url: this.url, lastAnnounceAt: this.lastAt, nextAnnounceAt: inMs === undefined ? undefined : Date.now() + inMs, lastError: this.lastErr };
  }

  /** Consecutive failed announces so far (a 403 counts). */
  get failureCount(): number {
    return this.retry.failures;
  }

  /**
   * Cancel timers and any announce in flight or queued, then (if an announce ever succeeded) send `event=stopped`
   * within `stopTimeoutMs`, through the shared queue if there is one. Never throws.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    if (!(await this.halt())) return;
    await this.sendStopped(AbortSignal.timeout(this.limits.stopTimeoutMs), true);
  }

  /** Stop announcing; resolves once any announce in flight has ended, with whether `event=stopped` is owed. */
  private async halt(): Promise<boolean> {
    this.stopped = true;
    this.clearTimer();
    this.controller.abort(new Error('announcer stopped'));
    await this.inFlight?.catch(() => {});
    return this.announcedOk;
  }

  /**
   * Send `event=stopped` to the trackers that last accepted us (at most announceStoppedTrackersMax, in parallel)
   * until `signal` aborts (or stopTimeoutMs); true if any of them accepted it.
   */
  private async sendStopped(signal: AbortSignal, viaQueue: boolean): Promise<boolean> {
    const state = this.opts.state();
    const q = viaQueue ? this.opts.queue : undefined;
    const tell = async (url: string): Promise<boolean> => {
      const send = (): Promise<AnnounceResult> =>
        announce({
          ...this.request(state, url),
          event: 'stopped',
          signal,
          timeouts: { idleMs: this.limits.stopTimeoutMs, totalMs: this.limits.stopTimeoutMs },
        });
      try {
        await (q === undefined ? send() : q.run(url, send, { signal, priority: STOP_PRIORITY }));
        this.opts.log?.debug({ tracker: url }, 'announce: stopped sent');
        return true;
      } catch (err) {
        this.opts.log?.debug({ tracker: url, err: errText(err) }, 'announce: stopped not delivered');
        return false;
      }
    };
    const told = (await Promise.all(this.heard.map(tell))).some((ok) => ok);
    this.countStopped(told);
    return told;
  }

  private countStopped(sent: boolean): void {
    const s = this.opts.stats;
    if (s === undefined) return;
    if (sent) s.stoppedSent++;
    else s.stoppedFailed++;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.clearTimer();
    this.nextAt = performance.now() + delayMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.announceNow();
    }, delayMs);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.nextAt = undefined;
  }

  private request(s: AnnounceState, url: string): Parameters<typeof announce>[0] {
    return {
      url,
      port: s.port,
      progress: s.progress,
      ...(s.blocks === undefined || this.withoutBlocks ? {} : { blocks: s.blocks }),
      ...(s.wirePort === undefined || this.withoutWire ? {} : { wirePort: s.wirePort }),
      ...(this.opts.ip === undefined ? {} : { ip: this.opts.ip }),
      ...(this.opts.peerId === undefined ? {} : { peerId: this.opts.peerId }),
      limits: this.limits,
    };
  }

  private async run(): Promise<void> {
    this.firstAt ??= performance.now();
    const signal = this.controller.signal;
    const at = this.current;
    const url = this.urls[at]!;
    // The state is read when the announce really goes out, not when it joins the queue.
    const send = (): Promise<AnnounceResult> => announce({ ...this.request(this.opts.state(), url), signal });
    const q = this.opts.queue;
    let next: number;
    try {
      const result = await (q === undefined ? send() : q.run(url, send, { signal }));
      if (this.stopped) return;
      this.retry = RETRY_RESET;
      this.announcedOk = true;
      this.heard = [url, ...this.heard.filter((u) => u !== url)].slice(0, Math.max(1, LIMITS.announceStoppedTrackersMax));
      this.lastAt = Date.now();
      this.lastErr = undefined;
      next = result.intervalMs;
      this.count(undefined);
      if (result.warning !== undefined) this.opts.log?.warn({ tracker: url, warning: result.warning }, 'tracker warning');
      if (result.dropped > 0) this.opts.log?.debug({ tracker: url, dropped: result.dropped }, 'tracker: bad peer entries dropped');
      this.opts.log?.debug({ tracker: url, peers: result.peers.length, nextMs: next }, 'announce: ok');
      this.safeCall(() => this.opts.onPeers?.(result));
    } catch (err) {
      if (this.stopped) return;
      const kerr = isKfetchError(err)
        ? err
        : new KfetchError('KF_E_TRACKER_UNREACHABLE', `announce failed: ${errText(err)}`, { cause: err });
      const step = nextRetry(this.retry, performance.now() - this.firstAt, this.policy, this.opts.random);
      this.retry = step.state;
      next = step.delayMs;
      const asked = kerr.detail?.retryAfterMs;
      if (kerr.code === 'KF_E_TRACKER_BACKOFF' && typeof asked === 'number') next = Math.max(next, asked);
      let stay = kerr.code === 'KF_E_TRACKER_BACKOFF'; // the tracker works and asks us to wait: wait for it
      if (kerr.code === 'KF_E_TRACKER_REFUSED' && kerr.field === 'blocks' && !this.withoutBlocks) {
        this.withoutBlocks = true;
        next = 0; // once: the next announce carries no bitfield, so it cannot be refused for one again
        stay = true;
      }
      if (kerr.code === 'KF_E_TRACKER_REFUSED' && kerr.field === 'wire' && !this.withoutWire) {
        this.withoutWire = true;
        next = 0; // the same, for the wire port
        stay = true;
      }
      // Failover: the next attempt goes to the next tracker, on the same schedule (the delay above is per announcer).
      if (!stay && this.urls.length > 1 && this.current === at) this.current = (at + 1) % this.urls.length;
      this.count(kerr);
      this.lastAt = Date.now();
      this.lastErr = `${kerr.code}: ${kerr.message}`;
      this.opts.log?.warn({ tracker: url, code: kerr.code, failures: this.retry.failures, retryInMs: next, ...(this.url === url ? {} : { nextTracker: this.url }) }, kerr.message);
      this.safeCall(() => this.opts.onError?.(kerr));
    }
    this.schedule(next);
  }

  /** Add one announce outcome (undefined: success) to the shared stats. */
  private count(err: KfetchError | undefined): void {
    const s = this.opts.stats;
    if (s === undefined) return;
    if (err === undefined) {
      s.ok++;
      s.lastOkAtMs = Date.now();
      return;
    }
    if (err.code === 'KF_E_TRACKER_BACKOFF') s.backoff403++;
    else s.failed[err.code] = (s.failed[err.code] ?? 0) + 1;
    s.lastFailureAtMs = Date.now();
  }

  /** A throwing callback must not break the schedule. */
  private safeCall(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.opts.log?.error({ err: errText(err) }, 'announce: callback threw');
    }
  }
}

/** See Announcer.stopAll: `event=stopped` for many announcers, bounded in concurrency and time. Never rejects. */
export function stopAll(announcers: Iterable<Announcer>, opts: StopAllOptions = {}): Promise<StopAllResult> {
  return Announcer.stopAll(announcers, opts);
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
