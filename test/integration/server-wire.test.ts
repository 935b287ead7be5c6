// The binary peer wire's seeder side (src/server/wire-server.ts) over real sockets on 127.0.0.1: exact bytes for
// runs of blocks, the status of every refusal, only held blocks ever read, every malformed frame closing the
// connection, slow senders cut after the frame timeout, a reader that never reads holding bounded memory, and the
// admission shared with HTTP. Raw `net` sockets; the codec only builds frames and reads replies.

import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Kascade } from '../../src/kascade/kascade.js';
import { parseKascade } from '../../src/kascade/parse.js';
import {
  REPLY_HEADER_BYTES,
  ReplyDecoder,
  WireStatus,
  encodeHello,
  encodeRequest,
  type WireReply,
  type WireRequest,
} from '../../src/peer/wire-frames.js';
import { startBlockServer, type BlockServer, type BlockServerLimits } from '../../src/server/block-server.js';
import { Library, VerifiedServedFile } from '../../src/server/library.js';
import { dataFileCounters, openDataFileToSeed, type DataFile } from '../../src/store/data-file.js';
import { Bitfield } from '../../src/util/bitfield.js';
import { kascadeJsonFor, makePayload } from '../helpers/make-file.js';
import { rawRequest, requestBytes } from '../helpers/raw-http.js';
import { until, within } from '../helpers/wait.js';

const log = pino({ level: 'silent' });
const SIZE = 100_000; // 25 blocks of 4096 (the last 1696 bytes), 13 of 8192
const BIG = 8 * 1024 * 1024;
const FRAME_TIMEOUT_MS = 600;
const IDLE_MS = 1_500;
let dir: string;
type Served = { k: Kascade; data: DataFile; bytes: Buffer };
let full: Served;
let partial: Served;
let big: Served;
const servers: BlockServer[] = [];
const sockets: Socket[] = [];
let server: BlockServer;
/** Blocks (at 4096) of `partial` that are held. */
const PARTIAL_HELD = new Set([0, 2, 3, 5, 8, 13, 21, 24]);

async function served(name: string, seed: string, size: number): Promise<Served> {
  const p = makePayload(dir, name, size, seed);
  const json = kascadeJsonFor(p.bytes!, { filename: name, tracker: 'http://127.0.0.1:9/peers/x.json', blockSizes: [4096, 8192] });
  const k = parseKascade(JSON.stringify(json), `${name}.json`);
  return { k, data: await openDataFileToSeed(p.path, size), bytes: p.bytes! };
}

async function start(library: Library, limits: Partial<BlockServerLimits> = {}, wire = true): Promise<BlockServer> {
  const s = await startBlockServer({ library, host: '127.0.0.1', port: 0, log, limits, ...(wire ? { wirePort: 0 } : {}) });
  servers.push(s);
  return s;
}

/** A raw wire connection: everything received is kept; `closed` resolves when the server closes it. */
class Wire {
  readonly socket: Socket;
  received = Buffer.alloc(0);
  readonly closed: Promise<void>;
  private waiters: (() => void)[] = [];

