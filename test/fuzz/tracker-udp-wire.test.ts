// Properties of the UDP tracker codec (issue 14 point 3): the decoders return a typed value or a typed error for
// any bytes (never throw), every datagram the encoders write is within the 1,400-byte cap and decodes back to what
// was encoded. Runs KFETCH_FUZZ_RUNS cases (default 200; `npm run test:fuzz` runs 20 000).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalIp } from '../../src/util/address-policy.js';
import {
  UDP_MAX_DATAGRAM,
  decodeReply,
  decodeRequest,
  encodeAnnounceReply,
  encodeAnnounceRequest,
  encodeBackoffReply,
  encodeConnectReply,
  encodeConnectRequest,
  encodeErrorReply,
  encodeReconnectReply,
  type Decoded,
} from '../../src/tracker/udp-wire.js';

const numRuns = Number(process.env.KFETCH_FUZZ_RUNS ?? 200);

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const id8 = fc.uint8Array({ minLength: 8, maxLength: 8 }).map((a) => Buffer.from(a));
const swarmId = fc.integer({ min: 16, max: 64 }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n }).map((a) => Buffer.from(a).toString('hex')));
const announceFields = fc.record({
  connectionId: id8,
  transactionId: u32,
  swarmId,
  port: fc.integer({ min: 0, max: 65535 }),
  progress: fc.integer({ min: 0, max: 1_000_000 }),
  event: fc.constantFrom('none', 'started', 'completed', 'stopped' as const),
  numWant: fc.integer({ min: 0, max: 65535 }),
  blocks: fc.option(
    fc.record({ blockSize: fc.integer({ min: 512, max: 64 * 1024 * 1024 }), bytes: fc.uint8Array({ minLength: 1, maxLength: 1200 }).map((a) => Buffer.from(a)) }),
    { nil: undefined },
  ),
});
const peer = fc.record({
  ip: fc.oneof(fc.ipV4(), fc.ipV6()),
  port: fc.integer({ min: 0, max: 65535 }),
  progress: fc.double({ min: 0, max: 1, noNaN: true }),
  feeder: fc.boolean(),
});

/** Valid datagrams of every kind, then with bytes flipped, cut or appended: the decoders' interesting inputs. */
const validRequest = fc.oneof(
  u32.map(encodeConnectRequest),
  announceFields.filter((a) => 17 + a.swarmId.length / 2 + 9 + (a.blocks ? 6 + a.blocks.bytes.length : 0) <= UDP_MAX_DATAGRAM).map((a) => {
    const { blocks, ...rest } = a;
    return encodeAnnounceRequest(blocks === undefined ? rest : { ...rest, blocks });
  }),
);
const validReply = fc.oneof(
  fc.tuple(u32, id8).map(([t, i]) => encodeConnectReply(t, i)),
  fc.tuple(u32, u32, fc.array(peer, { maxLength: 130 })).map(([t, iv, ps]) => encodeAnnounceReply(t, iv, ps).datagram),
  fc.tuple(u32, fc.string({ maxLength: 300 })).map(([t, m]) => encodeErrorReply(t, m)),
  fc.tuple(u32, fc.integer({ min: 1, max: 86_400 }), fc.constantFrom('too-soon', 'full', 'store-down' as const)).map(([t, s, r]) => encodeBackoffReply(t, s, r)),
  u32.map(encodeReconnectReply),
);
const mutate = (valid: fc.Arbitrary<Buffer>): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    fc.uint8Array({ maxLength: 1500 }),
    valid,
    fc.tuple(valid, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([d, at, v]) => {
      const c = Buffer.from(d);
      if (c.length > 0) c[at % c.length] = v;
      return c;
    }),
    fc.tuple(valid, fc.nat()).map(([d, n]) => d.subarray(0, n % (d.length + 1))),
    fc.tuple(valid, fc.uint8Array({ minLength: 1, maxLength: 64 })).map(([d, extra]) => Buffer.concat([d, extra])),
  );

function wellTyped<T>(r: Decoded<T>): void {
  if (r.ok) return;
  expect(typeof r.error.field).toBe('string');
  expect(r.error.field.length).toBeGreaterThan(0);
  expect(typeof r.error.message).toBe('string');
}

