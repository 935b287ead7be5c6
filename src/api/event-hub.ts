// The control API's Server-Sent Events hub (docs/api.md "Event stream"): it numbers and formats the box's events
// once, keeps the last ones for Last-Event-ID resume, coalesces per key, and writes to every attached stream; a
// stream that holds too much unsent is dropped, so the box's memory stays bounded whatever a client does. The API
// server hands it GET /api/v1/events requests (after auth) and the box publishes into it.
//
// Consistency: attach() builds the snapshot, gives it the next id, writes it and joins the stream to the live set
// in one synchronous step, so every event published before is in the snapshot's state (publish after the state
// changed) and every event published after reaches the stream, each with a higher id. A held (coalesced) event
// goes out after the snapshot too: its record is the latest one published, the same the snapshot shows.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { KfetchError } from '../errors.js';
import { EventRing } from './event-ring.js';
import { KeyCoalescer } from './key-coalescer.js';
import { HEARTBEAT, checkEventType, formatMessage, parseLastEventId } from './sse-format.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Defaults (docs/api.md), each with its reason; every one can be set through EventHubOptions. */
export const EVENT_HUB_DEFAULTS = {
  /** Resume buffer length: the documented 4,096 events (about 4 s of a busy 1,000-kascade box). */
  bufferEvents: 4096,
  /** Resume buffer bytes, whichever bound is hit first: 4,096 whole records of ~2 KiB fit. */
  bufferBytes: 8 * MiB,
  /** Unsent bytes one stream may hold before it is dropped as a slow consumer. */
  clientMaxBytes: 1 * MiB,
  /** Streams at once (each may hold clientMaxBytes): 64 MiB at worst. */
  maxClients: 64,
  /** Per-key window: at most 4 events a second per key. */
  coalesceMs: 250,
  /** A comment this often keeps proxies and idle timeouts from closing a quiet stream. */
  heartbeatMs: 15_000,
  /** A live event larger than this is refused (a bug: records are ~2 KiB); it would drop every stream. */
  maxEventBytes: 256 * KiB,
  /**
   * The first write (snapshot or resumed events) may be larger than clientMaxBytes; it gets this long to drain
   * below clientMaxBytes before the usual bound applies, so a stalled reader cannot keep a big snapshot forever.
   */
  burstDrainMs: 30_000,
  /**
   * A snapshot is shared by the streams that attach within this long of it while nothing was published: a
   * reconnect storm (64 tabs after a restart) builds and holds one, not 64.
   */
  snapshotShareMs: 1_000,
  /** After close() a stream that has not taken its `dropped` message within this is destroyed. */
  closeGraceMs: 1_000,
} as const;

export interface EventHubOptions {
  /** The `snapshot` payload (an object with v:1 …), built on demand at each attach that cannot resume. */
  snapshot: () => unknown;
  /** Resume buffer length in events (default 4096); the buffer is also bounded by bufferBytes. */
  bufferEvents?: number;
  /** Resume buffer bound in bytes of formatted messages (default 8 MiB); the oldest go first past either bound. */
  bufferBytes?: number;
  /** Unsent bytes a stream may hold before it is dropped (default 1 MiB). */
  clientMaxBytes?: number;
  /** Streams at once; beyond, attach answers 503 KF_E_API_BUSY (default 64). */
  maxClients?: number;
  /** Per-key coalescing window (default 250 ms: at most 4 a second per key); 0 turns coalescing off. */
  coalesceMs?: number;
  /** Heartbeat comment interval (default 15 s). */
  heartbeatMs?: number;
  /** The first id (default Date.now() * 1000, so ids grow across restarts). */
  startId?: number;
  /** A single live event larger than this (formatted) is refused and logged (default 256 KiB). */
  maxEventBytes?: number;
  /** How long a first write larger than clientMaxBytes may take to drain (default 30 s). */
  burstDrainMs?: number;
  /** Streams attaching within this of a snapshot, with nothing published since, share it (default 1 s; 0: never). */
  snapshotShareMs?: number;
  log?: Logger;
}

