// The pure .kascade parser: bytes (or text) in, a validated Kascade or a KfetchError naming the file and the JSON
// path of the problem out. Reads the 2015 dialect and the 2014 one (SPEC §1). Used by load.ts, the state store
// (which keeps the .kascade text) and the fuzz tests.
//
// Decisions, made once:
// - Unknown keys are KEPT (SPEC §1: "kept and ignored") in `extra`, a null-prototype object, so serialize() writes
//   them back. `created by` goes there too. They are never merged into anything with spread or Object.assign.
// - Duplicate keys anywhere are refused (JSON.parse would silently keep the last one).
// - Hashes are accepted in either case and normalised to lowercase (SPEC: "accept either case on input").
// - `trackhash` / `kascadehash` set the swarm id in either dialect, so a 2014 file re-serialized as 2015 keeps its
//   swarm. A 2014 file must still carry `filehash` (kfetch always checks the whole file's SHA-256).
// - `blocksize` next to an object `blockhashes` is refused: it is not clear which dialect the file means.
// - The `trackers` extension lists failover trackers after `tracker` (docs/spec-trackers.md). Each entry passes the
//   same URL policy as `tracker`; a repeat of `tracker` or of an earlier entry (compared as parsed URLs) is refused,
//   not dropped: the writer meant something else, and a silent fix would hide it.

import { KfetchError, type ErrorCode } from '../errors.js';
import { LIMITS } from '../limits.js';
import { parsePeerAddress } from '../util/peer-address.js';
import { isHex } from '../util/hex.js';
import { decodeKascadeText } from './decode-text.js';
import { findDuplicateKey } from './duplicate-keys.js';
import { filenameProblem } from './filename.js';
import { Kascade, type Dialect } from './kascade.js';
import { trackerProblem } from './tracker-url.js';

/** Bounds the parser enforces; each defaults to LIMITS. */
export interface ParseKascadeOptions {
  minBlockSize?: number;
  maxBlockSize?: number;
  maxBlocksPerSize?: number;
  maxFilenameBytes?: number;
  /** Most entries accepted in the `peers` extension. */
  maxPeers?: number;
  /** Most tracker URLs in all: `tracker` plus the `trackers` extension. */
  maxTrackers?: number;
  /** Longest URL (bytes, UTF-8) accepted in the `trackers` extension. */
  maxTrackerUrlBytes?: number;
}

/** Keys the parser understands; everything else goes to `extra`. */
const KNOWN = new Set(['filename', 'filesize', 'filehash', 'tracker', 'trackers', 'blockhashes', 'blocksize', 'trackhash', 'kascadehash', 'peers']);

const CANONICAL_DECIMAL = /^[1-9][0-9]*$/;

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function own(o: Obj, key: string): unknown {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}

/** JSON-quote `s` (shortened), with control, bidi and invisible characters escaped so a message cannot spoof a terminal. */
function quote(s: string, max = 200): string {
  const short = s.length > max ? `${s.slice(0, max)}…` : s;
  return JSON.stringify(short).replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/gu, (c) => {
    const hex = c.codePointAt(0)!.toString(16);
    return hex.length <= 4 ? `\\u${hex.padStart(4, '0')}` : `\\u{${hex}}`;
  });
}

/** A URL for messages, with any password replaced by `***` (messages end up in logs). */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return quote(u.href);
  } catch {
    return quote(url);
  }
}

