// Pure parser of a tracker's announce reply (SPEC §2): body bytes in, validated peers and the announce
// interval out, or a KfetchError. Bad entries are dropped and counted, never fatal. Used by announce-client.ts.
// A reply over the client's cap is read by OverlongReplyReader instead (issue 10 point 11): it keeps the complete
// entries of a SPEC array one by one, so one oversized (hostile) entry costs its own place, not the honest peers.

import { KfetchError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { canonicalIp, judgeAddress } from '../util/address-policy.js';
import { peerKey, type PeerInfo } from '../peer/peer-info.js';
import { isHex } from '../util/hex.js';

export interface ParsedReply {
  peers: PeerInfo[];
  /** Announce interval, clamped; the default when the tracker named none (a bare array names none). */
  intervalMs: number;
  /** Entries refused: malformed, not an IP literal, refused address, bad port, or duplicate. */
  dropped: number;
  /** A tracker's `warning` text, if any (the caller logs it). */
  warning?: string;
}

export interface ParseReplyOptions {
  /** Accept loopback peers (only when the tracker's own host is loopback). */
  allowLoopback: boolean;
  peersPerReply?: number;
  intervalMinMs?: number;
  intervalMaxMs?: number;
  intervalDefaultMs?: number;
  /** The reply's `X-Kascade-Interval` header (seconds), used when the body names no interval (a bare array). */
  headerInterval?: string;
  /** Bitfield hex kept over all peers of one reply; later peers are kept without theirs (default LIMITS.trackerReplyMaxBytes). */
  blocksBudget?: number;
}

const PORT_TEXT_RE = /^[1-9][0-9]{0,4}$/;
/** Longest `blocks` hex kept from a reply entry: a bitfield of LIMITS.maxBlocksPerSize blocks. */
const MAX_BLOCKS_HEX = (LIMITS.maxBlocksPerSize / 8) * 2;
/** Longest reply entry read whole by OverlongReplyReader: the longest bitfield plus room for the other fields. */
const ENTRY_MAX_BYTES = MAX_BLOCKS_HEX + 4096;

function badBody(message: string, cause?: unknown): KfetchError {
  return new KfetchError('KF_E_TRACKER_RESPONSE', `tracker reply: ${message}`, cause === undefined ? {} : { cause });
}

/**
 * Parse a reply body. Accepts a JSON array of peers (SPEC) or an object with a `peers` array and optional
 * `interval` (seconds). An object with `failure reason` (or only `error`) is a refusal.
 * @throws KfetchError KF_E_TRACKER_RESPONSE (not a peer list) or KF_E_TRACKER_REFUSED (failure reason).
 */
export function parseTrackerReply(body: Uint8Array | string, opts: ParseReplyOptions): ParsedReply {
  const peersPerReply = opts.peersPerReply ?? LIMITS.peersPerReply;
  const intervalDefaultMs = opts.intervalDefaultMs ?? LIMITS.announceIntervalDefaultMs;
  const intervalMinMs = opts.intervalMinMs ?? LIMITS.announceIntervalMinMs;
  const intervalMaxMs = opts.intervalMaxMs ?? LIMITS.announceIntervalMaxMs;

  let text: string;
  if (typeof body === 'string') text = body;
  else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(body);
    } catch (err) {
      throw badBody('not UTF-8', err);
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw badBody(text.trim() === '' ? 'empty body' : 'not JSON', err);
  }

  const clampInterval = (v: unknown): number | undefined => clampIntervalMs(v, intervalMinMs, intervalMaxMs);
  let entries: unknown[];
  let intervalMs = clampInterval(opts.headerInterval) ?? intervalDefaultMs;
  let warning: string | undefined;
  if (Array.isArray(json)) entries = json;
  else if (typeof json === 'object' && json !== null) {
    const o = json as Record<string, unknown>;
    const failure = o['failure reason'];
    if (typeof failure === 'string') {
      throw new KfetchError('KF_E_TRACKER_REFUSED', `tracker refused: ${failure.slice(0, 200)}`);
    }
    if (!Array.isArray(o.peers)) {
      if (typeof o.error === 'string') throw new KfetchError('KF_E_TRACKER_REFUSED', `tracker refused: ${o.error.slice(0, 200)}`);
      throw badBody('an object without a peers array');
    }
    entries = o.peers;
    intervalMs = clampInterval(o.interval) ?? intervalMs;
    if (typeof o.warning === 'string') warning = o.warning.slice(0, 200);
  } else throw badBody('not a JSON array of peers');

  const collector = new PeerCollector(opts);
  for (const entry of entries) {
    if (collector.full) break;
    collector.add(entry);
  }
  const out: ParsedReply = { peers: collector.peers, intervalMs, dropped: collector.dropped };
  if (warning !== undefined) out.warning = warning;
  return out;
}

