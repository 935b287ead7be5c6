// The binary peer wire's frames (docs/spec-peer-wire.md): a pure codec, bytes in and typed frames or a KfetchError
// naming the field out, no I/O. The streaming decoders take bytes in chunks of any size (a frame split anywhere,
// several in one chunk) and buffer at most one fixed-size header. Used by server/wire-server.ts (hellos and
// requests in, replies out) and peer/wire-client.ts (the other way round).

import { KfetchError } from '../errors.js';
import { LIMITS } from '../limits.js';

/** "KWIRE", then the version byte and two flag bytes: the first 8 bytes each way. */
export const WIRE_MAGIC = Buffer.from('KWIRE', 'latin1');
export const WIRE_VERSION = 1;
export const HELLO_BYTES = 8;
/** A request frame is always this long (type 1, the only one in version 1). */
export const REQUEST_BYTES = 48;
/** A reply header is always this long; `length` bytes of body follow it. */
export const REPLY_HEADER_BYTES = 16;
/** Frame type of a request for a run of blocks. */
export const FRAME_GET_BLOCKS = 1;

/** Reply status byte. */
export const WireStatus = { ok: 0, notHeld: 1, busy: 2, badRequest: 3, unknownFile: 4 } as const;
export type WireStatus = (typeof WireStatus)[keyof typeof WireStatus];
const MAX_STATUS = 4;

/** Blocks per request at most, and bytes per request at most unless it asks for one block (a 64 MiB block is one). */
export const WIRE_MAX_BLOCKS_PER_REQUEST = LIMITS.wireMaxBlocksPerRequest;
export const WIRE_MAX_REQUEST_BYTES = LIMITS.wireMaxRequestBytes;

/** A request for `count` blocks of `blockSize` from index `firstBlock` of the file `fileId`. */
export interface WireRequest {
  requestId: number;
  /** The file's SHA-256 (its `filehash`), 64 lowercase hex; 32 raw bytes on the wire. */
  fileId: string;
  blockSize: number;
  firstBlock: number;
  count: number;
}

/** A reply header: `length` body bytes follow (exactly the request's bytes when ok, 0 otherwise). */
export interface WireReplyHeader {
  requestId: number;
  status: WireStatus;
  /** Seconds to wait before asking this seeder again; only with busy (0 otherwise). */
  retryAfterS: number;
  length: number;
}

/** A whole reply: the header and its body. */
export interface WireReply extends WireReplyHeader {
  body: Buffer;
}

/** The error for a frame outside the spec: KF_E_PEER_PROTOCOL naming the field (`request.count`, `reply.length`…). */
export function frameError(field: string, message: string): KfetchError {
  return new KfetchError('KF_E_PEER_PROTOCOL', `wire: ${field}: ${message}`, { field });
}

/** The 8-byte hello both sides send first. */
export function encodeHello(): Buffer {
  const b = Buffer.alloc(HELLO_BYTES);
  WIRE_MAGIC.copy(b, 0);
  b[5] = WIRE_VERSION;
  return b; // flags (bytes 6-7): 0 in version 1
}

/**
 * Check a request's fields against the frame's bounds; the first field out of bounds as a KfetchError, or
 * undefined. The same rule for the encoder and the decoder, so nothing encodable is refused on arrival.
 */
