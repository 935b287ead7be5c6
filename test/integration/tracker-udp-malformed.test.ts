// Raw datagrams at the UDP tracker (issue 14 point 3): every malformed datagram from a source that has not proven
// its address is dropped unanswered and counted; a proven source hears which field was wrong; a connection id that
// is not the source's own (another port, another minute, made up) is never accepted, and nothing answers an unproven
// source with more bytes than it sent (no reflection amplification).
// "Unanswered" is shown without sleeping: after each datagram the probe sends a connect from the same socket; the
// tracker handles both synchronously and in order, so a reply to the first would arrive before the connect reply.
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { openPeerStore } from '../../src/tracker/open-peer-store.js';
import type { PeerStore } from '../../src/tracker/peer-store.js';
import { storeLimits, trackerLimits } from '../../src/tracker/tracker-server.js';
import { startUdpTracker, type RunningUdpTracker } from '../../src/tracker/udp-tracker.js';
import { UDP_MAGIC, decodeReply, encodeAnnounceRequest, encodeConnectRequest, type UdpReply } from '../../src/tracker/udp-wire.js';
import { testStoreSpec } from '../helpers/tracker-store.js';
import { within } from '../helpers/wait.js';

const SWARM = 'cd'.repeat(32);
const started: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const s of started.splice(0).reverse()) await s.close();
});

let clockMs = 1_000 * 60_000; // the start of a connection-id minute
async function world(): Promise<{ store: PeerStore; udp: RunningUdpTracker }> {
  const store = await openPeerStore(testStoreSpec(), storeLimits(trackerLimits({ minIntervalMs: 0 })));
  started.push(store);
  const udp = await startUdpTracker({ store, now: () => clockMs });
  started.push(udp);
  return { store, udp };
}