/** An interval in seconds (a number, or decimal digits) as clamped ms, or undefined if it names none (also the UDP client's). */
export function clampIntervalMs(v: unknown, minMs: number, maxMs: number): number | undefined {
  const iv = typeof v === 'string' && /^[0-9]{1,10}$/.test(v) ? Number(v) : v;
  if (typeof iv !== 'number' || !Number.isFinite(iv) || iv <= 0) return undefined;
  return Math.min(Math.max(iv * 1000, minMs), maxMs);
}

/** Validated, deduplicated peers of one reply, at most peersPerReply, their bitfields within blocksBudget (HTTP and UDP replies: udp-announce-client.ts feeds it entries of the same shape). */
export class PeerCollector {
  readonly peers: PeerInfo[] = [];
  dropped = 0;
  private readonly seen = new Set<string>();
  private readonly allowLoopback: boolean;
  private readonly peersPerReply: number;
  private blocksLeft: number;

  constructor(opts: ParseReplyOptions) {
    this.allowLoopback = opts.allowLoopback;
    this.peersPerReply = opts.peersPerReply ?? LIMITS.peersPerReply;
    this.blocksLeft = opts.blocksBudget ?? LIMITS.trackerReplyMaxBytes;
  }

  get full(): boolean {
    return this.peers.length >= this.peersPerReply;
  }

  add(entry: unknown): void {
    const peer = parseEntry(entry, this.allowLoopback);
    if (peer === undefined) {
      this.dropped++;
      return;
    }
    const key = peerKey(peer.ip, peer.port);
    if (this.seen.has(key)) {
      this.dropped++;
      return;
    }
    this.seen.add(key);
    if (peer.blocks !== undefined) {
      // Past the budget a peer is still worth having: its /blocks says what it holds.
      if (peer.blocks.length > this.blocksLeft) {
        delete peer.blocks;
        delete peer.blocksize;
      } else this.blocksLeft -= peer.blocks.length;
    }
    this.peers.push(peer);
  }
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;

/**
 * Reads a reply too long for the cap as a SPEC array, byte by byte, keeping each complete top-level entry (read
 * whole while it is at most ENTRY_MAX_BYTES; a longer one is skipped and counted dropped). Memory: one entry plus
 * the peers kept. The caller feeds chunks until push() says enough (the array ended, or peersPerReply kept) or its
 * own byte bound is reached, then calls finish(). Lenient on purpose: a reply cut anywhere yields what came whole.
 */
export class OverlongReplyReader {
  private readonly collector: PeerCollector;
  private readonly opts: ParseReplyOptions;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private started = false;
  private ended = false;
  /** Nesting depth inside the current entry (0 between entries, or inside a top-level scalar or string). */
  private depth = 0;
  private inString = false;
  private escape = false;
  private inEntry = false;
  private parts: Uint8Array[] = [];
  private entryBytes = 0;
  private oversized = false;

  constructor(opts: ParseReplyOptions) {
    this.opts = opts;
    this.collector = new PeerCollector(opts);
  }

  /**
   * Feed the next bytes. Returns true when no more are needed.
   * @throws KfetchError KF_E_TRACKER_RESPONSE if the body is not a JSON array.
   */
  push(chunk: Uint8Array): boolean {
    let start = this.inEntry ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      if (this.ended || this.collector.full) return true;
      const c = chunk[i]!;
      if (!this.started) {
        if (WS.has(c)) continue;
        if (c !== 0x5b) throw badBody('over the cap and not a JSON array');
        this.started = true;
        continue;
      }
      if (this.inString) {
        if (this.escape) this.escape = false;
        else if (c === BACKSLASH) this.escape = true;
        else if (c === QUOTE) {
          this.inString = false;
          if (this.depth === 0) this.endEntry(chunk, start, i + 1);
        }
        continue;
      }
      if (!this.inEntry) {
        if (WS.has(c) || c === COMMA) continue;
        if (c === 0x5d) {
          this.ended = true;
          return true;
        }
        this.inEntry = true;
        start = i;
        if (c === 0x7b || c === 0x5b) this.depth = 1;
        else if (c === QUOTE) this.inString = true;
        continue;
      }
      if (c === QUOTE) this.inString = true;
      else if (this.depth === 0) {
        // A top-level scalar ends before white space, a comma or the closing bracket.
        if (WS.has(c) || c === COMMA || c === 0x5d) {
          this.endEntry(chunk, start, i);
          if (c === 0x5d) {
            this.ended = true;
            return true;
          }
        }
      } else if (c === 0x7b || c === 0x5b) this.depth++;
      else if (c === 0x7d || c === 0x5d) {
        this.depth--;
        if (this.depth === 0) this.endEntry(chunk, start, i + 1);
      }
    }
    if (this.inEntry) this.keep(chunk.subarray(start));
    return this.ended || this.collector.full;
  }

