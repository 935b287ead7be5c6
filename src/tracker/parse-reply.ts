// Pure parser of a tracker's announce reply (SPEC §2): body bytes in, validated peers and the announce
// interval out, or a KfetchError. Bad entries are dropped and counted, never fatal. Used by announce-client.ts.

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
}

const PORT_TEXT_RE = /^[1-9][0-9]{0,4}$/;
/** Longest `blocks` hex kept from a reply entry: a bitfield of LIMITS.maxBlocksPerSize blocks. */
const MAX_BLOCKS_HEX = (LIMITS.maxBlocksPerSize / 8) * 2;

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

  const clampInterval = (v: unknown): number | undefined => {
    const iv = typeof v === 'string' && /^[0-9]{1,10}$/.test(v) ? Number(v) : v;
    if (typeof iv !== 'number' || !Number.isFinite(iv) || iv <= 0) return undefined;
    return Math.min(Math.max(iv * 1000, intervalMinMs), intervalMaxMs);
  };
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

  const peers: PeerInfo[] = [];
  const seen = new Set<string>();
  let dropped = 0;
  for (const entry of entries) {
    if (peers.length >= peersPerReply) break;
    const peer = parseEntry(entry, opts.allowLoopback);
    if (peer === undefined) {
      dropped++;
      continue;
    }
    const key = peerKey(peer.ip, peer.port);
    if (seen.has(key)) {
      dropped++;
      continue;
    }
    seen.add(key);
    peers.push(peer);
  }
  const out: ParsedReply = { peers, intervalMs, dropped };
  if (warning !== undefined) out.warning = warning;
  return out;
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