  constructor(port: number, opts: { paused?: boolean } = {}) {
    this.socket = connect({ host: '127.0.0.1', port });
    sockets.push(this.socket);
    this.socket.on('error', () => undefined);
    if (opts.paused === true) this.socket.pause();
    this.socket.on('data', (b: Buffer) => {
      this.received = Buffer.concat([this.received, b]);
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
  }

  send(...parts: Buffer[]): void {
    this.socket.write(Buffer.concat(parts));
  }

  /** Wait until `n` bytes arrived (or the connection closed). */
  async bytes(n: number, ms = 10_000): Promise<Buffer> {
    await within(
      (async () => {
        while (this.received.length < n && !this.socket.destroyed) await new Promise<void>((r) => this.waiters.push(r));
      })(),
      ms,
      `${n} bytes`,
    );
    return this.received;
  }
}

/** Send the hello and `requests` in one write; the replies, decoded in order (expected ok lengths from the geometry). */
async function exchange(port: number, requests: WireRequest[], k: Kascade): Promise<WireReply[]> {
  const w = new Wire(port);
  w.send(encodeHello(), ...requests.map((r) => encodeRequest(r)));
  const queue = requests.map((r) => ({ id: r.requestId, length: lengthOf(k, r) }));
  const replies: WireReply[] = [];
  const d = new ReplyDecoder((id) => (queue[0]?.id === id ? { length: queue[0].length } : undefined));
  let fed = 0;
  await within(
    (async () => {
      while (replies.length < requests.length) {
        await w.bytes(fed + 1);
        if (w.received.length === fed) throw new Error('connection closed before every reply');
        d.feed(w.received.subarray(fed), (r) => {
          queue.shift();
          replies.push({ ...r, body: Buffer.from(r.body) });
        });
        fed = w.received.length;
      }
    })(),
    10_000,
    'replies',
  );
  w.socket.destroy();
  return replies;
}

function lengthOf(k: Kascade, r: WireRequest): number {
  if (!k.offers(r.blockSize)) return 0;
  const g = k.geometry(r.blockSize);
  if (r.firstBlock + r.count > g.count) return 0;
  return g.range(r.firstBlock + r.count - 1).last - g.start(r.firstBlock) + 1;
}

const req = (k: Kascade, firstBlock: number, count = 1, blockSize = 4096, requestId = firstBlock): WireRequest => ({
  requestId,
  fileId: k.filehash,
  blockSize,
  firstBlock,
  count,
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kfetch-wire-'));
  full = await served('full.bin', 'full', SIZE);
  partial = await served('partial.bin', 'partial', SIZE);
  big = await served('big.bin', 'big', BIG);
  const library = new Library();
  library.add(new VerifiedServedFile(full.k, full.data, Bitfield.full(25), 4096));
  const held = new Bitfield(25);
  for (const i of PARTIAL_HELD) held.set(i);
  library.add(new VerifiedServedFile(partial.k, partial.data, held, 4096));
  library.add(new VerifiedServedFile(big.k, big.data, Bitfield.full(BIG / 4096), 4096));
  server = await start(library, { headersTimeoutMs: FRAME_TIMEOUT_MS, idleTimeoutMs: IDLE_MS });
});

afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
});

afterAll(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.map((s) => s.close()));
  for (const f of [full, partial, big]) f.data.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('wire: serving', () => {
  it('answers the hello with its own and a block with its exact bytes', async () => {
    const [r] = await exchange(server.wirePort!, [req(full.k, 0)], full.k);
    expect(r).toMatchObject({ requestId: 0, status: WireStatus.ok, length: 4096 });
    expect(r!.body.equals(full.bytes.subarray(0, 4096))).toBe(true);
  });

  it('serves a run of blocks, the short last block, and the other offered size', async () => {
    const rs = await exchange(server.wirePort!, [req(full.k, 5, 3), req(full.k, 20, 5), req(full.k, 11, 2, 8192)], full.k);
    expect(rs.map((r) => r.status)).toEqual([0, 0, 0]);
    expect(rs[0]!.body.equals(full.bytes.subarray(5 * 4096, 8 * 4096))).toBe(true);
    expect(rs[1]!.length).toBe(SIZE - 20 * 4096);
    expect(rs[1]!.body.equals(full.bytes.subarray(20 * 4096))).toBe(true);
    expect(rs[2]!.body.equals(full.bytes.subarray(11 * 8192))).toBe(true);
  });

  it('answers many pipelined requests in order on one connection', async () => {
    const order = Array.from({ length: 40 }, (_, i) => (i * 7) % 25);
    const rs = await exchange(server.wirePort!, order.map((b, i) => req(full.k, b, 1, 4096, 1000 + i)), full.k);
    expect(rs.map((r) => r.requestId)).toEqual(order.map((_, i) => 1000 + i));
    for (const [i, r] of rs.entries()) expect(r.body.equals(full.bytes.subarray(order[i]! * 4096, Math.min(SIZE, (order[i]! + 1) * 4096)))).toBe(true);
  });

  it('refuses with a status and keeps the connection: unknown file, size not offered, past the end', async () => {
    const rs = await exchange(
      server.wirePort!,
      [{ ...req(full.k, 0), fileId: '00'.repeat(32) }, req(full.k, 0, 1, 16384, 1), req(full.k, 25, 1, 4096, 2), req(full.k, 24, 2, 4096, 3), req(full.k, 1, 1, 4096, 4)],
      full.k,
    );
    expect(rs.map((r) => r.status)).toEqual([WireStatus.unknownFile, WireStatus.badRequest, WireStatus.badRequest, WireStatus.badRequest, WireStatus.ok]);
    expect(rs.slice(0, 4).every((r) => r.length === 0 && r.retryAfterS === 0)).toBe(true);
  });

  it('advertises the wire in X-Kascade-Wire on its HTTP replies, and not without wirePort', async () => {
    const res = await rawRequest(server.port, requestBytes('GET', `/${full.k.filehash}`, { Range: 'bytes=0-4095' }, server.port));
    expect(res.status).toBe(206);
    expect(res.headers['x-kascade-wire']).toBe(String(server.wirePort));
    const plain = await start(new Library(), {}, false);
    expect(plain.wirePort).toBeUndefined();
    const res2 = await rawRequest(plain.port, requestBytes('GET', `/${full.k.filehash}`, {}, plain.port));
    expect(res2.headers['x-kascade-wire']).toBeUndefined();
  });

  it('counts wire bytes in the block server totals', async () => {
    const before = server.stats();
    await exchange(server.wirePort!, [req(full.k, 0, 4)], full.k);
    const after = server.stats();
    expect(after.bytesSent - before.bytesSent).toBe(4 * 4096);
    expect(after.bytesSentBySwarm[full.k.swarmId]! - (before.bytesSentBySwarm[full.k.swarmId] ?? 0)).toBe(4 * 4096);
    expect(after.wire?.replies.ok).toBeGreaterThan(before.wire?.replies.ok ?? 0);
  });
});