export interface EventHubStats {
  /** Streams attached now. */
  clients: number;
  /** Events in the resume buffer, and their bytes. */
  buffered: number;
  bufferedBytes: number;
  /** Streams dropped because they held more than clientMaxBytes unsent. */
  droppedSlow: number;
  /** Messages written to streams (each stream counted; snapshots and resumed events included, heartbeats not). */
  sent: number;
  /** The id the next message will get. */
  nextId: number;
  /** The most unsent bytes any stream held after a write (a stream is dropped past its bound, so ≤ bound + one message). */
  peakUnsentBytes: number;
  /** Keys inside a coalescing window now. */
  pendingKeys: number;
  /** Live events refused (over maxEventBytes, or not serialisable). */
  refused: number;
  /** Snapshots built (streams attaching close together share one). */
  snapshots: number;
}

interface Stream {
  res: ServerResponse;
  onClose: () => void;
  /** Bytes of the first write beyond clientMaxBytes allowed until it drains (0 once drained or expired). */
  burst: number;
  burstUntil: number;
  remote: string;
}

export class EventHub {
  private readonly o: Required<Omit<EventHubOptions, 'log' | 'snapshot'>>;
  private readonly snapshot: () => unknown;
  private readonly log: Logger | undefined;
  private readonly ring: EventRing;
  private readonly coalescer: KeyCoalescer;
  private readonly streams = new Set<Stream>();
  private readonly heartbeat: NodeJS.Timeout;
  private nextId: number;
  private closed = false;
  private counts = { droppedSlow: 0, sent: 0, peakUnsentBytes: 0, refused: 0, snapshots: 0 };
  /** The last snapshot message while it may be shared: dropped by any publish() and once it is too old. */
  private shared: { msg: Buffer; at: number } | undefined;

  constructor(o: EventHubOptions) {
    const d = EVENT_HUB_DEFAULTS;
    const clientMaxBytes = positive(o.clientMaxBytes, d.clientMaxBytes, 'clientMaxBytes');
    const bufferBytes = positive(o.bufferBytes, d.bufferBytes, 'bufferBytes');
    this.o = {
      bufferEvents: positive(o.bufferEvents, d.bufferEvents, 'bufferEvents'),
      bufferBytes,
      clientMaxBytes,
      maxClients: positive(o.maxClients, d.maxClients, 'maxClients'),
      coalesceMs: nonNegative(o.coalesceMs, d.coalesceMs, 'coalesceMs'),
      heartbeatMs: positive(o.heartbeatMs, d.heartbeatMs, 'heartbeatMs'),
      startId: nonNegative(o.startId, Date.now() * 1000, 'startId'),
      maxEventBytes: positive(o.maxEventBytes, Math.min(d.maxEventBytes, clientMaxBytes, bufferBytes), 'maxEventBytes'),
      burstDrainMs: nonNegative(o.burstDrainMs, d.burstDrainMs, 'burstDrainMs'),
      snapshotShareMs: nonNegative(o.snapshotShareMs, d.snapshotShareMs, 'snapshotShareMs'),
    };
    this.snapshot = o.snapshot;
    this.log = o.log;
    this.nextId = this.o.startId;
    if (this.o.maxEventBytes > bufferBytes) {
      throw new KfetchError('KF_E_INTERNAL', 'EventHubOptions.maxEventBytes must not exceed bufferBytes', { field: 'maxEventBytes' });
    }
    this.ring = new EventRing(this.o.bufferEvents, bufferBytes);
    this.coalescer = new KeyCoalescer(this.o.coalesceMs, (type, data) => this.emit(type, data));
    this.heartbeat = setInterval(() => this.beat(), this.o.heartbeatMs);
    this.heartbeat.unref();
  }