function typeName(v: unknown): string {
  if (v === undefined) return 'nothing (the key is missing)';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${quote(v, 40)}`;
  return `${typeof v} ${String(v)}`;
}

/** Byte offset of UTF-16 index `pos` in `text` (what a user can find with a hex editor). */
function byteOffset(text: string, pos: number): number {
  return Buffer.byteLength(text.slice(0, pos), 'utf8');
}

/**
 * Parse and validate a .kascade. Pure: no I/O. `file` only labels errors.
 * Throws KfetchError with code KF_E_KASCADE_{JSON,SCHEMA,SIZE,BLOCKS,HASH,NAME,TRACKER}, `file`, and `field` set to
 * the JSON path of the problem (`filesize`, `blockhashes.262144[17]`, `peers[2]`).
 */
export function parseKascade(input: Uint8Array | string, file?: string, opts: ParseKascadeOptions = {}): Kascade {
  const limits = {
    minBlockSize: opts.minBlockSize ?? LIMITS.minBlockSize,
    maxBlockSize: opts.maxBlockSize ?? LIMITS.maxBlockSize,
    maxBlocksPerSize: opts.maxBlocksPerSize ?? LIMITS.maxBlocksPerSize,
    maxFilenameBytes: opts.maxFilenameBytes ?? LIMITS.maxFilenameBytes,
    maxPeers: opts.maxPeers ?? LIMITS.peersKnownMax,
    maxTrackers: opts.maxTrackers ?? LIMITS.kascadeTrackersMax,
    maxTrackerUrlBytes: opts.maxTrackerUrlBytes ?? LIMITS.trackerUrlMaxBytes,
  };
  const fail = (code: ErrorCode, message: string, field?: string, detail?: Record<string, unknown>): KfetchError =>
    new KfetchError(code, message, {
      ...(file === undefined ? {} : { file }),
      ...(field === undefined ? {} : { field }),
      ...(detail === undefined ? {} : { detail }),
    });

  // 1. Bytes -> text -> JSON value.
  const decoded = decodeKascadeText(input);
  if (!('text' in decoded)) {
    throw fail('KF_E_KASCADE_JSON', `not a JSON .kascade: the file ${decoded.reason} (byte ${decoded.offset})`, undefined, { offset: decoded.offset });
  }
  const text = decoded.text;
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const at = /at position (\d+)/.exec(msg);
    const offset = at !== null ? byteOffset(text, Number(at[1])) : /end of JSON input/.test(msg) ? byteOffset(text, text.length) : undefined;
    throw fail(
      'KF_E_KASCADE_JSON',
      `not valid JSON${offset === undefined ? '' : ` at byte ${offset}`}: ${msg}`,
      undefined,
      offset === undefined ? undefined : { offset },
    );
  }
  const dup = findDuplicateKey(text);
  if (dup !== undefined) throw fail('KF_E_KASCADE_SCHEMA', `duplicate key ${quote(dup)}: the file says two things`, dup);
  if (!isObject(root)) throw fail('KF_E_KASCADE_SCHEMA', `the top level must be a JSON object, not ${typeName(root)}`, '');

  // 2. Required scalar fields.
  const filename = own(root, 'filename');
  if (typeof filename !== 'string') throw fail('KF_E_KASCADE_SCHEMA', `filename must be a string, got ${typeName(filename)}`, 'filename');
  const nameProblem = filenameProblem(filename, limits.maxFilenameBytes);
  if (nameProblem !== undefined) {
    const detail: Record<string, unknown> = {};
    if (nameProblem.char !== undefined) detail.char = nameProblem.char;
    if (nameProblem.position !== undefined) detail.position = nameProblem.position;
    throw fail('KF_E_KASCADE_NAME', `filename ${quote(filename, 300)} ${nameProblem.reason}; use --output to choose a name`, 'filename', detail);
  }

  const filesize = own(root, 'filesize');
  if (typeof filesize !== 'number') throw fail('KF_E_KASCADE_SCHEMA', `filesize must be a JSON number, got ${typeName(filesize)}`, 'filesize');
  if (!Number.isSafeInteger(filesize) || filesize < 0) {
    const why = !Number.isFinite(filesize) ? 'is too large to represent' : filesize < 0 ? 'is negative' : !Number.isInteger(filesize) ? 'is not a whole number' : 'is above 2^53 - 1';
    throw fail('KF_E_KASCADE_SIZE', `filesize ${String(filesize)} ${why}; it must be a safe integer >= 0`, 'filesize');
  }
  const size = filesize === 0 ? 0 : filesize; // normalise -0

  const filehash = hash(root, 'filehash', 64, 'SHA-256', fail);

  const tracker = own(root, 'tracker');
  if (typeof tracker !== 'string') throw fail('KF_E_KASCADE_SCHEMA', `tracker must be a string, got ${typeName(tracker)}`, 'tracker');
  const trackerWhy = trackerProblem(tracker);
  if (trackerWhy !== undefined) throw fail('KF_E_KASCADE_TRACKER', `tracker ${redactUrl(tracker)} ${trackerWhy}`, 'tracker');

  // 3. Block hashes, in either dialect.
  const rawBlocks = own(root, 'blockhashes');
  const blockhashes = new Map<number, readonly string[]>();
  let dialect: Dialect;
  const checkSize = (b: number, field: string, shown: string): void => {
    if (b < limits.minBlockSize || b > limits.maxBlockSize) {
      throw fail('KF_E_KASCADE_BLOCKS', `block size ${shown} is outside ${limits.minBlockSize}..${limits.maxBlockSize} bytes`, field);
    }
  };
  const checkList = (b: number, list: unknown, field: string): readonly string[] => {
    if (!Array.isArray(list)) throw fail('KF_E_KASCADE_SCHEMA', `${field} must be an array of MD5 hashes, got ${typeName(list)}`, field);
    const expected = Math.ceil(size / b);
    if (expected > limits.maxBlocksPerSize) {
      throw fail('KF_E_KASCADE_BLOCKS', `${size} bytes in blocks of ${b} is ${expected} blocks, more than the limit of ${limits.maxBlocksPerSize}`, field, {
        expected,
        limit: limits.maxBlocksPerSize,
      });
    }
    if (list.length !== expected) {
      throw fail('KF_E_KASCADE_BLOCKS', `${field} has ${list.length} hashes; ${size} bytes in blocks of ${b} need exactly ${expected}`, field, {
        expected,
        actual: list.length,
      });
    }
    const out = new Array<string>(list.length);
    for (let i = 0; i < list.length; i++) {
      const h: unknown = list[i];
      // Fast path for the millions of well-formed hashes; the slow path builds the error with its path.
      const kind = typeof h === 'string' ? hexKind(h, 32) : HEX_BAD;
      out[i] = kind === HEX_LOWER ? (h as string) : kind === HEX_MIXED ? (h as string).toLowerCase() : hashValue(h, 32, 'MD5', `${field}[${i}]`, fail);
    }
    return out;
  };

  if (Array.isArray(rawBlocks)) {
    dialect = 2014;
    const bs = own(root, 'blocksize');
    if (bs === undefined) throw fail('KF_E_KASCADE_BLOCKS', 'a 2014 .kascade (blockhashes as an array) needs a blocksize; none given', 'blocksize');
    if (typeof bs !== 'number') throw fail('KF_E_KASCADE_SCHEMA', `blocksize must be a JSON number, got ${typeName(bs)}`, 'blocksize');
    if (!Number.isSafeInteger(bs) || bs <= 0) throw fail('KF_E_KASCADE_BLOCKS', `blocksize ${String(bs)} must be a positive integer`, 'blocksize');
    checkSize(bs, 'blocksize', String(bs));
    blockhashes.set(bs, checkList(bs, rawBlocks, 'blockhashes'));
  } else if (isObject(rawBlocks)) {
    dialect = 2015;
    if (own(root, 'blocksize') !== undefined) {
      throw fail('KF_E_KASCADE_SCHEMA', 'blocksize belongs to the 2014 dialect (blockhashes as an array); with an object blockhashes the dialect is ambiguous', 'blocksize');
    }
    const keys = Object.keys(rawBlocks);
    if (keys.length === 0) throw fail('KF_E_KASCADE_BLOCKS', 'blockhashes offers no block size', 'blockhashes');
    for (const key of keys) {
      const field = `blockhashes.${key}`;
      if (!CANONICAL_DECIMAL.test(key)) {
        throw fail('KF_E_KASCADE_BLOCKS', `block size ${quote(key, 40)} is not a positive decimal integer without leading zeros`, field);
      }
      const b = key.length > 16 ? Number.POSITIVE_INFINITY : Number(key);
      checkSize(b, field, key.length > 16 ? `${key.slice(0, 16)}…` : key);
      blockhashes.set(b, checkList(b, rawBlocks[key], field));
    }
  } else if (rawBlocks === undefined) {
    throw fail('KF_E_KASCADE_SCHEMA', 'blockhashes is missing', 'blockhashes');
  } else {
    throw fail('KF_E_KASCADE_SCHEMA', `blockhashes must be an object (2015) or an array (2014), got ${typeName(rawBlocks)}`, 'blockhashes');
  }

  // 4. Swarm id: trackhash / kascadehash (2014 style) replace filehash in URLs.
  let swarmId = filehash;
  const trackhash = optionalSwarmHash(root, 'trackhash', fail);
  const kascadehash = optionalSwarmHash(root, 'kascadehash', fail);
  if (trackhash !== undefined && kascadehash !== undefined && trackhash !== kascadehash) {
    throw fail('KF_E_KASCADE_SCHEMA', 'trackhash and kascadehash are both given and differ; the swarm id is ambiguous', 'kascadehash');
  }
  swarmId = trackhash ?? kascadehash ?? swarmId;

  // 5. Extensions.
  const peers = parsePeers(own(root, 'peers'), limits.maxPeers, fail);
  const trackers = parseTrackers(own(root, 'trackers'), tracker, limits.maxTrackers, limits.maxTrackerUrlBytes, fail);
  const createdBy = own(root, 'created by');
  if (createdBy !== undefined && typeof createdBy !== 'string') {
    throw fail('KF_E_KASCADE_SCHEMA', `"created by" must be a string, got ${typeName(createdBy)}`, 'created by');
  }

  // 6. Everything else is kept, in a fresh null-prototype object (a `__proto__` key stays an ordinary key).
  const extra: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const key of Object.keys(root)) {
    if (!KNOWN.has(key)) Object.defineProperty(extra, key, { value: root[key], enumerable: true, writable: true, configurable: true });
  }

  return new Kascade({ filename, filesize: size, filehash, tracker, trackers, blockhashes, swarmId, peers, dialect, extra });
}

type Fail = (code: ErrorCode, message: string, field?: string, detail?: Record<string, unknown>) => KfetchError;

const HEX_BAD = 0;
const HEX_LOWER = 1;
const HEX_MIXED = 2;

/** Whether `s` is `len` hex digits, all lowercase or with some uppercase (a char loop: ~10x faster than a regex here). */
function hexKind(s: string, len: number): number {
  if (s.length !== len) return HEX_BAD;
  let kind = HEX_LOWER;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66)) continue;
    if (c >= 0x41 && c <= 0x46) kind = HEX_MIXED;
    else return HEX_BAD;
  }
  return kind;
}

/** Check one hex hash value; return it in lowercase. */
function hashValue(v: unknown, len: number, algo: string, field: string, fail: Fail): string {
  if (typeof v !== 'string') throw fail('KF_E_KASCADE_SCHEMA', `${field} must be a string of ${len} hex digits (${algo}), got ${typeName(v)}`, field);
  if (v.length === len && isHex(v)) return v.toLowerCase();
  if (/^0x/i.test(v)) throw fail('KF_E_KASCADE_HASH', `${field} has a "0x" prefix; write the ${len} hex digits of the ${algo} alone`, field);
  if (v.length !== len) throw fail('KF_E_KASCADE_HASH', `${field} has ${v.length} characters; an ${algo} hash is ${len} hex digits`, field, { expected: len, actual: v.length });
  const bad = [...v].findIndex((c) => !isHex(c));
  throw fail('KF_E_KASCADE_HASH', `${field} is not hex: ${quote(v[bad] ?? '')} at position ${bad}`, field, { position: bad });
}

function hash(root: Obj, key: string, len: number, algo: string, fail: Fail): string {
  const v = own(root, key);
  if (v === undefined) throw fail('KF_E_KASCADE_SCHEMA', `${key} is missing`, key);
  return hashValue(v, len, algo, key, fail);
}

/** trackhash / kascadehash: optional hex of 32..128 digits (the 2014 course used various digests). */
function optionalSwarmHash(root: Obj, key: string, fail: Fail): string | undefined {
  const v = own(root, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw fail('KF_E_KASCADE_SCHEMA', `${key} must be a hex string, got ${typeName(v)}`, key);
  if (v.length < 32 || v.length > 128 || v.length % 2 !== 0 || !isHex(v)) {
    throw fail('KF_E_KASCADE_HASH', `${key} must be 32 to 128 hex digits (an even number), got ${v.length} characters`, key);
  }
  return v.toLowerCase();
}

/**
 * The `peers` extension: an array of "host:port" (IPv6 in brackets), each IP literal judged by the address policy
 * as `--peer` is (a host name is judged at the dial, by what it resolves to: no DNS here). One refused entry refuses
 * the file, as a refused tracker URL does: a .kascade that points kfetch at 169.254.169.254 is not to be trusted.
 */
function parsePeers(v: unknown, maxPeers: number, fail: Fail): readonly string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw fail('KF_E_KASCADE_SCHEMA', `peers must be an array of "host:port" strings, got ${typeName(v)}`, 'peers');
  if (v.length > maxPeers) throw fail('KF_E_KASCADE_SCHEMA', `peers lists ${v.length} entries, more than the limit of ${maxPeers}`, 'peers');
  const out: string[] = [];
  for (let i = 0; i < v.length; i++) {
    const p: unknown = v[i];
    const field = `peers[${i}]`;
    if (typeof p !== 'string') throw fail('KF_E_KASCADE_SCHEMA', `${field} must be a "host:port" string, got ${typeName(p)}`, field);
    const parsed = parsePeerAddress(p);
    if ('problem' in parsed) throw fail(parsed.policy ? 'KF_E_KASCADE_PEER' : 'KF_E_KASCADE_SCHEMA', `${field} ${quote(p, 100)} ${parsed.problem}`, field);
    out.push(p);
  }
  return out;
}

/**
 * The `trackers` extension: more announce URLs, tried in order after `tracker` when it fails (docs/spec-trackers.md).
 * Returns every tracker, `tracker` first. Each entry is judged as `tracker` is (trackerProblem) and bounded in
 * length; `tracker` and the entries together are at most `maxTrackers`; a URL named twice (as parsed: `HTTP://H/x`
 * is `http://h/x`) is refused, naming the later entry.
 */