export function requestProblem(r: WireRequest): KfetchError | undefined {
  if (!isU32(r.requestId)) return frameError('request.requestId', `must be an integer in [0, 2^32), got ${r.requestId}`);
  if (!/^[0-9a-f]{64}$/.test(r.fileId)) return frameError('request.fileId', 'must be 64 lowercase hex');
  if (!Number.isInteger(r.count) || r.count < 1 || r.count > WIRE_MAX_BLOCKS_PER_REQUEST) {
    return frameError('request.count', `must be in [1, ${WIRE_MAX_BLOCKS_PER_REQUEST}], got ${r.count}`);
  }
  if (!Number.isInteger(r.blockSize) || r.blockSize < LIMITS.minBlockSize || r.blockSize > LIMITS.maxBlockSize) {
    return frameError('request.blockSize', `must be in [${LIMITS.minBlockSize}, ${LIMITS.maxBlockSize}], got ${r.blockSize}`);
  }
  if (r.count > 1 && r.count * r.blockSize > WIRE_MAX_REQUEST_BYTES) {
    return frameError('request.count', `${r.count} blocks of ${r.blockSize} bytes exceed ${WIRE_MAX_REQUEST_BYTES} bytes per request`);
  }
  if (!Number.isInteger(r.firstBlock) || r.firstBlock < 0 || r.firstBlock + r.count > LIMITS.maxBlocksPerSize) {
    return frameError('request.firstBlock', `blocks ${r.firstBlock}+${r.count} pass the ${LIMITS.maxBlocksPerSize}-block limit`);
  }
  return undefined;
}

/** The 48-byte request frame; throws the KfetchError of requestProblem for fields out of bounds. */
export function encodeRequest(r: WireRequest, into: Buffer = Buffer.allocUnsafe(REQUEST_BYTES), at = 0): Buffer {
  const problem = requestProblem(r);
  if (problem !== undefined) throw problem;
  into[at] = FRAME_GET_BLOCKS;
  into[at + 1] = 0;
  into.writeUInt16BE(r.count, at + 2);
  into.writeUInt32BE(r.requestId, at + 4);
  into.write(r.fileId, at + 8, 32, 'hex');
  into.writeUInt32BE(r.blockSize, at + 40);
  into.writeUInt32BE(r.firstBlock, at + 44);
  return into;
}

/** The 16-byte reply header; throws a KfetchError for fields out of bounds. */
export function encodeReplyHeader(h: WireReplyHeader, into: Buffer = Buffer.allocUnsafe(REPLY_HEADER_BYTES), at = 0): Buffer {
  if (!isU32(h.requestId)) throw frameError('reply.requestId', `must be an integer in [0, 2^32), got ${h.requestId}`);
  if (!Number.isInteger(h.status) || h.status < 0 || h.status > MAX_STATUS) throw frameError('reply.status', `unknown status ${h.status}`);
  const busy = h.status === WireStatus.busy;
  if (!Number.isInteger(h.retryAfterS) || h.retryAfterS < 0 || h.retryAfterS > 0xffff || (!busy && h.retryAfterS !== 0)) {
    throw frameError('reply.retryAfter', `must be in [0, 65535] with busy and 0 otherwise, got ${h.retryAfterS}`);
  }
  const ok = h.status === WireStatus.ok;
  if (!Number.isSafeInteger(h.length) || h.length < 0 || h.length > LIMITS.maxBlockSize || (!ok && h.length !== 0)) {
    throw frameError('reply.length', `must be in [0, ${LIMITS.maxBlockSize}] when ok and 0 otherwise, got ${h.length}`);
  }
  into.writeUInt32BE(h.requestId, at);
  into[at + 4] = h.status;
  into[at + 5] = 0;
  into.writeUInt16BE(h.retryAfterS, at + 6);
  into.writeUInt32BE(Math.floor(h.length / 2 ** 32), at + 8);
  into.writeUInt32BE(h.length >>> 0, at + 12);
  return into;
}

/**
 * The hello, checked byte by byte as it arrives (a stray HTTP request fails at its first byte). Returns the bytes
 * of `chunk` consumed from `at`; `done` once all 8 arrived.
 */
class HelloReader {
  private got = 0;
  private readonly bytes = Buffer.alloc(HELLO_BYTES);

  constructor(private readonly who: string) {}

  get done(): boolean {
    return this.got === HELLO_BYTES;
  }

  /** Bytes of the hello received so far (0 before the first, 8 when done). */
  get received(): number {
    return this.got;
  }