  /**
   * Queue an event. With `key` (e.g. `kascade.changed:<id>`), events of one key coalesce: the first of a quiet key
   * goes out at once, later ones within coalesceMs of it collapse into the latest, which goes out when the window
   * ends (see key-coalescer.ts). Without a key: sent at once. Order holds within a key, not across: publish every
   * event about one thing under its key (`kascade.added|changed|removed` of one kascade under `kascade:<id>`), or a
   * held `changed` goes out after an unkeyed `removed` and brings the kascade back in the reader's view; under one
   * key the `removed` replaces the held `changed`. Throws KF_E_INTERNAL for a malformed type (a bug);
   * an event that cannot be serialised or is over maxEventBytes is logged and refused, never thrown.
   */
  publish(type: string, data: unknown, key?: string): void {
    if (this.closed) return;
    checkEventType(type);
    this.shared = undefined; // the state moved on: the next stream needs a new snapshot
    if (key === undefined) this.emit(type, data);
    else this.coalescer.offer(key, type, data);
  }

  /**
   * Take over a request/response as an event stream: 200 text/event-stream (no-store, no compression or proxy
   * buffering), then the events after Last-Event-ID if all are still buffered, else a fresh snapshot (new id), then
   * live events. Returns false when it answered an error instead: 503 KF_E_API_BUSY at maxClients or after
   * close(), 500 KF_E_INTERNAL when the snapshot cannot be built.
   */
  attach(req: IncomingMessage, res: ServerResponse): boolean {
    if (this.closed) return refuse(res, 503, 'KF_E_API_BUSY', 'the box is stopping');
    if (this.streams.size >= this.o.maxClients) {
      return refuse(res, 503, 'KF_E_API_BUSY', `too many event-stream clients (at most ${this.o.maxClients})`);
    }
    if (res.destroyed || req.socket.destroyed) return false; // gone already: its 'close' will not come again
    const first = this.firstWrite(parseLastEventId(req.headers['last-event-id']));
    if (first === undefined) return refuse(res, 500, 'KF_E_INTERNAL', 'the event-stream snapshot could not be built');

    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
      Connection: 'keep-alive',
    });
    res.socket?.setNoDelay(true);
    const s: Stream = {
      res,
      onClose: () => this.forget(s),
      burst: 0,
      burstUntil: performance.now() + this.o.burstDrainMs,
      remote: `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`,
    };
    res.once('close', s.onClose);
    this.streams.add(s);
    // The first write may exceed clientMaxBytes (a big snapshot, a long resume): allowed on top, until it drains.
    s.burst = first.msgs.reduce((n, m) => n + m.length, 0);
    if (first.msgs.length === 0) res.flushHeaders(); // resumed with nothing missed: the headers go out now
    this.log?.debug({ remote: s.remote, resumed: first.resumed, clients: this.streams.size }, 'event stream attached');
    for (const m of first.msgs) if (!this.write(s, m)) break;
    return true;
  }

  /** Close every stream (each gets `dropped` {reason: 'box stopping'}, best effort) and stop the timers. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.coalescer.close();
    this.shared = undefined;
    const bye = formatMessage(undefined, 'dropped', { v: 1, reason: 'box stopping' });
    const left: ServerResponse[] = [];
    for (const s of this.streams) {
      s.res.off('close', s.onClose);
      if (!s.res.destroyed) {
        s.res.end(bye);
        left.push(s.res);
      }
    }
    this.streams.clear();
    if (left.length === 0) return;
    // A stream that cannot take the last message (a stalled reader) would hold its socket: destroy what is left.
    setTimeout(() => {
      for (const res of left) if (!res.destroyed && !res.writableFinished) res.destroy();
    }, EVENT_HUB_DEFAULTS.closeGraceMs).unref();
  }

  stats(): EventHubStats {
    return {
      clients: this.streams.size,
      buffered: this.ring.size,
      bufferedBytes: this.ring.bytes,
      droppedSlow: this.counts.droppedSlow,
      sent: this.counts.sent,
      nextId: this.nextId,
      peakUnsentBytes: this.counts.peakUnsentBytes,
      pendingKeys: this.coalescer.openKeys,
      refused: this.counts.refused,
      snapshots: this.counts.snapshots,
    };
  }

  /** What a new stream gets first: the buffered events after `lastId` when none was lost, else a new snapshot. */
  private firstWrite(lastId: number | undefined): { msgs: Buffer[]; resumed: boolean } | undefined {
    // Resumable: the id was handed out by this hub (≥ startId, < nextId) and nothing after it left the buffer.
    if (lastId !== undefined && lastId >= this.o.startId && lastId < this.nextId && lastId >= this.ring.droppedUpTo) {
      return { msgs: this.ring.after(lastId), resumed: true };
    }
    const now = performance.now();
    if (this.shared !== undefined && now - this.shared.at <= this.o.snapshotShareMs) return { msgs: [this.shared.msg], resumed: false };
    let msg: Buffer;
    try {
      msg = formatMessage(this.nextId, 'snapshot', this.snapshot());
    } catch (err) {
      this.log?.error({ err }, 'event stream: snapshot failed');
      return undefined;
    }
    this.nextId++;
    this.counts.snapshots++;
    // Shared as is: its id is below every event still to come, and no event came between it and a later attach.
    this.shared = this.o.snapshotShareMs > 0 ? { msg, at: now } : undefined;
    return { msgs: [msg], resumed: false };
  }

  /** Number, format, buffer and send one event to every stream. Never throws. */
  private emit(type: string, data: unknown): void {
    let msg: Buffer;
    try {
      msg = formatMessage(this.nextId, type, data);
    } catch (err) {
      this.counts.refused++;
      this.log?.error({ err, type }, 'event stream: event not serialisable, not sent');
      return;
    }
    if (msg.length > this.o.maxEventBytes) {
      this.counts.refused++;
      this.log?.error({ type, bytes: msg.length, max: this.o.maxEventBytes }, 'event stream: event too large, not sent');
      return;
    }
    this.nextId++;
    this.ring.push(this.nextId - 1, msg);
    for (const s of this.streams) this.write(s, msg);
  }

  private beat(): void {
    if (this.shared !== undefined && performance.now() - this.shared.at > this.o.snapshotShareMs) this.shared = undefined;
    for (const s of this.streams) this.write(s, HEARTBEAT, false);
  }

  /**
   * Write `msg` to `s`, then drop `s` if it now holds more unsent than allowed: the bound is checked after each
   * write, so a stream never holds more than its bound plus one message. False when `s` was dropped.
   */
  private write(s: Stream, msg: Buffer, count = true): boolean {
    if (s.res.destroyed) return false;
    s.res.write(msg);
    if (count) this.counts.sent++;
    const unsent = s.res.writableLength;
    if (unsent > this.counts.peakUnsentBytes) this.counts.peakUnsentBytes = unsent;
    if (s.burst > 0 && (unsent <= this.o.clientMaxBytes || performance.now() > s.burstUntil)) s.burst = 0;
    if (unsent <= this.o.clientMaxBytes + s.burst) return true;
    this.counts.droppedSlow++;
    this.log?.warn({ reason: 'slow consumer', remote: s.remote, unsentBytes: unsent, maxBytes: this.o.clientMaxBytes }, 'event stream dropped');
    this.forget(s);
    s.res.destroy(); // nothing more is written: the `dropped` message could not get through anyway
    return false;
  }

  private forget(s: Stream): void {
    s.res.off('close', s.onClose);
    this.streams.delete(s);
  }
}

/** Answer `status` with the API's JSON error body; returns false (attach's "not attached"). */
function refuse(res: ServerResponse, status: number, code: string, message: string): false {
  const body = JSON.stringify({ v: 1, error: { code, message } });
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  };
  if (status === 503) headers['Retry-After'] = 5;
  res.writeHead(status, headers);
  res.end(body);
  return false;
}

function positive(v: number | undefined, dflt: number, name: string): number {
  const n = v ?? dflt;
  if (!Number.isSafeInteger(n) || n <= 0) throw new KfetchError('KF_E_INTERNAL', `EventHubOptions.${name} must be a positive integer, got ${String(v)}`, { field: name });
  return n;
}

function nonNegative(v: number | undefined, dflt: number, name: string): number {
  const n = v ?? dflt;
  if (!Number.isSafeInteger(n) || n < 0) throw new KfetchError('KF_E_INTERNAL', `EventHubOptions.${name} must be an integer >= 0, got ${String(v)}`, { field: name });
  return n;
}