describe('fuzz: udp-wire decoders', () => {
  it('decodeRequest never throws: a typed value or a typed error naming the field', () => {
    fc.assert(
      fc.property(mutate(validRequest), (d) => {
        const r = decodeRequest(d);
        wellTyped(r);
        if (r.ok && r.value.action === 'announce') {
          expect(r.value.progress).toBeLessThanOrEqual(1_000_000);
          expect(r.value.swarmId).toMatch(/^[0-9a-f]{32,128}$/);
        }
      }),
      { numRuns },
    );
  });

  it('decodeReply never throws, and a decoded announce reply has only valid families and progress', () => {
    fc.assert(
      fc.property(mutate(validReply), (d) => {
        const r = decodeReply(d);
        wellTyped(r);
        if (r.ok && r.value.action === 'announce') {
          for (const p of r.value.peers) {
            expect(canonicalIp(p.ip)).toBe(p.ip);
            expect(p.progress).toBeLessThanOrEqual(1_000_000);
          }
        }
      }),
      { numRuns },
    );
  });
});

describe('regressions: udp-wire', () => {
  it('a 16-byte datagram with action 1 (announce) is a typed error, not a RangeError (fuzz seed, issue 14)', () => {
    const d = Buffer.alloc(16);
    d.writeUInt32BE(1, 8);
    expect(decodeRequest(d)).toMatchObject({ ok: false, error: { field: 'datagram' } });
  });
});

describe('fuzz: udp-wire round trips', () => {
  it('announce requests: decode(encode(a)) is a, within the cap (or encode refuses over it)', () => {
    fc.assert(
      fc.property(announceFields, (a) => {
        const { blocks, ...rest } = a;
        const fields = blocks === undefined ? rest : { ...rest, blocks };
        let d: Buffer;
        try {
          d = encodeAnnounceRequest(fields);
        } catch (err) {
          expect((err as { code?: string }).code).toBe('KF_E_INPUT');
          return;
        }
        expect(d.length).toBeLessThanOrEqual(UDP_MAX_DATAGRAM);
        expect(decodeRequest(d)).toEqual({ ok: true, value: { action: 'announce', ...fields } });
      }),
      { numRuns },
    );
  });

  it('announce replies: as many peers as fit, each decoded as encoded, never over the cap', () => {
    fc.assert(
      fc.property(u32, u32, fc.array(peer, { maxLength: 200 }), fc.integer({ min: 14, max: 2000 }), (tx, iv, peers, max) => {
        const { datagram, count } = encodeAnnounceReply(tx, iv, peers, max);
        expect(datagram.length).toBeLessThanOrEqual(Math.min(max, UDP_MAX_DATAGRAM));
        const r = decodeReply(datagram);
        expect(r.ok).toBe(true);
        if (!r.ok || r.value.action !== 'announce') return;
        expect(r.value).toMatchObject({ transactionId: tx, intervalSeconds: iv });
        expect(r.value.peers).toEqual(
          peers.slice(0, count).map((p) => ({ ip: canonicalIp(p.ip), port: p.port, progress: Math.round(p.progress * 1_000_000), feeder: p.feeder })),
        );
        // Nothing was left out that would have fit.
        if (count < peers.length) expect(datagram.length + (canonicalIp(peers[count]!.ip)!.includes(':') ? 24 : 12)).toBeGreaterThan(Math.min(max, UDP_MAX_DATAGRAM));
      }),
      { numRuns },
    );
  });

  it('connect, error, back-off and reconnect round-trip', () => {
    fc.assert(
      fc.property(u32, id8, fc.string({ maxLength: 300 }), fc.integer({ min: 1, max: 86_400 }), (tx, id, msg, secs) => {
        expect(decodeRequest(encodeConnectRequest(tx))).toEqual({ ok: true, value: { action: 'connect', transactionId: tx } });
        expect(decodeReply(encodeConnectReply(tx, id))).toEqual({ ok: true, value: { action: 'connect', transactionId: tx, connectionId: id } });
        const e = decodeReply(encodeErrorReply(tx, msg));
        expect(e.ok).toBe(true);
        if (e.ok && e.value.action === 'error') {
          expect(Buffer.byteLength(e.value.message)).toBeLessThanOrEqual(200);
          // Cut only at a character boundary: the text is a prefix of the message (lone surrogates become U+FFFD).
          expect(Buffer.from(msg).toString().startsWith(e.value.message)).toBe(true);
        }
        expect(decodeReply(encodeBackoffReply(tx, secs, 'full'))).toEqual({ ok: true, value: { action: 'backoff', transactionId: tx, retryAfterSeconds: secs, reason: 'full' } });
        expect(decodeReply(encodeReconnectReply(tx))).toEqual({ ok: true, value: { action: 'reconnect', transactionId: tx } });
      }),
      { numRuns },
    );
  });
});