  take(chunk: Uint8Array, at: number): number {
    let i = at;
    while (i < chunk.length && this.got < HELLO_BYTES) {
      const byte = chunk[i++]!;
      const pos = this.got++;
      this.bytes[pos] = byte;
      if (pos < 5 && byte !== WIRE_MAGIC[pos]) throw frameError(`${this.who}.magic`, 'not "KWIRE": not a kfetch peer wire');
      if (pos === 5 && byte !== WIRE_VERSION) throw frameError(`${this.who}.version`, `version ${byte} is not spoken (only ${WIRE_VERSION})`);
      if (pos >= 6 && byte !== 0) throw frameError(`${this.who}.flags`, 'flags must be 0 in version 1');
    }
    return i - at;
  }
}

/**
 * Decodes what a client sends a seeder: the hello, then 48-byte request frames. Holds at most one partial frame.
 * `feed` calls `onRequest` for each whole request, in order, or throws the KfetchError of the first bad field (the
 * connection must then be closed: after a bad frame the stream is out of step). Once it threw, it throws again.
 */
export class RequestDecoder {
  private readonly hello = new HelloReader('hello');
  private readonly frame = Buffer.alloc(REQUEST_BYTES);
  private got = 0;
  private failed: KfetchError | undefined;

  /** Bytes of an unfinished hello or frame held now: > 0 means the peer is in the middle of sending one. */
  get partialBytes(): number {
    return this.hello.done ? this.got : this.hello.received;
  }

  /** True once the hello arrived whole. */
  get helloDone(): boolean {
    return this.hello.done;
  }

  feed(chunk: Uint8Array, onRequest: (r: WireRequest) => void): void {
    if (this.failed !== undefined) throw this.failed;
    try {
      let i = 0;
      if (!this.hello.done) i += this.hello.take(chunk, 0);
      while (i < chunk.length) {
        if (this.got === 0 && chunk[i] !== FRAME_GET_BLOCKS) throw frameError('request.type', `unknown frame type ${chunk[i]}`);
        const n = Math.min(REQUEST_BYTES - this.got, chunk.length - i);
        this.frame.set(chunk.subarray(i, i + n), this.got);
        this.got += n;
        i += n;
        if (this.got < REQUEST_BYTES) break;
        this.got = 0;
        onRequest(this.decodeFrame());
      }
    } catch (err) {
      if (err instanceof KfetchError) this.failed = err;
      throw err;
    }
  }

  private decodeFrame(): WireRequest {
    const f = this.frame;
    if (f[1] !== 0) throw frameError('request.reserved', 'must be 0');
    const r: WireRequest = {
      count: f.readUInt16BE(2),
      requestId: f.readUInt32BE(4),
      fileId: f.toString('hex', 8, 40),
      blockSize: f.readUInt32BE(40),
      firstBlock: f.readUInt32BE(44),
    };
    const problem = requestProblem(r);
    if (problem !== undefined) throw problem;
    return r;
  }
}

/** What the client awaits for one request id: the reply's exact length when ok, and where its body goes. */
export interface ReplyExpectation {
  /** Bytes of the body when the status is ok. */
  length: number;
  /** Where the body lands (at least `length` bytes); absent, a buffer is allocated. */
  into?: Buffer | undefined;
}

/**
 * Decodes what a seeder sends a client: the hello, then replies (a 16-byte header and its body). `expect(id)` says
 * what the client awaits for that id (undefined: not the next reply awaited, which is a protocol error: replies
 * come in request order); the body is copied into the expectation's buffer as it arrives. `feed` calls `onReply`
 * for each whole reply, in order (the caller drops that expectation there, before the next header is read), or
 * throws the KfetchError of the first bad field; once it threw, it throws again.
 */
export class ReplyDecoder {
  private readonly hello = new HelloReader('serverHello');
  private readonly head = Buffer.alloc(REPLY_HEADER_BYTES);
  private gotHead = 0;
  private current: { header: WireReplyHeader; body: Buffer; got: number } | undefined;
  private failed: KfetchError | undefined;

  constructor(private readonly expect: (requestId: number) => ReplyExpectation | undefined) {}

  /** True once the seeder's hello arrived whole. */
  get helloDone(): boolean {
    return this.hello.done;
  }

