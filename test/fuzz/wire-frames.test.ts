// fast-check properties for the peer wire codec (src/peer/wire-frames.ts): any bytes give frames or a KfetchError
// naming a wire field (never another exception), encode∘decode is the identity, and splitting the bytes anywhere
// gives the same frames. Plus a table of bad frames, each with the field its error must name. Runs:
// KFETCH_FUZZ_RUNS (default 300; `npm run test:fuzz` runs 20 000), each property time-boxed.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KfetchError } from '../../src/errors.js';
import {
  HELLO_BYTES,
  REPLY_HEADER_BYTES,
  REQUEST_BYTES,
  ReplyDecoder,
  RequestDecoder,
  WIRE_MAX_BLOCKS_PER_REQUEST,
  WIRE_MAX_REQUEST_BYTES,
  encodeHello,
  encodeReplyHeader,
  encodeRequest,
  type WireReply,
  type WireRequest,
} from '../../src/peer/wire-frames.js';

const RUNS = Number(process.env.KFETCH_FUZZ_RUNS ?? 300);
/** Each property stops after this long whatever RUNS says (the short run in `test` stays short on a busy machine). */
const BOX_MS = Number(process.env.KFETCH_FUZZ_MS ?? 3_000);
const params = { numRuns: RUNS, interruptAfterTimeLimit: BOX_MS, markInterruptAsFailure: false };

const hex64 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
const request: fc.Arbitrary<WireRequest> = fc
  .record({
    requestId: fc.nat({ max: 0xffffffff }),
    fileId: hex64,
    blockSize: fc.oneof(fc.constantFrom(512, 1024, 4096, 262144, 64 * 1024 * 1024), fc.integer({ min: 512, max: 64 * 1024 * 1024 })),
    firstBlock: fc.nat({ max: 2 ** 22 - WIRE_MAX_BLOCKS_PER_REQUEST }),
    count: fc.integer({ min: 1, max: WIRE_MAX_BLOCKS_PER_REQUEST }),
  })
  .map((r) => ({ ...r, count: r.count > 1 && r.count * r.blockSize > WIRE_MAX_REQUEST_BYTES ? Math.max(1, Math.floor(WIRE_MAX_REQUEST_BYTES / r.blockSize)) : r.count }));

/** Cut `bytes` at the given points (sorted, deduplicated, inside). */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...at, bytes.length]) {
    out.push(bytes.subarray(prev, c));
    prev = c;
  }
  return out;
}

/** Feed chunks to a fresh request decoder: the requests, or the KfetchError's field. Anything else fails. */
function decodeRequests(chunks: Uint8Array[]): { requests: WireRequest[]; field?: string } {
  const d = new RequestDecoder();
  const requests: WireRequest[] = [];
  try {
    for (const c of chunks) d.feed(c, (r) => requests.push(r));
    return { requests };
  } catch (err) {
    if (!(err instanceof KfetchError)) throw err;
    expect(err.code).toBe('KF_E_PEER_PROTOCOL');
    expect(err.field).toMatch(/^(hello|request)\.[a-zA-Z]+$/);
    return { requests, field: err.field! };
  }
}

/** Replies for a client awaiting `expected` (id → ok length), in order. */
function decodeReplies(chunks: Uint8Array[], expected: { id: number; length: number }[]): { replies: WireReply[]; field?: string } {
  const queue = [...expected];
  const d = new ReplyDecoder((id) => (queue[0]?.id === id ? { length: queue[0].length } : undefined));
  const replies: WireReply[] = [];
  try {
    for (const c of chunks)
      d.feed(c, (r) => {
        queue.shift();
        replies.push({ ...r, body: Buffer.from(r.body) });
      });
    return { replies };
  } catch (err) {
    if (!(err instanceof KfetchError)) throw err;
    expect(err.code).toBe('KF_E_PEER_PROTOCOL');
    expect(err.field).toMatch(/^(serverHello|reply)\.[a-zA-Z]+$/);
    return { replies, field: err.field! };
  }
}