function parseTrackers(v: unknown, tracker: string, maxTrackers: number, maxUrlBytes: number, fail: Fail): readonly string[] {
  if (v === undefined) return [tracker];
  if (!Array.isArray(v)) throw fail('KF_E_KASCADE_SCHEMA', `trackers must be an array of tracker URL strings, got ${typeName(v)}`, 'trackers');
  if (v.length + 1 > maxTrackers) {
    throw fail('KF_E_KASCADE_SCHEMA', `trackers lists ${v.length} URLs; with tracker that is more than the limit of ${maxTrackers}`, 'trackers', {
      limit: maxTrackers,
      actual: v.length + 1,
    });
  }
  const out = [tracker];
  const seen = new Map<string, string>([[new URL(tracker).href, 'tracker']]);
  for (let i = 0; i < v.length; i++) {
    const t: unknown = v[i];
    const field = `trackers[${i}]`;
    if (typeof t !== 'string') throw fail('KF_E_KASCADE_SCHEMA', `${field} must be a tracker URL string, got ${typeName(t)}`, field);
    const bytes = Buffer.byteLength(t, 'utf8');
    if (bytes > maxUrlBytes) throw fail('KF_E_KASCADE_TRACKER', `${field} is ${bytes} bytes long, more than the limit of ${maxUrlBytes}`, field);
    const why = trackerProblem(t, { udp: true }); // the UDP tracker extension: here, never in `tracker`
    if (why !== undefined) throw fail('KF_E_KASCADE_TRACKER', `${field} ${redactUrl(t)} ${why}`, field);
    const href = new URL(t).href;
    const first = seen.get(href);
    if (first !== undefined) throw fail('KF_E_KASCADE_TRACKER', `${field} ${redactUrl(t)} repeats ${first}; name each tracker once`, field, { repeats: first });
    seen.set(href, field);
    out.push(t);
  }
  return out;
}
