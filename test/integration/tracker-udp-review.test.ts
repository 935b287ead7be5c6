// Issue 14 review: no reflection amplification from the UDP tracker, over a real socket on 127.0.0.1. Whatever an
// unproven source sends — random bytes, or a connect or announce (with an id it was never given) with bytes changed,
// cut or added — every datagram the tracker sends back is no larger than the one it answers. Ordering as in
// tracker-udp-malformed.test.ts: after each datagram the probe sends a connect; the tracker answers an unproven source
// synchronously and in order, so whatever arrives before that connect's reply answers the datagram.

import { createSocket, type Socket } from 'node:dgram';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { openPeerStore } from '../../src/tracker/open-peer-store.js';
import { storeLimits, trackerLimits } from '../../src/tracker/tracker-server.js';
import { startUdpTracker } from '../../src/tracker/udp-tracker.js';
import { UDP_MAX_DATAGRAM, decodeReply, encodeAnnounceRequest, encodeConnectRequest } from '../../src/tracker/udp-wire.js';
import { testStoreSpec } from '../helpers/tracker-store.js';
import { within } from '../helpers/wait.js';

const started: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const s of started.splice(0).reverse()) await s.close();
});

const validAnnounce = encodeAnnounceRequest({
  connectionId: Buffer.from('0011223344556677', 'hex'),
  transactionId: 5,
  swarmId: 'ab'.repeat(32),
  port: 7000,
  progress: 1_000_000,
  event: 'started',
  numWant: 200,
  blocks: { blockSize: 4096, bytes: Buffer.alloc(300, 0xff) },
});

/** The smallest announce there is (42 bytes): where a reply larger than the request would show first. */
const smallAnnounce = encodeAnnounceRequest({
  connectionId: Buffer.from('8899aabbccddeeff', 'hex'),
  transactionId: 6,
  swarmId: 'cd'.repeat(16),
  port: 7001,
  progress: 0,
  event: 'none',
  numWant: 0,
});

/** Datagrams an unproven source might send: random bytes, and valid requests with bytes changed, cut or added. */
const datagram = fc.oneof(
  fc.uint8Array({ maxLength: UDP_MAX_DATAGRAM + 8 }).map((b) => Buffer.from(b)),
  fc
    .tuple(
      fc.constantFrom(encodeConnectRequest(1), validAnnounce, smallAnnounce),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      fc.integer({ min: -40, max: 40 }),
    )
    .map(([base, flips, extra]) => {
      const b = Buffer.from(base);
      for (const [at, v] of flips) b[at % b.length] = v;
      return extra >= 0 ? Buffer.concat([b, Buffer.alloc(extra, 1)]) : b.subarray(0, Math.max(0, b.length + extra));
    }),
);

describe('udp tracker review (issue 14): no amplification to an unproven source', () => {
  it('every reply to any datagram from an unproven source is at most as large as that datagram', async () => {
    const store = await openPeerStore(testStoreSpec(), storeLimits(trackerLimits({ minIntervalMs: 0 })));
    started.push(store);
    const udp = await startUdpTracker({ store });
    started.push(udp);
    const socket: Socket = createSocket('udp4');
    started.push({ close: () => new Promise<void>((r) => socket.close(() => r())) });
    const got: Buffer[] = [];
    let wake: (() => void) | undefined;
    socket.on('message', (m) => {
      got.push(m);
      wake?.();
    });
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    const samples = fc.sample(datagram, { numRuns: 400, seed: 14 });
    let answered = 0;
    for (let i = 0; i < samples.length; i++) {
      const d = samples[i]!;
      const marker = 0xf0000000 + i;
      socket.send(d, udp.port, '127.0.0.1');
      socket.send(encodeConnectRequest(marker), udp.port, '127.0.0.1');
      const replies: Buffer[] = [];
      await within(
        (async () => {
          for (;;) {
            const m = got.shift();
            if (m === undefined) {
              await new Promise<void>((r) => (wake = r));
              continue;
            }
            const r = decodeReply(m);
            if (r.ok && r.value.action === 'connect' && r.value.transactionId === marker) return;
            replies.push(m);
          }
        })(),
        5_000,
        `the marker reply after sample ${i}`,
      );
      for (const reply of replies) expect(reply.length, `sample ${i} (${d.length} bytes: ${d.toString('hex').slice(0, 80)})`).toBeLessThanOrEqual(d.length);
      answered += replies.length;
    }
    // The table was not empty of answers: connects (16 for 16) and reconnects (8 for an announce) came back.
    expect(answered).toBeGreaterThan(0);
    expect(udp.stats().malformed).toBeGreaterThan(0);
  });
});