const reqBytes = (r: WireRequest): Buffer => encodeRequest(r);
const withHello = (...frames: Buffer[]): Buffer => Buffer.concat([encodeHello(), ...frames]);
const GOOD: WireRequest = { requestId: 7, fileId: 'ab'.repeat(32), blockSize: 4096, firstBlock: 3, count: 2 };

describe('wire request decoder', () => {
  it('round-trips any valid requests, however the bytes are split', () => {
    fc.assert(
      fc.property(fc.array(request, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 20 }), (rs, cuts) => {
        const bytes = withHello(...rs.map(reqBytes));
        const whole = decodeRequests([bytes]);
        expect(whole.field).toBeUndefined();
        expect(whole.requests).toEqual(rs);
        expect(decodeRequests(split(bytes, cuts))).toEqual(whole);
      }),
      params,
    );
  });

  it('any bytes: requests or a KfetchError naming a field, the same however they are split', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), fc.array(fc.nat(), { maxLength: 10 }), (raw, hello, cuts) => {
        const bytes = hello ? withHello(Buffer.from(raw)) : Buffer.from(raw);
        const whole = decodeRequests([bytes]);
        expect(decodeRequests(split(bytes, cuts))).toEqual(whole);
      }),
      params,
    );
  });

  it('a valid stream with one byte changed: frames or a typed error, never an exception', () => {
    fc.assert(
      fc.property(fc.array(request, { minLength: 1, maxLength: 4 }), fc.nat(), fc.nat({ max: 255 }), (rs, pos, byte) => {
        const bytes = withHello(...rs.map(reqBytes));
        bytes[pos % bytes.length] = byte;
        decodeRequests([bytes]);
      }),
      params,
    );
  });

  const bad = (patch: (f: Buffer) => void): Buffer => {
    const f = Buffer.from(reqBytes(GOOD));
    patch(f);
    return withHello(f);
  };
  it.each<[string, Buffer, string]>([
    ['an HTTP request instead of a hello', Buffer.from('GET / HTTP/1.1\r\n\r\n'), 'hello.magic'],
    ['version 2', Buffer.from('KWIRE\x02\x00\x00', 'latin1'), 'hello.version'],
    ['flags set', Buffer.from('KWIRE\x01\x00\x01', 'latin1'), 'hello.flags'],
    ['unknown frame type 2', bad((f) => (f[0] = 2)), 'request.type'],
    ['frame type 0', bad((f) => (f[0] = 0)), 'request.type'],
    ['reserved byte set', bad((f) => (f[1] = 1)), 'request.reserved'],
    ['count 0', bad((f) => f.writeUInt16BE(0, 2)), 'request.count'],
    ['count over the cap', bad((f) => f.writeUInt16BE(WIRE_MAX_BLOCKS_PER_REQUEST + 1, 2)), 'request.count'],
    ['count × size over 4 MiB', bad((f) => (f.writeUInt16BE(1024, 2), f.writeUInt32BE(8192, 40))), 'request.count'],
    ['block size 511', bad((f) => f.writeUInt32BE(511, 40)), 'request.blockSize'],
    ['block size 2^32-1', bad((f) => f.writeUInt32BE(0xffffffff, 40)), 'request.blockSize'],
    ['first block past 2^22', bad((f) => f.writeUInt32BE(2 ** 22, 44)), 'request.firstBlock'],
    ['a long frame (49 bytes: the extra byte is read as a frame type)', withHello(reqBytes(GOOD), Buffer.from([0x00])), 'request.type'],
  ])('refuses %s (%#)', (_name, bytes, field) => {
    expect(decodeRequests([bytes]).field).toBe(field);
    // …and one byte at a time, the same.
    expect(decodeRequests([...bytes].map((b) => Buffer.from([b]))).field).toBe(field);
  });

  it('a short frame is no frame yet: held (partialBytes), not delivered', () => {
    const d = new RequestDecoder();
    const got: WireRequest[] = [];
    d.feed(withHello(reqBytes(GOOD)).subarray(0, HELLO_BYTES + REQUEST_BYTES - 1), (r) => got.push(r));
    expect(got).toEqual([]);
    expect(d.partialBytes).toBe(REQUEST_BYTES - 1);
  });

  it('keeps refusing after a bad frame', () => {
    const d = new RequestDecoder();
    expect(() => d.feed(Buffer.from('X'), () => undefined)).toThrow(KfetchError);
    expect(() => d.feed(encodeHello(), () => undefined)).toThrow(/hello\.magic/);
  });

  it('the encoder refuses what the decoder would', () => {
    expect(() => encodeRequest({ ...GOOD, count: 0 })).toThrow(/request\.count/);
    expect(() => encodeRequest({ ...GOOD, fileId: 'AB'.repeat(32) })).toThrow(/request\.fileId/);
    expect(() => encodeRequest({ ...GOOD, requestId: -1 })).toThrow(/request\.requestId/);
  });
});