  /**
   * The peers kept from the `readBytes` bytes read of a reply over `capBytes`, with a warning saying so.
   * @throws KfetchError KF_E_TRACKER_RESPONSE if not one complete entry came.
   */
  finish(readBytes: number, capBytes: number): ParsedReply {
    const { peers, dropped } = this.collector;
    const complete = peers.length + dropped;
    if (complete === 0) {
      throw badBody(`over the ${capBytes}-byte cap, and its first ${readBytes} bytes hold no complete peer entry`);
    }
    const { intervalMinMs = LIMITS.announceIntervalMinMs, intervalMaxMs = LIMITS.announceIntervalMaxMs } = this.opts;
    const intervalMs =
      clampIntervalMs(this.opts.headerInterval, intervalMinMs, intervalMaxMs) ?? this.opts.intervalDefaultMs ?? LIMITS.announceIntervalDefaultMs;
    return {
      peers,
      intervalMs,
      dropped,
      warning: `reply over the ${capBytes}-byte cap: kept ${peers.length} peers of the entries in its first ${readBytes} bytes (${dropped} dropped)`,
    };
  }

  private keep(part: Uint8Array): void {
    if (this.oversized) return;
    this.entryBytes += part.length;
    if (this.entryBytes > ENTRY_MAX_BYTES) {
      this.oversized = true;
      this.parts = [];
      return;
    }
    // A copy: the caller's chunk may be reused once push returns.
    this.parts.push(Uint8Array.from(part));
  }

  private endEntry(chunk: Uint8Array, start: number, end: number): void {
    if (!this.oversized) {
      this.entryBytes += end - start;
      if (this.entryBytes > ENTRY_MAX_BYTES) this.oversized = true;
    }
    if (this.oversized) this.collector.dropped++;
    else {
      const whole = Buffer.concat([...this.parts, chunk.subarray(start, end)]);
      let entry: unknown;
      try {
        entry = JSON.parse(this.decoder.decode(whole));
      } catch {
        entry = undefined; // not JSON, or not UTF-8: one bad entry, dropped like any other
      }
      this.collector.add(entry);
    }
    this.inEntry = false;
    this.depth = 0;
    this.parts = [];
    this.entryBytes = 0;
    this.oversized = false;
  }
}

/** One reply entry, or undefined if it must be dropped. */
function parseEntry(entry: unknown, allowLoopback: boolean): PeerInfo | undefined {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return undefined;
  const e = entry as Record<string, unknown>;
  if (typeof e.ip !== 'string') return undefined;
  const ip = canonicalIp(e.ip);
  if (ip === undefined || judgeAddress(ip, { allowLoopback }) !== 'ok') return undefined;
  // Ports as numbers (SPEC) or, from lenient trackers, canonical decimal strings.
  const port = typeof e.port === 'string' && PORT_TEXT_RE.test(e.port) ? Number(e.port) : e.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;

  const progress = typeof e.progress === 'number' && Number.isFinite(e.progress) ? Math.min(Math.max(e.progress, 0), 1) : 0;
  const peer: PeerInfo = { ip, port, progress, feeder: e.feeder === true };
  if (typeof e.updated === 'string' && e.updated.length <= 64) peer.updated = e.updated;
  // Extension (issue 14): the peer's wire port, on the same address. A bad value drops the key, not the peer: the
  // peer is still reachable over HTTP, where its own X-Kascade-Wire header can say the same.
  const wire = typeof e.wire === 'string' && PORT_TEXT_RE.test(e.wire) ? Number(e.wire) : e.wire;
  if (typeof wire === 'number' && Number.isInteger(wire) && wire >= 1 && wire <= 65535) peer.wire = wire;
  if (
    typeof e.blocks === 'string' &&
    e.blocks.length % 2 === 0 &&
    e.blocks.length <= MAX_BLOCKS_HEX &&
    isHex(e.blocks) &&
    typeof e.blocksize === 'number' &&
    Number.isInteger(e.blocksize) &&
    e.blocksize >= LIMITS.minBlockSize &&
    e.blocksize <= LIMITS.maxBlockSize
  ) {
    peer.blocks = e.blocks.toLowerCase();
    peer.blocksize = e.blocksize;
  }
  return peer;
}
