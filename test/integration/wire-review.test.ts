// Issue 14 review: the binary peer wire attacked as a hostile client would, over real sockets on 127.0.0.1 (a raw
// `net` socket speaks the frames; the codec only builds them). Each test names the defect it found.

import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Kascade } from '../../src/kascade/kascade.js';
import { parseKascade } from '../../src/kascade/parse.js';
import { KfetchError } from '../../src/errors.js';
import { RangeClient } from '../../src/peer/range-client.js';
import { WireClient, WireOrHttp } from '../../src/peer/wire-client.js';
import { ReplyDecoder, WireStatus, encodeHello, encodeRequest, type WireRequest } from '../../src/peer/wire-frames.js';
import { startBlockServer, type BlockServer } from '../../src/server/block-server.js';
import { Library, VerifiedServedFile } from '../../src/server/library.js';
import { openDataFileToSeed, type DataFile } from '../../src/store/data-file.js';
import { Bitfield } from '../../src/util/bitfield.js';
import { kascadeJsonFor, makePayload } from '../helpers/make-file.js';
import { freePort } from '../helpers/system.js';
import { until, within } from '../helpers/wait.js';

const log = pino({ level: 'silent' });
const SIZE = 100_000;
let dir: string;
let k: Kascade;
let data: DataFile;
const servers: BlockServer[] = [];
const sockets: Socket[] = [];
const raws: Server[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kfetch-wire-review-'));
  const p = makePayload(dir, 'f.bin', SIZE, 'review');
  k = parseKascade(JSON.stringify(kascadeJsonFor(p.bytes!, { filename: 'f.bin', tracker: 'http://127.0.0.1:9/peers/x.json', blockSizes: [4096] })), 'f.json');
  data = await openDataFileToSeed(p.path, SIZE);
});

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await Promise.all(raws.splice(0).map((s) => new Promise((r) => s.close(r))));
});

afterAll(() => {
  data.close();
  rmSync(dir, { recursive: true, force: true });
});

async function seeder(limits: Parameters<typeof startBlockServer>[0]['limits'] = {}): Promise<BlockServer> {
  const library = new Library();
  library.add(new VerifiedServedFile(k, data, Bitfield.full(k.geometry(4096).count), 4096));
  const s = await startBlockServer({ library, host: '127.0.0.1', port: 0, log, limits, wirePort: 0 });
  servers.push(s);
  return s;
}

function rawWire(port: number): Socket {
  const s = connect({ host: '127.0.0.1', port });
  sockets.push(s);
  s.on('error', () => undefined);
  return s;
}

const unknownFile = (requestId: number): WireRequest => ({ requestId, fileId: 'ab'.repeat(32), blockSize: 4096, firstBlock: 0, count: 1 });

describe('wire review (issue 14): a client that never reads', () => {
  it('cannot make the seeder buffer status replies without bound: 64 at a time, each batch answered, never read', async () => {
    const server = await seeder({ idleTimeoutMs: 60_000 });
    const w = rawWire(server.wirePort!);
    w.pause(); // reads nothing, ever
    w.write(encodeHello());
    const closed = new Promise<void>((resolve) => w.once('close', () => resolve()));
    let isClosed = false;
    void closed.then(() => (isClosed = true));
    const answered = (): number => server.stats().wire!.replies.unknownFile;
    const over = server.stats().wire!.overPipelined;
    // Each batch stays within the pipeline bound of 64 outstanding requests (the seeder has answered the batch
    // before: a status reply needs no slot). ~4 MiB of replies fit in loopback's socket buffers; past that every
    // reply the seeder answers waits in its memory. 16 MiB of replies (a million requests) is far past it.
    const batch = Buffer.concat(Array.from({ length: 64 }, (_, i) => encodeRequest(unknownFile(i))));
    const maxReplies = (16 * 1024 * 1024) / 16;
    let sent = 0;
    const t0 = performance.now();
    while (!isClosed && answered() < maxReplies && performance.now() - t0 < 60_000) {
      w.write(batch);
      sent += 64;
      // Wait until the seeder took the batch (answered it) or stopped reading us (nothing more for a while).
      const end = performance.now() + 2_000;
      while (!isClosed && answered() < sent && performance.now() < end) await new Promise((r) => setImmediate(r));
      if (answered() < sent) break; // the seeder stopped reading: back-pressure
    }
    // Memory bound: what the seeder answered fits the socket buffers plus a bounded backlog, not all we asked.
    expect(answered() * 16).toBeLessThan(12 * 1024 * 1024);
    w.resume(); // a paused socket does not see the close
    await within(closed, 70_000, 'the non-reader is cut');
    // Cut by the pipeline bound (its unsent replies count as outstanding), not by a timeout.
    expect(server.stats().wire!.overPipelined).toBe(over + 1);
  }, 120_000);
});