  /** Bytes of an unfinished hello, header or body held or received now. */
  get partialBytes(): number {
    if (!this.hello.done) return this.hello.received;
    return this.current === undefined ? this.gotHead : REPLY_HEADER_BYTES + this.current.got;
  }

  feed(chunk: Uint8Array, onReply: (r: WireReply) => void): void {
    if (this.failed !== undefined) throw this.failed;
    try {
      let i = 0;
      if (!this.hello.done) i += this.hello.take(chunk, 0);
      for (;;) {
        if (this.current === undefined) {
          if (i >= chunk.length) return;
          const n = Math.min(REPLY_HEADER_BYTES - this.gotHead, chunk.length - i);
          this.head.set(chunk.subarray(i, i + n), this.gotHead);
          this.gotHead += n;
          i += n;
          if (this.gotHead < REPLY_HEADER_BYTES) return;
          this.gotHead = 0;
          this.current = this.decodeHeader();
        }
        const c = this.current;
        const want = c.header.length - c.got;
        const n = Math.min(want, chunk.length - i);
        if (n > 0) {
          c.body.set(chunk.subarray(i, i + n), c.got);
          c.got += n;
          i += n;
        }
        if (c.got < c.header.length) return;
        this.current = undefined;
        onReply({ ...c.header, body: c.body });
      }
    } catch (err) {
      if (err instanceof KfetchError) this.failed = err;
      throw err;
    }
  }

  /**
   * While a reply body is being received: the rest of its buffer, for the next socket read to land in place (no
   * copy; it holds body bytes only, so nothing past the body can land there). Undefined between bodies.
   */
  inPlaceWindow(): Buffer | undefined {
    const c = this.current;
    return c === undefined || this.failed !== undefined ? undefined : c.body.subarray(c.got);
  }

  /** `n` bytes were read into the window inPlaceWindow() gave; `onReply` as in feed when the body is whole. */
  receivedInPlace(n: number, onReply: (r: WireReply) => void): void {
    if (this.failed !== undefined) throw this.failed;
    const c = this.current;
    if (c === undefined || !Number.isInteger(n) || n < 0 || n > c.header.length - c.got) throw new RangeError(`${n} bytes read in place outside a body window`);
    c.got += n;
    if (c.got < c.header.length) return;
    this.current = undefined;
    onReply({ ...c.header, body: c.body });
  }

  private decodeHeader(): { header: WireReplyHeader; body: Buffer; got: number } {
    const h = this.head;
    const requestId = h.readUInt32BE(0);
    const status = h[4]!;
    if (status > MAX_STATUS) throw frameError('reply.status', `unknown status ${status}`);
    if (h[5] !== 0) throw frameError('reply.reserved', 'must be 0');
    const retryAfterS = h.readUInt16BE(6);
    if (status !== WireStatus.busy && retryAfterS !== 0) throw frameError('reply.retryAfter', 'must be 0 unless busy');
    const high = h.readUInt32BE(8);
    const length = high * 2 ** 32 + h.readUInt32BE(12);
    // Bounded before anything else: no expectation is ever larger than one 64 MiB block.
    if (high !== 0 || length > LIMITS.maxBlockSize) throw frameError('reply.length', `${length} bytes is more than any request asks`);
    const e = this.expect(requestId);
    if (e === undefined) throw frameError('reply.requestId', `reply to ${requestId}, which is not the next request awaited`);
    if (status === WireStatus.ok ? length !== e.length : length !== 0) {
      throw frameError('reply.length', `${length} bytes with status ${status}; expected ${status === WireStatus.ok ? e.length : 0}`);
    }
    if (e.into !== undefined && e.into.length < length) throw new RangeError(`buffer of ${e.into.length} bytes for a ${length}-byte reply`);
    const body = status === WireStatus.ok ? (e.into ?? Buffer.allocUnsafe(length)).subarray(0, length) : Buffer.alloc(0);
    return { header: { requestId, status: status as WireStatus, retryAfterS, length }, body, got: 0 };
  }
}

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}
