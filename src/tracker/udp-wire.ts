// The UDP tracker's datagrams (kfetch extension, docs/spec-udp-tracker.md): a pure codec. Encoders take checked
// values and write one datagram; decoders take any bytes and return a typed value or a typed error naming the field,
// and never throw. Used by udp-tracker.ts (requests in, replies out) and udp-announce-client.ts (the reverse);
// fuzzed in test/fuzz/tracker-udp-wire.test.ts. All integers are big-endian.

import { createRequire } from 'node:module';
import type * as IpAddr from 'ipaddr.js';
import { KfetchError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { canonicalIp, dottedQuadValue } from '../util/address-policy.js';

const ipaddr = createRequire(import.meta.url)('ipaddr.js') as typeof IpAddr;

/** Largest datagram either side sends or reads (fits a 1,500-byte Ethernet MTU with IPv6 and UDP headers to spare). */
export const UDP_MAX_DATAGRAM = 1400;
/** `KASCADE\x01`: the first 8 bytes of a connect request (a protocol and version marker, not a secret). */
export const UDP_MAGIC = Buffer.from([0x4b, 0x41, 0x53, 0x43, 0x41, 0x44, 0x45, 0x01]);
/** Bytes of a connection id. */
export const CONNECTION_ID_BYTES = 8;
/** Longest error message text, in bytes. */
export const UDP_ERROR_MAX_BYTES = 200;
/** Swarm ids travel as raw bytes: 32..128 hex digits, an even number (odd-length 2014 ids announce over HTTP). */
export const SWARM_ID_MIN_BYTES = 16;
export const SWARM_ID_MAX_BYTES = 64;
/** Longest retry-after a back-off reply may name (a day; the client clamps further). */
export const UDP_RETRY_AFTER_MAX_SECONDS = 86_400;

export const ACTION = { connect: 0, announce: 1, error: 3, backoff: 4, reconnect: 5 } as const;
const EVENTS = ['none', 'started', 'completed', 'stopped'] as const;
export type UdpEvent = (typeof EVENTS)[number];
const BACKOFF_REASONS = ['too-soon', 'full', 'store-down'] as const;
export type BackoffReason = (typeof BACKOFF_REASONS)[number];

/** Fixed part of an announce request before the swarm id (connection id, action, transaction id, id length). */
const ANNOUNCE_HEAD = 8 + 4 + 4 + 1;
/** Fixed part after the swarm id: port u16, progress u32, event u8, numWant u16. */
const ANNOUNCE_TAIL = 2 + 4 + 1 + 2;
/** The optional bitfield's header: block size u32, length u16. */
const BITFIELD_HEAD = 4 + 2;
/** Announce reply header: action, transaction id, interval u32, count u16. */
const REPLY_HEAD = 4 + 4 + 4 + 2;
/** One peer in a reply: family u8, address, port u16, progress u32, flags u8. */
export const PEER_BYTES = { 4: 1 + 4 + 2 + 4 + 1, 6: 1 + 16 + 2 + 4 + 1 } as const;
const FLAG_FEEDER = 0x01;
const MILLION = 1_000_000;

export interface ConnectRequest {
  action: 'connect';
  transactionId: number;
}

export interface AnnounceDatagram {
  action: 'announce';
  connectionId: Buffer;
  transactionId: number;
  /** Lowercase hex, 32..128 digits, even. */
  swarmId: string;
  /** 0: list only (the caller accepts no connections), as over HTTP. */
  port: number;
  /** Millionths of the file held, 0..1,000,000. */
  progress: number;
  event: UdpEvent;
  /** Peers wanted; 0 means the tracker's default. */
  numWant: number;
  /** The caller's bitfield (SPEC §4 bit order) at one block size, raw bytes. */
  blocks?: { blockSize: number; bytes: Buffer };
}

export type UdpRequest = ConnectRequest | AnnounceDatagram;

/** A peer as a reply carries it: `ip` is canonical text (IPv4-mapped IPv6 comes out as IPv4). */
export interface UdpPeer {
  ip: string;
  port: number;
  /** Millionths, 0..1,000,000. */
  progress: number;
  feeder: boolean;
}

export type UdpReply =
  | { action: 'connect'; transactionId: number; connectionId: Buffer }
  | { action: 'announce'; transactionId: number; intervalSeconds: number; peers: UdpPeer[] }
  | { action: 'error'; transactionId: number; message: string }
  | { action: 'backoff'; transactionId: number; retryAfterSeconds: number; reason: BackoffReason }
  /** The connection id is not (or no longer) this source's: connect again. */
  | { action: 'reconnect'; transactionId: number };

/** Why a datagram was refused: the field and a sentence. */
export interface UdpWireError {
  field: string;
  message: string;
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: UdpWireError };

const fail = (field: string, message: string): { ok: false; error: UdpWireError } => ({ ok: false, error: { field, message } });

/** A decode failure as a KfetchError with `field` set (for callers that throw). */
export function wireError(e: UdpWireError, code: 'KF_E_INPUT' | 'KF_E_TRACKER_RESPONSE', what: string): KfetchError {
  return new KfetchError(code, `${what}: ${e.field}: ${e.message}`, { field: e.field });
}

function u32(v: number, field: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new KfetchError('KF_E_INPUT', `udp: ${field} must be a u32`, { field });
  return v;
}

function u16(v: number, field: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new KfetchError('KF_E_INPUT', `udp: ${field} must be a u16`, { field });
  return v;
}

// ---- encoders (inputs are ours: a bad one is a bug, thrown as KF_E_INPUT) ----

export function encodeConnectRequest(transactionId: number): Buffer {
  const b = Buffer.alloc(16);
  UDP_MAGIC.copy(b, 0);
  b.writeUInt32BE(ACTION.connect, 8);
  b.writeUInt32BE(u32(transactionId, 'transactionId'), 12);
  return b;
}

export function encodeConnectReply(transactionId: number, connectionId: Buffer): Buffer {
  if (connectionId.length !== CONNECTION_ID_BYTES) throw new KfetchError('KF_E_INPUT', 'udp: connection id must be 8 bytes', { field: 'connectionId' });
  const b = Buffer.alloc(16);
  b.writeUInt32BE(ACTION.connect, 0);
  b.writeUInt32BE(u32(transactionId, 'transactionId'), 4);
  connectionId.copy(b, 8);
  return b;
}

/** Bytes an announce request takes for a swarm id of `idBytes` bytes and a bitfield of `bitfieldBytes` (0: none). */
export function announceRequestBytes(idBytes: number, bitfieldBytes: number): number {
  return ANNOUNCE_HEAD + idBytes + ANNOUNCE_TAIL + (bitfieldBytes > 0 ? BITFIELD_HEAD + bitfieldBytes : 0);
}

/** @throws KfetchError KF_E_INPUT naming the field for a value out of range, or a datagram over UDP_MAX_DATAGRAM. */
export function encodeAnnounceRequest(a: Omit<AnnounceDatagram, 'action'>): Buffer {
  if (a.connectionId.length !== CONNECTION_ID_BYTES) throw new KfetchError('KF_E_INPUT', 'udp: connection id must be 8 bytes', { field: 'connectionId' });
  const id = swarmIdBytes(a.swarmId);
  if (id === undefined) {
    throw new KfetchError('KF_E_INPUT', 'udp: the swarm id must be 32..128 hex digits, an even number', { field: 'swarmId' });
  }
  if (!Number.isInteger(a.progress) || a.progress < 0 || a.progress > MILLION) {
    throw new KfetchError('KF_E_INPUT', 'udp: progress must be 0..1000000 millionths', { field: 'progress' });
  }
  const bitfield = a.blocks?.bytes.length ?? 0;
  if (a.blocks !== undefined && (bitfield === 0 || bitfield > 0xffff)) throw new KfetchError('KF_E_INPUT', 'udp: bitfield must be 1..65535 bytes', { field: 'blocks' });
  const size = announceRequestBytes(id.length, bitfield);
  if (size > UDP_MAX_DATAGRAM) throw new KfetchError('KF_E_INPUT', `udp: announce of ${size} bytes is over ${UDP_MAX_DATAGRAM}`, { field: 'blocks' });
  const b = Buffer.alloc(size);
  let o = a.connectionId.copy(b, 0);
  o = b.writeUInt32BE(ACTION.announce, o);
  o = b.writeUInt32BE(u32(a.transactionId, 'transactionId'), o);
  o = b.writeUInt8(id.length, o);
  o += id.copy(b, o);
  o = b.writeUInt16BE(u16(a.port, 'port'), o);
  o = b.writeUInt32BE(a.progress, o);
  o = b.writeUInt8(EVENTS.indexOf(a.event), o);
  o = b.writeUInt16BE(u16(a.numWant, 'numWant'), o);
  if (a.blocks !== undefined) {
    const { blockSize, bytes } = a.blocks;
    if (!Number.isInteger(blockSize) || blockSize < LIMITS.minBlockSize || blockSize > LIMITS.maxBlockSize) {
      throw new KfetchError('KF_E_INPUT', 'udp: block size out of range', { field: 'blocksize' });
    }
    o = b.writeUInt32BE(blockSize, o);
    o = b.writeUInt16BE(bytes.length, o);
    bytes.copy(b, o);
  }
  return b;
}

/**
 * An announce reply carrying as many of `peers` (in order) as fit in `maxBytes` (at most UDP_MAX_DATAGRAM) and
 * 65,535; returns the datagram and how many went in. Peers whose ip is not an IP literal are skipped.
 */
export function encodeAnnounceReply(
  transactionId: number,
  intervalSeconds: number,
  peers: ReadonlyArray<{ ip: string; port: number; progress: number; feeder: boolean }>,
  maxBytes = UDP_MAX_DATAGRAM,
): { datagram: Buffer; count: number } {
  const cap = Math.min(maxBytes, UDP_MAX_DATAGRAM);
  // From Node's pool (Buffer.alloc of 1,400 bytes is a fresh zeroed ArrayBuffer: ~3 µs, measured); only the bytes
  // written below, [0, o), are returned.
  const b = Buffer.allocUnsafe(cap);
  let o = b.writeUInt32BE(ACTION.announce, 0);
  o = b.writeUInt32BE(u32(transactionId, 'transactionId'), o);
  o = b.writeUInt32BE(u32(intervalSeconds, 'intervalSeconds'), o);
  const countAt = o;
  o += 2;
  let count = 0;
  for (const p of peers) {
    if (count === 0xffff) break;
    // Bytes are set by index (the Buffer write methods check their arguments each call: measured 10.5 -> 2 µs for 50
    // peers); every value is in range: the address from its parser, port and progress checked here.
    const quad = dottedQuadValue(p.ip);
    const bytes = quad < 0 ? ipBytes(p.ip) : undefined;
    if (quad < 0 && bytes === undefined) continue;
    const v4 = quad >= 0 || bytes!.length === 4;
    const need = v4 ? PEER_BYTES[4] : PEER_BYTES[6];
    if (o + need > cap) break;
    const port = u16(p.port, 'port');
    b[o++] = v4 ? 4 : 6;
    if (quad >= 0) {
      b[o++] = quad >>> 24;
      b[o++] = (quad >>> 16) & 0xff;
      b[o++] = (quad >>> 8) & 0xff;
      b[o++] = quad & 0xff;
    } else for (const x of bytes!) b[o++] = x;
    b[o++] = port >>> 8;
    b[o++] = port & 0xff;
    const progress = Number.isFinite(p.progress) ? Math.round(Math.min(1, Math.max(0, p.progress)) * MILLION) : 0;
    b[o++] = progress >>> 24;
    b[o++] = (progress >>> 16) & 0xff;
    b[o++] = (progress >>> 8) & 0xff;
    b[o++] = progress & 0xff;
    b[o++] = p.feeder ? FLAG_FEEDER : 0;
    count++;
  }
  b.writeUInt16BE(count, countAt);
  return { datagram: b.subarray(0, o), count };
}

/** An error reply; the message is cut to UDP_ERROR_MAX_BYTES at a character boundary. */
export function encodeErrorReply(transactionId: number, message: string): Buffer {
  let text = Buffer.from(message, 'utf8');
  if (text.length > UDP_ERROR_MAX_BYTES) {
    let end = UDP_ERROR_MAX_BYTES;
    while (end > 0 && (text[end]! & 0xc0) === 0x80) end--; // never split a UTF-8 sequence
    text = text.subarray(0, end);
  }
  const b = Buffer.alloc(8 + text.length);
  b.writeUInt32BE(ACTION.error, 0);
  b.writeUInt32BE(u32(transactionId, 'transactionId'), 4);
  text.copy(b, 8);
  return b;
}

export function encodeBackoffReply(transactionId: number, retryAfterSeconds: number, reason: BackoffReason): Buffer {
  const b = Buffer.alloc(13);
  b.writeUInt32BE(ACTION.backoff, 0);
  b.writeUInt32BE(u32(transactionId, 'transactionId'), 4);
  b.writeUInt32BE(Math.min(UDP_RETRY_AFTER_MAX_SECONDS, Math.max(1, Math.ceil(retryAfterSeconds))), 8);
  b.writeUInt8(BACKOFF_REASONS.indexOf(reason) + 1, 12);
  return b;
}

/** "Connect again": 8 bytes, smaller than any announce, so safe to send to a source not yet proven. */
export function encodeReconnectReply(transactionId: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(ACTION.reconnect, 0);
  b.writeUInt32BE(u32(transactionId, 'transactionId'), 4);
  return b;
}

// ---- decoders (inputs are anyone's: never throw) ----

/** A request as the tracker reads it. */
export function decodeRequest(d: Uint8Array): Decoded<UdpRequest> {
  if (d.length > UDP_MAX_DATAGRAM) return fail('datagram', `${d.length} bytes; at most ${UDP_MAX_DATAGRAM}`);
  if (d.length < 16) return fail('datagram', `${d.length} bytes; a request has at least 16`);
  const b = Buffer.from(d.buffer, d.byteOffset, d.length);
  const action = b.readUInt32BE(8);
  const transactionId = b.readUInt32BE(12);
  if (action === ACTION.connect) {
    if (!b.subarray(0, 8).equals(UDP_MAGIC)) return fail('magic', 'not KASCADE\\x01');
    if (d.length !== 16) return fail('datagram', `a connect request is 16 bytes, not ${d.length}`);
    return { ok: true, value: { action: 'connect', transactionId } };
  }
  if (action !== ACTION.announce) return fail('action', `unknown action ${action}`);
  // Found by the fuzzer: a 16-byte datagram with action 1 has no length byte to read.
  if (d.length < ANNOUNCE_HEAD) return fail('datagram', `${d.length} bytes; an announce has at least ${ANNOUNCE_HEAD + SWARM_ID_MIN_BYTES + ANNOUNCE_TAIL}`);
  const idLen = b.readUInt8(16);
  if (idLen < SWARM_ID_MIN_BYTES || idLen > SWARM_ID_MAX_BYTES) return fail('swarmId', `length ${idLen}; must be ${SWARM_ID_MIN_BYTES}..${SWARM_ID_MAX_BYTES}`);
  const base = ANNOUNCE_HEAD + idLen + ANNOUNCE_TAIL;
  if (d.length < base) return fail('datagram', `${d.length} bytes; this announce needs ${base}`);
  let o = ANNOUNCE_HEAD;
  const swarmId = b.toString('hex', o, o + idLen);
  o += idLen;
  const port = b.readUInt16BE(o);
  const progress = b.readUInt32BE(o + 2);
  if (progress > MILLION) return fail('progress', `${progress} millionths; at most ${MILLION}`);
  const eventCode = b.readUInt8(o + 6);
  const event = EVENTS[eventCode];
  if (event === undefined) return fail('event', `unknown event ${eventCode}`);
  const numWant = b.readUInt16BE(o + 7);
  o += ANNOUNCE_TAIL;
  const value: AnnounceDatagram = {
    action: 'announce',
    connectionId: Buffer.from(b.subarray(0, CONNECTION_ID_BYTES)),
    transactionId,
    swarmId,
    port,
    progress,
    event,
    numWant,
  };
  if (d.length === base) return { ok: true, value };
  if (d.length < base + BITFIELD_HEAD) return fail('blocks', `${d.length - base} trailing bytes; a bitfield header is ${BITFIELD_HEAD}`);
  const blockSize = b.readUInt32BE(o);
  if (blockSize < LIMITS.minBlockSize || blockSize > LIMITS.maxBlockSize) return fail('blocksize', `${blockSize}; must be ${LIMITS.minBlockSize}..${LIMITS.maxBlockSize}`);
  const len = b.readUInt16BE(o + 4);
  o += BITFIELD_HEAD;
  if (len === 0) return fail('blocks', 'an empty bitfield; leave it out');
  if (o + len !== d.length) return fail('blocks', `says ${len} bytes; ${d.length - o} follow`);
  value.blocks = { blockSize, bytes: Buffer.from(b.subarray(o, o + len)) };
  return { ok: true, value };
}

/** A reply as the client reads it. */
export function decodeReply(d: Uint8Array): Decoded<UdpReply> {
  if (d.length > UDP_MAX_DATAGRAM) return fail('datagram', `${d.length} bytes; at most ${UDP_MAX_DATAGRAM}`);
  if (d.length < 8) return fail('datagram', `${d.length} bytes; a reply has at least 8`);
  const b = Buffer.from(d.buffer, d.byteOffset, d.length);
  const action = b.readUInt32BE(0);
  const transactionId = b.readUInt32BE(4);
  switch (action) {
    case ACTION.connect:
      if (d.length !== 16) return fail('datagram', `a connect reply is 16 bytes, not ${d.length}`);
      return { ok: true, value: { action: 'connect', transactionId, connectionId: Buffer.from(b.subarray(8, 16)) } };
    case ACTION.announce: {
      if (d.length < REPLY_HEAD) return fail('datagram', `${d.length} bytes; an announce reply has at least ${REPLY_HEAD}`);
      const intervalSeconds = b.readUInt32BE(8);
      const count = b.readUInt16BE(12);
      // The smallest peer entry bounds the count before anything is allocated for it.
      if (count * PEER_BYTES[4] > d.length - REPLY_HEAD) return fail('count', `${count} peers cannot fit in ${d.length - REPLY_HEAD} bytes`);
      const peers: UdpPeer[] = [];
      let o = REPLY_HEAD;
      for (let i = 0; i < count; i++) {
        if (o >= d.length) return fail(`peers[${i}]`, 'missing');
        const family = b.readUInt8(o);
        if (family !== 4 && family !== 6) return fail(`peers[${i}].family`, `${family}; must be 4 or 6`);
        const need = PEER_BYTES[family];
        if (o + need > d.length) return fail(`peers[${i}]`, `needs ${need} bytes; ${d.length - o} left`);
        const addr = b.subarray(o + 1, o + 1 + (family === 4 ? 4 : 16));
        o += 1 + addr.length;
        const ip = family === 4 ? addr.join('.') : canonicalIp(ipaddr.fromByteArray([...addr]).toString());
        if (ip === undefined) return fail(`peers[${i}].ip`, 'not an address');
        const port = b.readUInt16BE(o);
        const progress = b.readUInt32BE(o + 2);
        if (progress > MILLION) return fail(`peers[${i}].progress`, `${progress} millionths; at most ${MILLION}`);
        const flags = b.readUInt8(o + 6);
        o += 7;
        peers.push({ ip, port, progress, feeder: (flags & FLAG_FEEDER) !== 0 });
      }
      if (o !== d.length) return fail('datagram', `${d.length - o} bytes after the last peer`);
      return { ok: true, value: { action: 'announce', transactionId, intervalSeconds, peers } };
    }
    case ACTION.error: {
      if (d.length - 8 > UDP_ERROR_MAX_BYTES) return fail('message', `${d.length - 8} bytes; at most ${UDP_ERROR_MAX_BYTES}`);
      let message: string;
      try {
        message = new TextDecoder('utf-8', { fatal: true }).decode(b.subarray(8));
      } catch {
        return fail('message', 'not UTF-8');
      }
      return { ok: true, value: { action: 'error', transactionId, message } };
    }
    case ACTION.backoff: {
      if (d.length !== 13) return fail('datagram', `a back-off reply is 13 bytes, not ${d.length}`);
      const retryAfterSeconds = b.readUInt32BE(8);
      if (retryAfterSeconds < 1 || retryAfterSeconds > UDP_RETRY_AFTER_MAX_SECONDS) {
        return fail('retryAfter', `${retryAfterSeconds} s; must be 1..${UDP_RETRY_AFTER_MAX_SECONDS}`);
      }
      const reason = BACKOFF_REASONS[b.readUInt8(12) - 1];
      if (reason === undefined) return fail('reason', `unknown back-off reason ${b.readUInt8(12)}`);
      return { ok: true, value: { action: 'backoff', transactionId, retryAfterSeconds, reason } };
    }
    case ACTION.reconnect:
      if (d.length !== 8) return fail('datagram', `a reconnect reply is 8 bytes, not ${d.length}`);
      return { ok: true, value: { action: 'reconnect', transactionId } };
    default:
      return fail('action', `unknown action ${action}`);
  }
}

/** A swarm id's raw bytes, or undefined if it is not 32..128 hex digits of even length. */
export function swarmIdBytes(hex: string): Buffer | undefined {
  if (hex.length % 2 !== 0 || hex.length < SWARM_ID_MIN_BYTES * 2 || hex.length > SWARM_ID_MAX_BYTES * 2 || !/^[0-9a-fA-F]*$/.test(hex)) return undefined;
  return Buffer.from(hex, 'hex');
}

/**
 * An IP literal's 4 or 16 bytes (IPv4-mapped IPv6 as its IPv4), or undefined. A dotted quad is read by hand: the general
 * parser cost ~3 µs a peer, most of an announce's CPU (measured: bench/udp-tracker-quick.ts).
 */
export function ipBytes(ip: string): number[] | undefined {
  const quad = dottedQuadValue(ip);
  if (quad >= 0) return [quad >>> 24, (quad >>> 16) & 0xff, (quad >>> 8) & 0xff, quad & 0xff];
  const canon = canonicalIp(ip);
  if (canon === undefined) return undefined;
  return ipaddr.parse(canon).toByteArray();
}