describe('wire review (issue 14): a client that never reads, asking for small blocks', () => {
  it('a small reply stuck behind full socket buffers is cut after the idle timeout and its slots freed', async () => {
    const server = await seeder({ idleTimeoutMs: 1_000 });
    const w = rawWire(server.wirePort!);
    w.pause();
    w.write(encodeHello());
    const closed = new Promise<void>((resolve) => w.once('close', () => resolve()));
    const ok = (): number => server.stats().wire!.replies.ok;
    // One 4 KiB block per request (a reply smaller than the socket's high-water mark), 32 at a time, each batch
    // after the seeder began the last; ~4 MiB of replies fill loopback's buffers, then a reply cannot be written.
    let sent = 0;
    for (let batch = 0; batch < 400; batch++) {
      w.write(Buffer.concat(Array.from({ length: 32 }, (_, i) => encodeRequest({ requestId: sent + i, fileId: k.filehash, blockSize: 4096, firstBlock: (sent + i) % 24, count: 1 }))));
      sent += 32;
      const end = performance.now() + 1_500;
      while (ok() < sent - 8 && performance.now() < end) await new Promise((r) => setImmediate(r));
      if (ok() < sent - 8) break; // a reply is stuck: the buffers are full
    }
    expect(ok()).toBeLessThan(sent); // the seeder really is stuck behind us
    // Cut within a few idle timeouts, and every admission slot and read buffer given back.
    await until(() => server.stats().wire!.connections === 0, 10_000, 'the stuck connection cut');
    await until(() => server.stats().inFlight === 0 && server.stats().readBuffers.liveBytes === 0, 5_000, 'slots and buffers given back');
    w.destroy();
    await closed;
  }, 60_000);
});

describe('wire review (issue 14): the same over HTTP (the wire shares its rules)', () => {
  it('a small HTTP response stuck behind full socket buffers is cut after the idle timeout and its slot freed', async () => {
    const server = await seeder({ idleTimeoutMs: 1_000 });
    const c = rawWire(server.port); // a raw TCP client of the HTTP port
    c.pause();
    const get = (i: number): string =>
      `GET /${k.swarmId} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nRange: bytes=${(i % 24) * 4096}-${(i % 24) * 4096 + 4095}\r\n\r\n`;
    const sentBytes = (): number => server.stats().bytesSent;
    let sent = 0;
    let stuck = false;
    for (let batch = 0; batch < 400 && !stuck; batch++) {
      c.write(Array.from({ length: 16 }, (_, i) => get(sent + i)).join(''));
      sent += 16;
      const end = performance.now() + 1_500;
      while (sentBytes() < (sent - 4) * 4096 && performance.now() < end) await new Promise((r) => setImmediate(r));
      stuck = sentBytes() < (sent - 4) * 4096;
    }
    expect(stuck).toBe(true);
    await until(() => server.stats().inFlight === 0, 10_000, 'the stuck response cut and its slot freed');
  }, 60_000);
});

describe('wire review (issue 14): the client keeps nothing per peer once its connections are gone', () => {
  it('after wires refused, failed and idle-closed, no per-peer entry is left (a box meets peers for months)', async () => {
    const server = await seeder();
    const client = new WireClient({ connectionsPerPeer: 2, connectTimeoutMs: 2_000, idleTimeoutMs: 200 });
    try {
      const into = Buffer.alloc(4096);
      const blocks = { fileId: k.filehash, blockSize: 4096, firstBlock: 0, count: 1, length: 4096 };
      // 20 peers whose advertised wire port is closed: each dial is refused.
      for (let i = 0; i < 20; i++) {
        const err = await client.fetchBlocks(`127.0.0.1:${await freePort()}`, blocks, into, AbortSignal.timeout(10_000)).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(KfetchError);
      }
      // One that works, then goes idle and is closed by the client's idle timeout.
      await client.fetchBlocks(`127.0.0.1:${server.wirePort!}`, blocks, into, AbortSignal.timeout(10_000));
      await until(() => server.stats().wire!.connections === 0, 10_000, 'the idle wire connection closed');
      expect(client.peerCount).toBe(0);
    } finally {
      client.close();
    }
  });
});

