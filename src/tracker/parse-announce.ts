// Pure parser of a tracker announce request's form fields (SPEC §2): field list in, a typed Announce or a
// KfetchError naming the bad field out. Used by tracker-server.ts; table-tested and fuzzed without sockets.

import { KfetchError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { canonicalIp, judgeAddress } from '../util/address-policy.js';
import { isHex, isHexOfLength } from '../util/hex.js';

/** Events a client may name; only `stopped` changes what the tracker does (it removes the caller). */
export type AnnounceEvent = 'started' | 'stopped' | 'completed';

/** A validated announce. */
export interface Announce {
  /** 1..65535, or 0 (extension): the caller accepts no connections and is never listed. */
  port: number;
  /** Fraction held, 0..1. */
  progress: number;
  /** The address the caller asks to be listed under (canonical IP literal); else the request's source. */
  ip?: string;
  /** Extension: the caller's bitfield (lowercase hex) at block size `blockSize`. */
  blocks?: { hex: string; blockSize: number };
  event?: AnnounceEvent;
  /** 64 lowercase hex. */
  peerId?: string;
  /**
   * Extension (issue 14): the port of the caller's binary peer wire, 1..65535, at the address it is listed under
   * (docs/spec-peer-wire.md "Discovery"). Canonical decimal only; anything else is refused naming `wire`.
   */
  wire?: number;
}

export interface ParseAnnounceLimits {
  minBlockSize: number;
  maxBlockSize: number;
  /** Most blocks a bitfield may describe (a longer `blocks` is refused; the swarm's geometry bounds it further). */
  maxBlocks: number;
  /** How far outside [0, 1] a progress may be and still be clamped into it (LIMITS.trackerProgressSlack). */
  progressSlack: number;
}

const DEFAULT_LIMITS: ParseAnnounceLimits = {
  minBlockSize: LIMITS.minBlockSize,
  maxBlockSize: LIMITS.maxBlockSize,
  maxBlocks: LIMITS.maxBlocksPerSize,
  progressSlack: LIMITS.trackerProgressSlack,
};

// Lenient on purpose (issue 9): original 2015 clients send `1`, `1.0`, `0.50`, numbers printed by JavaScript or
// Python (`1e-7`, `5E-1`), sometimes with a leading `+` or zeros and surrounding white space. Only what cannot be
// read as a number is refused. Values are read with Number() after this shape check (no hex, no `Infinity`).
/** A port: decimal digits, leading zeros allowed (`08000` is 8000); the 64-character cap applies first. */
const PORT_RE = /^[0-9]+$/;
/** A decimal or exponent number with an optional sign: `1`, `1.`, `.5`, `0.50`, `1e0`, `+5E-1`, `-0`. */
const PROGRESS_RE = /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
/** Longest port or progress text considered at all (before trimming). */
const NUMBER_MAX_CHARS = 64;
const SIZE_RE = /^[1-9][0-9]{0,15}$/;
/** A wire port: canonical decimal 1..65535 (only kfetch sends it, so no leniency: `0`, `+1`, ` 1`, `01` are refused). */
const WIRE_RE = /^[1-9][0-9]{0,4}$/;
const EVENTS: ReadonlySet<string> = new Set(['started', 'stopped', 'completed']);

function bad(field: string, message: string): KfetchError {
  return new KfetchError('KF_E_INPUT', `announce: ${message}`, { field, detail: { status: 400 } });
}

/**
 * Validate announce form fields. Unknown fields are ignored (original clients may send more); a known field
 * given twice is refused. `port` and `progress` are read leniently (see PROGRESS_RE); `progress` is clamped into
 * [0, 1] when within `progressSlack` of it; other fields must be in canonical form.
 * @throws KfetchError KF_E_INPUT with `field` set and `detail.status` 400.
 */
export function parseAnnounce(
  fields: Iterable<readonly [string, string]>,
  limits: ParseAnnounceLimits = DEFAULT_LIMITS,
): Announce {
  const known = new Map<string, string>();
  for (const [name, value] of fields) {
    if (!['port', 'progress', 'ip', 'blocks', 'blocksize', 'event', 'id', 'wire'].includes(name)) continue;
    if (known.has(name)) throw bad(name, `field ${name} given more than once`);
    known.set(name, value);
  }

  const portText = known.get('port');
  if (portText === undefined) throw bad('port', 'port is required');
  const portTrimmed = portText.trim();
  const port = portText.length <= NUMBER_MAX_CHARS && PORT_RE.test(portTrimmed) ? Number(portTrimmed) : NaN;
  // 0 (extension): the caller accepts no connections; the tracker lists it nowhere (tracker-server.ts).
  if (!(port >= 0 && port <= 65535)) throw bad('port', 'port must be a decimal integer 0..65535');

  const progressText = known.get('progress');
  if (progressText === undefined) throw bad('progress', 'progress is required');
  const progressTrimmed = progressText.trim();
  const raw = progressText.length <= NUMBER_MAX_CHARS && PROGRESS_RE.test(progressTrimmed) ? Number(progressTrimmed) : NaN;
  if (!Number.isFinite(raw)) throw bad('progress', 'progress must be a decimal number 0..1');
  // Rounding noise just outside [0, 1] is clamped; anything further out is probably another scale (a percentage)
  // and would make a half-done peer look complete (and a feeder), so it is refused.
  if (raw < -limits.progressSlack || raw > 1 + limits.progressSlack) throw bad('progress', 'progress must be between 0 and 1');
  const progress = Math.min(1, Math.max(0, raw));

  const out: Announce = { port, progress };

  const ipText = known.get('ip');
  if (ipText !== undefined && ipText !== '') {
    const ip = canonicalIp(ipText);
    if (ip === undefined) throw bad('ip', 'ip must be an IPv4 or IPv6 literal');
    const verdict = judgeAddress(ip, { allowLoopback: true });
    if (verdict !== 'ok') throw bad('ip', `ip is not a usable peer address (${verdict})`);
    out.ip = ip;
  }

  const blocksText = known.get('blocks');
  const blockSizeText = known.get('blocksize');
  if (blocksText !== undefined || blockSizeText !== undefined) {
    if (blocksText === undefined) throw bad('blocks', 'blocksize given without blocks');
    if (blockSizeText === undefined) throw bad('blocksize', 'blocks given without blocksize');
    // No file has more blocks at one size than the .kascade parser accepts, so no honest bitfield is longer (issue 10).
    const maxBytes = Math.ceil(limits.maxBlocks / 8);
    if (blocksText.length > maxBytes * 2) {
      throw bad('blocks', `blocks is ${Math.ceil(blocksText.length / 2)} bytes; a bitfield is at most ${maxBytes} bytes (${limits.maxBlocks} blocks)`);
    }
    if (blocksText.length % 2 !== 0 || !isHex(blocksText)) throw bad('blocks', 'blocks must be hex with an even number of digits');
    const blockSize = SIZE_RE.test(blockSizeText) ? Number(blockSizeText) : NaN;
    if (!(blockSize >= limits.minBlockSize && blockSize <= limits.maxBlockSize)) {
      throw bad('blocksize', `blocksize must be a decimal integer ${limits.minBlockSize}..${limits.maxBlockSize}`);
    }
    out.blocks = { hex: blocksText.toLowerCase(), blockSize };
  }

  const event = known.get('event');
  if (event !== undefined && event !== '') {
    if (!EVENTS.has(event)) throw bad('event', 'event must be started, stopped or completed');
    out.event = event as AnnounceEvent;
  }

  const id = known.get('id');
  if (id !== undefined) {
    if (!isHexOfLength(id, 64)) throw bad('id', 'id must be 64 hex digits');
    out.peerId = id.toLowerCase();
  }

  const wireText = known.get('wire');
  if (wireText !== undefined) {
    const wire = WIRE_RE.test(wireText) ? Number(wireText) : NaN;
    if (!(wire >= 1 && wire <= 65535)) throw bad('wire', 'wire must be a decimal port 1..65535 (the peer wire\'s port)');
    out.wire = wire;
  }
  return out;
}

/** Swarm ids in tracker paths: a 2015 filehash (64 hex) or a 2014 trackhash (32..128 hex). */
export const SWARM_PATH_RE = /^\/peers\/([0-9a-fA-F]{32,128})\.json$/;