/** A raw client socket that records every datagram it gets. */
async function probe(target: number): Promise<{ socket: Socket; got: Buffer[]; send(d: Buffer): void; next(): Promise<Buffer>; close(): Promise<void> }> {
  const socket = createSocket('udp4');
  const got: Buffer[] = [];
  const waiters: Array<(b: Buffer) => void> = [];
  socket.on('message', (m) => {
    const w = waiters.shift();
    if (w !== undefined) w(m);
    else got.push(m);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  return {
    socket,
    got,
    send: (d) => socket.send(d, target, '127.0.0.1'),
    next: () => within(new Promise<Buffer>((r) => (got.length > 0 ? r(got.shift()!) : waiters.push(r))), 5_000, 'a reply datagram'),
    close: () => new Promise<void>((r) => socket.close(() => r())),
  };
}

function decoded(b: Buffer): UdpReply {
  const r = decodeReply(b);
  if (!r.ok) throw new Error(`reply did not decode: ${r.error.field}: ${r.error.message}`);
  return r.value;
}

type Probe = Awaited<ReturnType<typeof probe>>;

/** The connection id this probe gets. */
async function connect(p: Probe, tx = 77): Promise<Buffer> {
  p.send(encodeConnectRequest(tx));
  const r = decoded(await p.next());
  if (r.action !== 'connect' || r.transactionId !== tx) throw new Error(`expected the connect reply ${tx}, got ${JSON.stringify(r)}`);
  return r.connectionId;
}

/** Send `d`, then show that the next datagram back is the reply to a fresh connect: `d` got no answer. */
async function unanswered(p: Probe, d: Buffer): Promise<void> {
  p.send(d);
  await connect(p, 4242);
}

const id16 = Buffer.from('0123456789abcdef', 'hex');
function announceBytes(connectionId: Buffer, over: Partial<Parameters<typeof encodeAnnounceRequest>[0]> = {}): Buffer {
  return encodeAnnounceRequest({ connectionId, transactionId: 9, swarmId: SWARM, port: 7201, progress: 500_000, event: 'none', numWant: 50, ...over });
}
/** An announce with one byte changed (offset from the start; swarm id at 17..48, port at 49). */
function patched(d: Buffer, at: number, ...bytes: number[]): Buffer {
  const c = Buffer.from(d);
  bytes.forEach((b, i) => (c[at + i] = b));
  return c;
}

describe('udp tracker: malformed datagrams from an unproven source are dropped and counted', () => {
  const connectOf = (action: number, magic = UDP_MAGIC): Buffer => {
    const b = Buffer.alloc(16);
    magic.copy(b, 0);
    b.writeUInt32BE(action, 8);
    return b;
  };
  const base = announceBytes(id16);
  const withBits = announceBytes(id16, { blocks: { blockSize: 4096, bytes: Buffer.alloc(10, 0xff) } });
  const rows: Array<[string, Buffer]> = [
    ['empty', Buffer.alloc(0)],
    ['short: 15 bytes', connectOf(0).subarray(0, 15)],
    ['long connect: 17 bytes', Buffer.concat([connectOf(0), Buffer.from([0])])],
    ['bad magic', connectOf(0, Buffer.from('KASCADE\x02'))],
    ['over the 1,400-byte cap', Buffer.concat([base, Buffer.alloc(1400)])],
    ['an announce of only 16 bytes (no id length byte)', connectOf(1, id16)],
    ['unknown action 2', connectOf(2)],
    ['unknown action 0xffffffff', connectOf(0xffffffff)],
    ['swarm id length 15', patched(base, 16, 15)],
    ['swarm id length 65', patched(base, 16, 65)],
    ['swarm id length lies (64 said, 32 sent)', patched(base, 16, 64)],
    ['announce cut short', base.subarray(0, base.length - 1)],
    ['trailing bytes shorter than a bitfield header', Buffer.concat([base, Buffer.alloc(3)])],
    ['bitfield length lies (longer)', patched(withBits, withBits.length - 12, 0, 11)],
    ['bitfield length lies (shorter)', patched(withBits, withBits.length - 12, 0, 9)],
    ['bitfield of 0 bytes', Buffer.concat([base, Buffer.from([0, 0, 16, 0, 0, 0])])],
    ['block size 1', patched(withBits, withBits.length - 16, 0, 0, 0, 1)],
    ['progress over 1,000,000', patched(base, 51, 0xff, 0xff, 0xff, 0xff)],
    ['event 4', patched(base, 55, 4)],
  ];

  it.each(rows)('%s', async (_name, datagram) => {
    const { udp, store } = await world();
    const p = await probe(udp.port);
    started.push(p);
    await unanswered(p, datagram);
    expect(p.got).toEqual([]);
    const s = udp.stats();
    // Rows with a made-up (well-formed) connection id would be "badConnectionId"; these are all malformed.
    expect(s.malformed).toBe(1);
    expect(s.datagrams).toBe(2);
    expect((await store.stats()).peers).toBe(0);
  });
});

describe('udp tracker: a proven source hears what was wrong', () => {
  it('an error reply names the field (progress, event, blocks)', async () => {
    const { udp, store } = await world();
    const p = await probe(udp.port);
    started.push(p);
    const id = await connect(p);
    for (const [at, bytes, field] of [
      [51, [0xff, 0xff, 0xff, 0xff], 'progress'],
      [55, [9], 'event'],
    ] as const) {
      p.send(patched(announceBytes(id), at, ...bytes));
      const r = decoded(await p.next());
      expect(r).toMatchObject({ action: 'error', transactionId: 9 });
      expect(r.action === 'error' && r.message.startsWith(`${field}:`)).toBe(true);
    }
    expect(udp.stats()).toMatchObject({ malformed: 2, answers: { refused: 2 } });
    expect((await store.stats()).peers).toBe(0);
  });
});

describe('udp tracker: the connection id proves the source address', () => {
  it('a made-up id gets only the 8-byte "connect again", smaller than the announce, and records nothing', async () => {
    const { udp, store } = await world();
    const p = await probe(udp.port);
    started.push(p);
    const d = announceBytes(id16);
    p.send(d);
    const reply = await p.next();
    expect(reply.length).toBe(8);
    expect(reply.length).toBeLessThan(d.length);
    expect(decoded(reply)).toEqual({ action: 'reconnect', transactionId: 9 });
    expect(udp.stats().badConnectionId).toBe(1);
    expect((await store.stats()).peers).toBe(0);
  });

  it('a connect reply is no larger than the connect request', async () => {
    const { udp } = await world();
    const p = await probe(udp.port);
    started.push(p);
    const req = encodeConnectRequest(1);
    p.send(req);
    expect((await p.next()).length).toBeLessThanOrEqual(req.length);
  });

  it('an id taken from another source port is refused', async () => {
    const { udp, store } = await world();
    const a = await probe(udp.port);
    const b = await probe(udp.port);
    started.push(a, b);
    const idOfA = await connect(a);
    b.send(announceBytes(idOfA));
    expect(decoded(await b.next()).action).toBe('reconnect');
    expect((await store.stats()).peers).toBe(0);
    // The owner itself is accepted: the refusal above is about the port, not the id.
    a.send(announceBytes(idOfA));
    expect(decoded(await a.next()).action).toBe('announce');
    expect((await store.stats()).peers).toBe(1);
  });

  it('an id is accepted in its minute and the next, refused after (expired)', async () => {
    const { udp, store } = await world();
    const p = await probe(udp.port);
    started.push(p);
    clockMs = 2_000 * 60_000;
    const id = await connect(p);
    clockMs += 60_000 + 59_000; // the next minute, near its end
    p.send(announceBytes(id, { port: 7202 }));
    expect(decoded(await p.next()).action).toBe('announce');
    clockMs += 1_000; // two minutes on: expired
    p.send(announceBytes(id, { port: 7203 }));
    expect(decoded(await p.next()).action).toBe('reconnect');
    expect((await store.stats()).peers).toBe(1);
    expect(udp.stats().badConnectionId).toBe(1);
  });
});