describe('wire: only verified blocks are served (invariant)', () => {
  it('each block of a partial file: ok with its bytes iff held, else not-held without reading the disk', async () => {
    const ask = Array.from({ length: 25 }, (_, i) => req(partial.k, i));
    const readsBefore = dataFileCounters.reads;
    const rs = await exchange(server.wirePort!, ask, partial.k);
    for (const [i, r] of rs.entries()) {
      if (PARTIAL_HELD.has(i)) {
        expect(r.status, `block ${i}`).toBe(WireStatus.ok);
        expect(r.body.equals(partial.bytes.subarray(i * 4096, Math.min(SIZE, (i + 1) * 4096)))).toBe(true);
      } else {
        expect(r.status, `block ${i}`).toBe(WireStatus.notHeld);
        expect(r.length).toBe(0);
      }
    }
    expect(dataFileCounters.reads - readsBefore).toBe(PARTIAL_HELD.size);
  });

  it('a run or a larger block overlapping one block not held is not held', async () => {
    // 2-3 held, 4 not; 8192-block 1 covers 4096-blocks 2 and 3 (held), 8192-block 2 covers 4 and 5 (4 not held).
    const rs = await exchange(server.wirePort!, [req(partial.k, 2, 3), req(partial.k, 1, 1, 8192, 1), req(partial.k, 2, 1, 8192, 2)], partial.k);
    expect(rs.map((r) => r.status)).toEqual([WireStatus.notHeld, WireStatus.ok, WireStatus.notHeld]);
    expect(rs[1]!.body.equals(partial.bytes.subarray(8192, 16384))).toBe(true);
  });
});