/**
 * A wire port that says hello, answers the first request of each connection with its header and half its body, then
 * stalls (or, with `cut`, closes the connection).
 */
async function stallingWire(cut = false): Promise<{ port: number; connections: () => number }> {
  let n = 0;
  const srv = createServer((s) => {
    n++;
    sockets.push(s);
    s.on('error', () => undefined);
    let got = 0;
    s.on('data', (d: Buffer) => {
      const before = got;
      got += d.length;
      if (before < 8 && got >= 8) s.write(encodeHello());
      if (before < 8 + 48 && got >= 8 + 48) {
        const h = Buffer.alloc(16);
        h.writeUInt32BE(1, 0); // the client's first request id on a connection
        h.writeBigUInt64BE(4096n, 8);
        const half = Buffer.concat([h, Buffer.alloc(2048)]);
        if (cut) s.end(half);
        else s.write(half);
      }
    });
  });
  raws.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return { port: (srv.address() as { port: number }).port, connections: () => n };
}

describe('wire review (issue 14): a wire that stalls while HTTP works', () => {
  it('a request that times out on the wire is a doubt: the peer\'s next requests go over HTTP', async () => {
    const server = await seeder();
    const stall = await stallingWire();
    const wire = new WireClient({ connectTimeoutMs: 2_000 });
    const http = new RangeClient({ connectTimeoutMs: 2_000 });
    const either = new WireOrHttp(wire, http);
    const httpPeer = `127.0.0.1:${server.port}`;
    const wirePeer = `127.0.0.1:${stall.port}`;
    const blocks = { fileId: k.filehash, blockSize: 4096, firstBlock: 0, count: 1, length: 4096 };
    try {
      const into = Buffer.alloc(4096);
      const err = await either.fetch(httpPeer, wirePeer, k.swarmId, blocks, into, AbortSignal.timeout(300)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KfetchError);
      expect((err as KfetchError).code).toBe('KF_E_PEER_TIMEOUT');
      // The stalled wire is no longer trusted: the next request is answered over HTTP, with the right bytes.
      expect(either.usesWire(wirePeer)).toBe(false);
      const again = Buffer.alloc(4096);
      expect(await either.fetch(httpPeer, wirePeer, k.swarmId, { ...blocks, firstBlock: 1 }, again, AbortSignal.timeout(5_000))).toBe('http');
      expect(again.equals(await readBlock(1))).toBe(true);
    } finally {
      wire.close();
      await http.close();
    }
  });
});

describe('wire review (issue 14): a wire that cuts every reply mid-body while HTTP works', () => {
  it('the cut is a doubt: the request is asked again over HTTP at once, and the wire is not used again', async () => {
    const server = await seeder();
    const cutter = await stallingWire(true);
    const wire = new WireClient({ connectTimeoutMs: 2_000 });
    const http = new RangeClient({ connectTimeoutMs: 2_000 });
    const either = new WireOrHttp(wire, http);
    const httpPeer = `127.0.0.1:${server.port}`;
    const wirePeer = `127.0.0.1:${cutter.port}`;
    try {
      const into = Buffer.alloc(4096);
      const blocks = { fileId: k.filehash, blockSize: 4096, firstBlock: 2, count: 1, length: 4096 };
      expect(await either.fetch(httpPeer, wirePeer, k.swarmId, blocks, into, AbortSignal.timeout(5_000))).toBe('fallback');
      expect(into.equals(await readBlock(2))).toBe(true);
      expect(cutter.connections()).toBe(1);
      expect(either.usesWire(wirePeer)).toBe(false);
    } finally {
      wire.close();
      await http.close();
    }
  });
});

