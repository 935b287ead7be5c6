// Keeps one swarm's tracker informed: announces at start, then on the tracker's interval, retries on the
// backoff schedule after failures, honours 403 Retry-After, and says `event=stopped` on the way out.
// Used by the seed and get commands; all timers are unref'd so it never holds a process open.

import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { KfetchError, isKfetchError } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { Bitfield } from '../util/bitfield.js';
import { announce, type AnnounceLimits, type AnnounceResult } from './announce-client.js';
import { retryDelayMs } from './backoff.js';

/** What we tell the tracker, read afresh before every announce. */
export interface AnnounceState {
  port: number;
  progress: number;
  blocks?: { blockSize: number; bitfield: Bitfield };
}

export interface AnnouncerLimits extends AnnounceLimits {
  /** Retry delays in seconds after 1, 2, … consecutive failures (the last repeats). */
  announceRetrySchedule: readonly number[];
  /** Total deadline of the final `event=stopped` announce. */
  stopTimeoutMs: number;
}

export interface AnnouncerOptions {
  url: string;
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
}

/** Retry jitter: each delay is scaled by a factor in [0.75, 1.25). */
const JITTER = 0.25;

export class Announcer {
  private readonly opts: AnnouncerOptions;
  private readonly limits: AnnouncerLimits;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private controller = new AbortController();
  private started = false;
  private stopped = false;
  private announcedOk = false;
  private failures = 0;
  private nextAt: number | undefined;

  constructor(opts: AnnouncerOptions) {
    this.opts = opts;
    this.limits = { ...LIMITS, stopTimeoutMs: 3000, ...opts.limits };
  }

  /** Announce now, then keep announcing on the reply's interval. Calling it twice does nothing. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.schedule(0);
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

  /** Consecutive failed announces so far. */
  get failureCount(): number {
    return this.failures;
  }

  /**
   * Cancel timers and any announce in flight, then (if an announce ever succeeded) send `event=stopped` with a
   * short deadline. Never throws.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.clearTimer();
    this.controller.abort(new Error('announcer stopped'));
    await this.inFlight?.catch(() => {});
    if (!this.announcedOk) return;
    try {
      const s = this.opts.state();
      await announce({
        ...this.request(s),
        event: 'stopped',
        timeouts: { idleMs: this.limits.stopTimeoutMs, totalMs: this.limits.stopTimeoutMs },
      });
      this.opts.log?.debug({ tracker: this.opts.url }, 'announce: stopped sent');
    } catch (err) {
      this.opts.log?.debug({ tracker: this.opts.url, err: errText(err) }, 'announce: stopped not delivered');
    }
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

  private request(s: AnnounceState): Parameters<typeof announce>[0] {
    return {
      url: this.opts.url,
      port: s.port,
      progress: s.progress,
      ...(s.blocks === undefined ? {} : { blocks: s.blocks }),
      ...(this.opts.ip === undefined ? {} : { ip: this.opts.ip }),
      ...(this.opts.peerId === undefined ? {} : { peerId: this.opts.peerId }),
      limits: this.limits,
    };
  }

  private async run(): Promise<void> {
    let next: number;
    try {
      const result = await announce({ ...this.request(this.opts.state()), signal: this.controller.signal });
      if (this.stopped) return;
      this.failures = 0;
      this.announcedOk = true;
      next = result.intervalMs;
      if (result.warning !== undefined) this.opts.log?.warn({ tracker: this.opts.url, warning: result.warning }, 'tracker warning');
      if (result.dropped > 0) this.opts.log?.debug({ tracker: this.opts.url, dropped: result.dropped }, 'tracker: bad peer entries dropped');
      this.opts.log?.debug({ tracker: this.opts.url, peers: result.peers.length, nextMs: next }, 'announce: ok');
      this.safeCall(() => this.opts.onPeers?.(result));
    } catch (err) {
      if (this.stopped) return;
      const kerr = isKfetchError(err)
        ? err
        : new KfetchError('KF_E_TRACKER_UNREACHABLE', `announce failed: ${errText(err)}`, { cause: err });
      this.failures++;
      next = retryDelayMs(this.failures, this.limits.announceRetrySchedule, this.opts.random, JITTER);
      const asked = kerr.detail?.retryAfterMs;
      if (kerr.code === 'KF_E_TRACKER_BACKOFF' && typeof asked === 'number') next = Math.max(next, asked);
      this.opts.log?.warn({ tracker: this.opts.url, code: kerr.code, failures: this.failures, retryInMs: next }, kerr.message);
      this.safeCall(() => this.opts.onError?.(kerr));
    }
    this.schedule(next);
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

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