describe('wire: malformed frames close the connection', () => {
  const good = (): Buffer => Buffer.from(encodeRequest(req(full.k, 0)));
  const patched = (f: (b: Buffer) => void): Buffer => {
    const b = good();
    f(b);
    return b;
  };
  it.each<[string, () => Buffer]>([
    ['an HTTP request on the wire port', () => Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['a hello of version 2', () => Buffer.from('KWIRE\x02\x00\x00', 'latin1')],
    ['a hello with flags', () => Buffer.from('KWIRE\x01\x80\x00', 'latin1')],
    ['an unknown frame type', () => Buffer.concat([encodeHello(), patched((b) => (b[0] = 7))])],
    ['a reserved byte set', () => Buffer.concat([encodeHello(), patched((b) => (b[1] = 1))])],
    ['count 0', () => Buffer.concat([encodeHello(), patched((b) => b.writeUInt16BE(0, 2))])],
    ['a count × size over 4 MiB', () => Buffer.concat([encodeHello(), patched((b) => (b.writeUInt16BE(1024, 2), b.writeUInt32BE(65536, 40)))])],
    ['a block size under 512', () => Buffer.concat([encodeHello(), patched((b) => b.writeUInt32BE(100, 40))])],
    ['a frame before the hello', () => good()],
  ])('%s: no reply, closed', async (_name, bytes) => {
    const w = new Wire(server.wirePort!);
    const bad = server.stats().wire!.badFrames;
    w.send(bytes());
    await within(w.closed, 5_000, 'close');
    // At most the seeder's hello went out (it answers a whole valid hello before the bad frame is seen).
    expect(w.received.length === 0 || w.received.equals(encodeHello())).toBe(true);
    expect(server.stats().wire!.badFrames).toBe(bad + 1);
  });

  it('a long frame (one byte past a request): the request is answered, then the stray byte closes it', async () => {
    const w = new Wire(server.wirePort!);
    w.send(encodeHello(), good());
    await w.bytes(8 + REPLY_HEADER_BYTES + 4096);
    w.send(Buffer.from([0]));
    await within(w.closed, 5_000, 'close');
    expect(w.received.length).toBe(8 + REPLY_HEADER_BYTES + 4096);
  });

  it('more requests outstanding than the pipeline bound: closed', async () => {
    const w = new Wire(server.wirePort!, { paused: true });
    const over = server.stats().wire!.overPipelined;
    // 66 requests of 4 MiB from a reader that reads nothing: the first is stuck writing, 65 wait: one too many.
    w.send(encodeHello(), ...Array.from({ length: 66 }, (_, i) => encodeRequest(req(big.k, 0, 1024, 4096, i))));
    await until(() => server.stats().wire!.overPipelined === over + 1, 5_000, 'overPipelined');
    w.socket.resume(); // a paused socket never sees the close
    await within(w.closed, 5_000, 'close');
  });

  it('a short frame (a frame begun, never finished) is cut after the frame timeout', async () => {
    const w = new Wire(server.wirePort!);
    const slow = server.stats().wire!.slowSenders;
    w.send(encodeHello(), good().subarray(0, 20));
    await within(w.closed, FRAME_TIMEOUT_MS * 10, 'close');
    expect(server.stats().wire!.slowSenders).toBe(slow + 1);
  });

  it('a connection that never says hello is cut after the frame timeout', async () => {
    const slow = server.stats().wire!.slowSenders;
    const w = new Wire(server.wirePort!);
    await within(w.closed, FRAME_TIMEOUT_MS * 10, 'close');
    expect(w.received.length).toBe(0);
    expect(server.stats().wire!.slowSenders).toBe(slow + 1); // the frame timeout, not the (longer) idle one
  });

  it('a slow sender trickling a byte per 100 ms is cut before its frame is whole', async () => {
    const w = new Wire(server.wirePort!);
    w.send(encodeHello());
    await w.bytes(8);
    const frame = good();
    let sent = 0;
    const trickle = setInterval(() => {
      if (sent < frame.length && !w.socket.destroyed) w.socket.write(frame.subarray(sent, ++sent));
    }, 100);
    try {
      await within(w.closed, 10_000, 'close');
    } finally {
      clearInterval(trickle);
    }
    // 48 bytes at 10/s would take 4.8 s; the 600 ms frame timeout cut it at about 6-7 bytes.
    expect(sent).toBeLessThan(frame.length);
    expect(w.received.length).toBe(8); // the hello, no reply
  });

  it('an idle connection is closed after the idle timeout', async () => {
    const w = new Wire(server.wirePort!);
    w.send(encodeHello());
    await w.bytes(8);
    await within(w.closed, IDLE_MS * 10, 'idle close');
  });
});

describe('wire: slow readers and shared admission', () => {
  it('a reader that never reads holds bounded memory and is cut after the idle timeout', async () => {
    const w = new Wire(server.wirePort!, { paused: true });
    const sentBefore = server.stats().bytesSent;
    // 64 requests of 4 MiB (256 MiB asked) pipelined by a client that reads nothing.
    w.send(encodeHello(), ...Array.from({ length: 64 }, (_, i) => encodeRequest(req(big.k, (i % 2) * 1024, 1024, 4096, i))));
    await until(() => server.stats().readBuffers.liveBytes > 0, 5_000, 'a reply streaming');
    const open = server.stats().wire!.connections;
    await until(() => server.stats().wire!.connections === open - 1, IDLE_MS * 10, 'cut');
    // What left was at most the socket buffers' worth (a few MiB on loopback), not the 256 MiB asked.
    expect(server.stats().bytesSent - sentBefore).toBeLessThan(32 * 1024 * 1024);
    await until(() => server.stats().readBuffers.liveBytes === 0 && server.stats().inFlight === 0, 5_000, 'buffer and slot given back');
  });

  it('shares admission with HTTP: a full server answers busy with a retry-after, and HTTP 503', async () => {
    const lib = new Library();
    lib.add(new VerifiedServedFile(big.k, big.data, Bitfield.full(BIG / 4096), 4096));
    const tight = await start(lib, { maxConcurrent: 1, maxQueued: 0, idleTimeoutMs: 5_000 });
    // A paused reader takes the only slot with a 4 MiB reply it never reads.
    const hog = new Wire(tight.wirePort!, { paused: true });
    hog.send(encodeHello(), encodeRequest(req(big.k, 0, 1024)));
    await until(() => tight.stats().inFlight === 1, 5_000, 'slot taken');
    const [r] = await exchange(tight.wirePort!, [req(big.k, 5)], big.k);
    expect(r).toMatchObject({ status: WireStatus.busy, retryAfterS: 1, length: 0 });
    const http = await rawRequest(tight.port, requestBytes('GET', `/${big.k.filehash}`, { Range: 'bytes=0-4095' }, tight.port));
    expect(http.status).toBe(503);
    expect(tight.stats().rejectedBusy.queueFull).toBe(2);
    hog.socket.destroy();
    await until(() => tight.stats().inFlight === 0, 5_000, 'slot freed');
    const [again] = await exchange(tight.wirePort!, [req(big.k, 5)], big.k);
    expect(again!.status).toBe(WireStatus.ok);
  });

  it('shares the upload rate limit: a wire reply waits for tokens from the same bucket', async () => {
    const lib = new Library();
    lib.add(new VerifiedServedFile(big.k, big.data, Bitfield.full(BIG / 4096), 4096));
    const slow = await start(lib, { maxUploadBytesPerSec: 256 * 1024 });
    const w = new Wire(slow.wirePort!);
    w.send(encodeHello(), encodeRequest(req(big.k, 0, 1024)));
    await until(() => slow.stats().rateWaiting >= 1, 5_000, 'a wire reply waiting for tokens');
    // Paced, so far from all 4 MiB is out yet; the bytes that did go are counted in the shared totals.
    expect(slow.stats().bytesSent).toBeLessThan(4 * 1024 * 1024);
    expect(slow.uploadsFor(big.k.swarmId).length).toBe(1);
  });

  it('shares the connection cap with HTTP', async () => {
    const tight = await start(new Library(), { maxConnections: 16, maxConnectionsPerAddress: 2, ownerConnections: 0 });
    // Two idle wire connections fill the per-address cap of 2…
    const a = new Wire(tight.wirePort!);
    await until(() => tight.stats().connections === 1, 5_000, 'one connection');
    const b = new Wire(tight.wirePort!);
    await until(() => tight.stats().connections === 2, 5_000, 'two connections');
    // …so an HTTP connection from the same address makes room by closing the longest idle one: the first wire's.
    const c = new Wire(tight.port);
    await within(a.closed, 5_000, 'the first wire connection closed');
    expect(tight.stats()).toMatchObject({ connections: 2, idleClosed: 1 });
    expect(b.socket.destroyed || c.socket.destroyed).toBe(false);
  });
});