describe('wire review (issue 14): a file removed while it is being served', () => {
  it.each([
    ['and closes it: the reply in progress is cut', true],
    ['but keeps it open a while: the reply in progress ends whole, the queued ones get unknown file', false],
  ])('the owner removes the file %s; never other bytes', async (_what, closeIt) => {
    const p = makePayload(dir, 'big.bin', 8 * 1024 * 1024, 'removed-while-serving');
    const bigK = parseKascade(
      JSON.stringify(kascadeJsonFor(p.bytes!, { filename: 'big.bin', tracker: 'http://127.0.0.1:9/peers/x.json', blockSizes: [4096] })),
      'big.json',
    );
    const bigData = await openDataFileToSeed(p.path, p.bytes!.length);
    const library = new Library();
    library.add(new VerifiedServedFile(bigK, bigData, Bitfield.full(bigK.geometry(4096).count), 4096));
    // One request prepared at a time, so the later ones are still queued when the file goes.
    const server = await startBlockServer({ library, host: '127.0.0.1', port: 0, log, wirePort: 0, limits: { maxPerClient: 1 } });
    servers.push(server);
    const w = rawWire(server.wirePort!);
    w.pause();
    const reqs = [0, 1024, 0].map((firstBlock, i) => ({ requestId: i + 1, fileId: bigK.filehash, blockSize: 4096, firstBlock, count: 1024 }));
    w.write(Buffer.concat([encodeHello(), ...reqs.map((r) => encodeRequest(r))]));
    await until(() => server.stats().readBuffers.liveBytes > 0, 5_000, 'the first reply streaming');
    // The owner removes the file (and closes it, or not yet) while the 4 MiB reply is in the socket buffers.
    library.remove(bigK.filehash);
    if (closeIt) bigData.close();
    const replies: { requestId: number; status: number; body: Buffer }[] = [];
    const queue = [...reqs];
    const d = new ReplyDecoder((id) => (queue[0]?.requestId === id ? { length: 4 * 1024 * 1024 } : undefined));
    const closed = new Promise<void>((resolve) => w.once('close', () => resolve()));
    w.on('data', (chunk: Buffer) =>
      d.feed(chunk, (r) => {
        queue.shift();
        replies.push({ requestId: r.requestId, status: r.status, body: Buffer.from(r.body) });
        if (replies.length === reqs.length) w.destroy();
      }),
    );
    w.resume();
    await within(closed, 20_000, 'every reply, or the connection cut');
    for (const r of replies) {
      if (r.status === WireStatus.ok) {
        const first = reqs[r.requestId - 1]!.firstBlock * 4096;
        expect(r.body.equals(p.bytes!.subarray(first, first + 4 * 1024 * 1024)), `reply ${r.requestId}`).toBe(true);
      } else expect(r.status, `reply ${r.requestId}`).toBe(WireStatus.unknownFile);
    }
    if (closeIt) {
      expect(replies.filter((r) => r.status === WireStatus.ok)).toEqual([]); // cut mid-reply: nothing whole came
    } else {
      bigData.close();
      expect(replies.map((r) => [r.requestId, r.status])).toEqual([
        [1, WireStatus.ok],
        [2, WireStatus.unknownFile],
        [3, WireStatus.unknownFile],
      ]);
    }
  });
});

describe('wire review (issue 14): the HTTP range client keeps nothing per peer once its connections are gone', () => {
  it('after ranges from 20 peers whose connections then idle-closed, and 5 refused, no per-peer entry is left', async () => {
    const client = new RangeClient({ connectTimeoutMs: 2_000, idleTimeoutMs: 100 });
    const seeders: BlockServer[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const s = await seeder();
        seeders.push(s);
        const into = Buffer.alloc(4096);
        await client.fetchRange(`127.0.0.1:${s.port}`, k.swarmId, 4096, 8191, into, AbortSignal.timeout(5_000));
        expect(into.equals(await readBlock(1))).toBe(true);
      }
      for (let i = 0; i < 5; i++) {
        const err = await client.fetchRange(`127.0.0.1:${await freePort()}`, k.swarmId, 0, 4095, Buffer.alloc(4096), AbortSignal.timeout(5_000)).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(KfetchError);
      }
      await until(() => seeders.every((s) => s.stats().connections === 0), 10_000, 'every idle connection closed');
      await until(() => client.peerCount === 0, 5_000, 'no per-peer entry left');
    } finally {
      await client.close();
    }
  });
});

async function readBlock(i: number): Promise<Buffer> {
  const b = Buffer.alloc(4096);
  await data.read(b, 4096, i * 4096);
  return b;
}