describe('wire reply decoder', () => {
  const reply = fc.record({
    requestId: fc.nat({ max: 0xffffffff }),
    status: fc.constantFrom(0, 0, 0, 1, 2, 3, 4) as fc.Arbitrary<0 | 1 | 2 | 3 | 4>,
    retryAfterS: fc.nat({ max: 0xffff }),
    body: fc.uint8Array({ maxLength: 3000 }),
  });
  const encode = (r: { requestId: number; status: 0 | 1 | 2 | 3 | 4; retryAfterS: number; body: Uint8Array }): Buffer => {
    const length = r.status === 0 ? r.body.length : 0;
    const retryAfterS = r.status === 2 ? r.retryAfterS : 0;
    return Buffer.concat([encodeReplyHeader({ requestId: r.requestId, status: r.status, retryAfterS, length }), r.status === 0 ? r.body : Buffer.alloc(0)]);
  };

  it('round-trips any valid replies, however the bytes are split', () => {
    fc.assert(
      fc.property(fc.array(reply, { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 20 }), (rs, cuts) => {
        const bytes = withHello(...rs.map(encode));
        const expected = rs.map((r) => ({ id: r.requestId, length: r.body.length }));
        const whole = decodeReplies([bytes], expected);
        expect(whole.field).toBeUndefined();
        expect(whole.replies.map((r) => [r.requestId, r.status, r.retryAfterS, r.length, [...r.body]])).toEqual(
          rs.map((r) => [r.requestId, r.status, r.status === 2 ? r.retryAfterS : 0, r.status === 0 ? r.body.length : 0, r.status === 0 ? [...r.body] : []]),
        );
        expect(decodeReplies(split(bytes, cuts), expected)).toEqual(whole);
      }),
      params,
    );
  });

  it('any bytes: replies or a KfetchError naming a field, the same however they are split', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 400 }),
        fc.array(fc.record({ id: fc.nat({ max: 3 }), length: fc.nat({ max: 64 }) }), { maxLength: 5 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (raw, expected, cuts) => {
          const bytes = withHello(Buffer.from(raw));
          const whole = decodeReplies([bytes], expected);
          expect(decodeReplies(split(bytes, cuts), expected)).toEqual(whole);
        },
      ),
      params,
    );
  });

  const head = (requestId: number, status: number, retry: number, high: number, low: number): Buffer => {
    const b = Buffer.alloc(REPLY_HEADER_BYTES);
    b.writeUInt32BE(requestId, 0);
    b[4] = status;
    b.writeUInt16BE(retry, 6);
    b.writeUInt32BE(high, 8);
    b.writeUInt32BE(low, 12);
    return b;
  };
  it.each<[string, Buffer, string]>([
    ['an HTTP reply instead of a hello', Buffer.from('HTTP/1.1 200 OK\r\n'), 'serverHello.magic'],
    ['unknown status 5', withHello(head(1, 5, 0, 0, 0)), 'reply.status'],
    ['reserved byte set', withHello(Buffer.from(head(1, 0, 0, 0, 10).fill(1, 5, 6))), 'reply.reserved'],
    ['retry-after without busy', withHello(head(1, 1, 3, 0, 0)), 'reply.retryAfter'],
    ['a length lying long', withHello(head(1, 0, 0, 0, 11)), 'reply.length'],
    ['a length lying short', withHello(head(1, 0, 0, 0, 9)), 'reply.length'],
    ['a length past 2^32', withHello(head(1, 0, 0, 1, 10)), 'reply.length'],
    ['a body with not-held', withHello(head(1, 1, 0, 0, 10)), 'reply.length'],
    ['a reply to a request never sent', withHello(head(2, 0, 0, 0, 10)), 'reply.requestId'],
    ['replies out of order', withHello(head(1, 0, 0, 0, 10), Buffer.alloc(10), head(1, 0, 0, 0, 10)), 'reply.requestId'],
    ['a long body (16 bytes after the reply, none awaited)', withHello(head(1, 0, 0, 0, 10), Buffer.alloc(26)), 'reply.requestId'],
  ])('refuses %s (%#)', (_name, bytes, field) => {
    expect(decodeReplies([bytes], [{ id: 1, length: 10 }]).field).toBe(field);
    expect(decodeReplies([...bytes].map((b) => Buffer.from([b])), [{ id: 1, length: 10 }]).field).toBe(field);
  });

  it('bodies read in place (as the client does mid-body) give the same replies as fed bytes', () => {
    fc.assert(
      fc.property(fc.array(reply, { maxLength: 6 }), fc.array(fc.integer({ min: 1, max: 5000 }), { maxLength: 30 }), (rs, reads) => {
        const bytes = withHello(...rs.map(encode));
        const expected = rs.map((r) => ({ id: r.requestId, length: r.body.length }));
        const queue = [...expected];
        const d = new ReplyDecoder((id) => (queue[0]?.id === id ? { length: queue[0].length } : undefined));
        const got: unknown[] = [];
        const onReply = (r: WireReply): void => {
          queue.shift();
          got.push([r.requestId, r.status, r.retryAfterS, r.length, [...r.body]]);
        };
        let at = 0;
        let i = 0;
        while (at < bytes.length) {
          const size = reads[i++ % Math.max(1, reads.length)] ?? 4096;
          const window = d.inPlaceWindow();
          if (window !== undefined) {
            const n = Math.min(window.length, size, bytes.length - at);
            bytes.copy(window, 0, at, at + n);
            d.receivedInPlace(n, onReply);
            at += n;
          } else {
            const n = Math.min(size, bytes.length - at);
            d.feed(bytes.subarray(at, at + n), onReply);
            at += n;
          }
        }
        const fed = decodeReplies([bytes], expected);
        expect(got).toEqual(fed.replies.map((r) => [r.requestId, r.status, r.retryAfterS, r.length, [...r.body]]));
      }),
      params,
    );
  });

  it('a short body is no reply yet', () => {
    const r = decodeReplies([withHello(head(1, 0, 0, 0, 10), Buffer.alloc(9))], [{ id: 1, length: 10 }]);
    expect(r).toEqual({ replies: [] });
  });

  it('lands the body in the caller buffer', () => {
    const into = Buffer.alloc(20);
    const d = new ReplyDecoder(() => ({ length: 4, into }));
    let got: WireReply | undefined;
    d.feed(withHello(head(9, 0, 0, 0, 4), Buffer.from([1, 2, 3, 4])), (r) => (got = r));
    expect(got?.body.buffer).toBe(into.buffer);
    expect([...into.subarray(0, 5)]).toEqual([1, 2, 3, 4, 0]);
  });
});
