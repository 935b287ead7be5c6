// The peer wire's client (src/peer/wire-client.ts) against a real block server with its wire on, and against raw
// `net` servers that misbehave: exact bytes, HTTP-shaped errors, and the fall back to HTTP on any doubt (a port
// that is not a wire, a refused port, no hello, a lying length).

import { mkdtempSync, rmSync } from 'node:fs';
import { Socket, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KfetchError } from '../../src/errors.js';
import type { Kascade } from '../../src/kascade/kascade.js';
import { parseKascade } from '../../src/kascade/parse.js';
import { BlockClient } from '../../src/peer/block-client.js';
import { WireClient, WireOrHttp, wirePeerFrom, type WireBlocks } from '../../src/peer/wire-client.js';
import { WireStatus, encodeHello, encodeReplyHeader } from '../../src/peer/wire-frames.js';
import { startBlockServer, type BlockServer } from '../../src/server/block-server.js';
import { Library, VerifiedServedFile } from '../../src/server/library.js';
import { openDataFileToSeed, type DataFile } from '../../src/store/data-file.js';
import { Bitfield } from '../../src/util/bitfield.js';
import { kascadeJsonFor, makePayload } from '../helpers/make-file.js';
import { freePort } from '../helpers/system.js';
import { until, within } from '../helpers/wait.js';

const log = pino({ level: 'silent' });
const SIZE = 300_000; // 74 blocks of 4096 (the last 992 bytes)
let dir: string;
let k: Kascade;
let data: DataFile;
let bytes: Buffer;
let server: BlockServer;
const raw: Server[] = [];
const rawSockets: Socket[] = [];
const wire = new WireClient({ connectionsPerPeer: 2, connectTimeoutMs: 500 });
const http = new BlockClient({ connectionsPerPeer: 4, connectTimeoutMs: 2_000 });

const run = (firstBlock: number, count: number, blockSize = 4096): WireBlocks => ({
  fileId: k.filehash,
  blockSize,
  firstBlock,
  count,
  length: Math.min(SIZE, (firstBlock + count) * blockSize) - firstBlock * blockSize,
});
const sig = (): AbortSignal => AbortSignal.timeout(10_000);

/** A raw server answering each connection with `behave`. */
async function rawServer(behave: (s: Socket) => void): Promise<number> {
  const s = createServer((socket) => {
    socket.on('error', () => undefined);
    rawSockets.push(socket);
    behave(socket);
  });
  raw.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as { port: number }).port;
}

async function failure(p: Promise<unknown>): Promise<KfetchError> {
  const err = await within(p.then(() => undefined, (e: unknown) => e), 10_000, 'settled');
  expect(err).toBeInstanceOf(KfetchError);
  return err as KfetchError;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kfetch-wire-client-'));
  const p = makePayload(dir, 'f.bin', SIZE, 'wire-client');
  bytes = p.bytes!;
  k = parseKascade(JSON.stringify(kascadeJsonFor(bytes, { filename: 'f.bin', tracker: 'http://127.0.0.1:9/peers/x.json', blockSizes: [4096, 16384] })), 'f.json');
  data = await openDataFileToSeed(p.path, SIZE);
  const library = new Library();
  const held = Bitfield.full(74);
  held.set(10, false);
  library.add(new VerifiedServedFile(k, data, held, 4096));
  server = await startBlockServer({ library, host: '127.0.0.1', port: 0, log, wirePort: 0 });
});

afterAll(async () => {
  wire.close();
  await http.close();
  await server.close();
  for (const s of rawSockets) s.destroy();
  await Promise.all(raw.map((s) => new Promise((r) => s.close(r))));
  data.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('wire client against a kfetch seeder', () => {
  it('fetches runs of blocks with their exact bytes, many at once over a few connections', async () => {
    const peer = `127.0.0.1:${server.wirePort}`;
    const runs = Array.from({ length: 150 }, (_, i) => (i * 13) % 70).filter((b) => b > 10 || b + 3 < 10);
    const bufs = runs.map(() => Buffer.alloc(3 * 4096));
    await Promise.all(runs.map((b, i) => wire.fetchBlocks(peer, run(b, 3), bufs[i]!, sig())));
    for (const [i, b] of runs.entries()) expect(bufs[i]!.equals(bytes.subarray(b * 4096, (b + 3) * 4096))).toBe(true);
    const last = Buffer.alloc(16384);
    await wire.fetchBlocks(peer, run(18, 1, 16384), last, sig());
    expect(last.subarray(0, SIZE - 18 * 16384).equals(bytes.subarray(18 * 16384))).toBe(true);
  });

  it('a block not held is KF_E_PEER_LIED with HTTP status 400, no fallback', async () => {
    const e = await failure(wire.fetchBlocks(`127.0.0.1:${server.wirePort}`, run(9, 2), Buffer.alloc(8192), sig()));
    expect(e.code).toBe('KF_E_PEER_LIED');
    expect(e.detail).toMatchObject({ status: 400, wireStatus: WireStatus.notHeld, fallback: false });
  });

  it('an unknown file asks for the fallback (status 404)', async () => {
    const e = await failure(wire.fetchBlocks(`127.0.0.1:${server.wirePort}`, { ...run(0, 1), fileId: 'ee'.repeat(32) }, Buffer.alloc(4096), sig()));
    expect(e.detail).toMatchObject({ status: 404, fallback: true });
  });

  it('an aborted request rejects at once and leaves the connection usable', async () => {
    const peer = `127.0.0.1:${server.wirePort}`;
    const ac = new AbortController();
    const p = wire.fetchBlocks(peer, run(0, 1), Buffer.alloc(4096), ac.signal);
    ac.abort();
    expect((await failure(p)).detail).toMatchObject({ aborted: true });
    const b = Buffer.alloc(4096);
    await wire.fetchBlocks(peer, run(1, 1), b, sig());
    expect(b.equals(bytes.subarray(4096, 8192))).toBe(true);
  });
});

describe('falls back to HTTP on any doubt', () => {
  const fallsBack = async (wirePeer: string): Promise<void> => {
    const both = new WireOrHttp(wire, http);
    const into = Buffer.alloc(8192);
    expect(await both.fetch(`127.0.0.1:${server.port}`, wirePeer, k.swarmId, run(4, 2), into, sig())).toBe('fallback');
    expect(into.equals(bytes.subarray(4 * 4096, 6 * 4096))).toBe(true);
    expect(both.usesWire(wirePeer)).toBe(false);
    // Remembered: the next run goes straight to HTTP.
    expect(await both.fetch(`127.0.0.1:${server.port}`, wirePeer, k.swarmId, run(6, 1), Buffer.alloc(4096), sig())).toBe('http');
  };

  it('a failed wire is tried again after retryMs, and the remembered failures are capped', async () => {
    let now = 0;
    const both = new WireOrHttp(wire, http, { retryMs: 1_000, maxRemembered: 2, now: () => now });
    const dead = `127.0.0.1:${await freePort()}`;
    expect(await both.fetch(`127.0.0.1:${server.port}`, dead, k.swarmId, run(4, 1), Buffer.alloc(4096), sig())).toBe('fallback');
    expect(both.usesWire(dead)).toBe(false);
    now = 999;
    expect(both.usesWire(dead)).toBe(false);
    now = 1_000;
    expect(both.usesWire(dead)).toBe(true); // its wire gets another chance
    // Past the cap the oldest failure is forgotten first.
    const deadPorts = [await freePort(), await freePort(), await freePort()].map((p) => `127.0.0.1:${p}`);
    for (const d of deadPorts) await both.fetch(`127.0.0.1:${server.port}`, d, k.swarmId, run(4, 1), Buffer.alloc(4096), sig());
    expect(deadPorts.map((d) => both.usesWire(d))).toEqual([true, false, false]);
    // A working wire after its retry time: used again.
    const good = `127.0.0.1:${server.wirePort}`;
    expect(await both.fetch(`127.0.0.1:${server.port}`, good, k.swarmId, run(3, 1), Buffer.alloc(4096), sig())).toBe('wire');
  });

  it('uses the wire when it works', async () => {
    const both = new WireOrHttp(wire, http);
    const into = Buffer.alloc(4096);
    expect(await both.fetch(`127.0.0.1:${server.port}`, `127.0.0.1:${server.wirePort}`, k.swarmId, run(3, 1), into, sig())).toBe('wire');
    expect(into.equals(bytes.subarray(3 * 4096, 4 * 4096))).toBe(true);
  });

  it('the "wire" port is an HTTP server (an HTTP reply where a hello belongs)', async () => {
    await fallsBack(`127.0.0.1:${server.port}`);
  });

  it('the wire port refuses connections', async () => {
    await fallsBack(`127.0.0.1:${await freePort()}`);
  });

  it('the seeder accepts and never says hello', async () => {
    await fallsBack(`127.0.0.1:${await rawServer(() => undefined)}`);
  });

  it('the seeder lies about a length', async () => {
    const port = await rawServer((s) => {
      s.once('data', () => s.write(Buffer.concat([encodeHello(), encodeReplyHeader({ requestId: 1, status: 0, retryAfterS: 0, length: 8193 })])));
    });
    const e = await failure(wire.fetchBlocks(`127.0.0.1:${port}`, run(4, 2), Buffer.alloc(8192), sig()));
    expect(e).toMatchObject({ code: 'KF_E_PEER_PROTOCOL', field: undefined });
    expect(e.message).toMatch(/reply\.length/);
    expect(e.detail).toMatchObject({ fallback: true });
    await fallsBack(`127.0.0.1:${port}`);
  });

  it('a request dropped because we abandoned another mid-body on its connection is asked again over HTTP, the wire kept (issue 14)', async () => {
    const one = new WireClient({ connectionsPerPeer: 1, connectTimeoutMs: 2_000 });
    let got = 0;
    // Both requests arrive on the one connection; the first reply's header and a little of its body follow.
    const port = await rawServer((s) => {
      s.on('data', (d: Buffer) => {
        got += d.length;
        if (got === 8 + 2 * 48) s.write(Buffer.concat([encodeHello(), encodeReplyHeader({ requestId: 1, status: 0, retryAfterS: 0, length: 8192 }), Buffer.alloc(100)]));
      });
    });
    const both = new WireOrHttp(one, http);
    const wirePeer = `127.0.0.1:${port}`;
    const cancel = new AbortController();
    const a = both.fetch(`127.0.0.1:${server.port}`, wirePeer, k.swarmId, run(4, 2), Buffer.alloc(8192), cancel.signal);
    const into = Buffer.alloc(4096);
    const b = both.fetch(`127.0.0.1:${server.port}`, wirePeer, k.swarmId, run(6, 1), into, sig());
    await until(() => got === 8 + 2 * 48, 5_000, 'both requests sent');
    await new Promise((r) => setTimeout(r, 200)); // the client reads the header: the first body has begun
    cancel.abort(); // as a copy that won elsewhere would: the connection goes, mid-body
    expect((await failure(a)).detail).toMatchObject({ aborted: true });
    expect(await within(b, 10_000, 'the second request')).toBe('fallback');
    expect(into.equals(bytes.subarray(6 * 4096, 7 * 4096))).toBe(true);
    expect(both.usesWire(wirePeer)).toBe(true);
    one.close();
  });

  it('issue 14: the requests of one event-loop turn leave in one socket write (not one write per frame)', async () => {
    const n = 10;
    let got = 0;
    const port = await rawServer((s) => {
      s.on('data', (d: Buffer) => {
        const before = got;
        got += d.length;
        // Each whole request after the hello is answered "not held", in order (ids from 1).
        const whole = (x: number): number => Math.max(0, Math.floor((x - 8) / 48));
        const replies: Buffer[] = before === 0 && got > 0 ? [encodeHello()] : [];
        for (let id = whole(before) + 1; id <= whole(got); id++) replies.push(encodeReplyHeader({ requestId: id, status: WireStatus.notHeld, retryAfterS: 0, length: 0 }));
        if (replies.length > 0) s.write(Buffer.concat(replies));
      });
    });
    const one = new WireClient({ connectionsPerPeer: 1, connectTimeoutMs: 2_000 });
    // Node's own Socket.write, observed (not replaced): the client's writes (every socket but the raw servers' own) and
    // their bytes, while only this test runs.
    const writes: number[] = [];
    const original = Socket.prototype.write;
    Socket.prototype.write = function (this: Socket, ...args: Parameters<Socket['write']>): boolean {
      if (!rawSockets.includes(this)) writes.push((args[0] as Buffer).length);
      return original.apply(this, args);
    } as Socket['write'];
    try {
      const all = [...Array(n).keys()].map((i) => failure(one.fetchBlocks(`127.0.0.1:${port}`, run(i, 1), Buffer.alloc(4096), sig())));
      for (const e of await Promise.all(all)) expect(e.detail).toMatchObject({ status: 400, fallback: false });
    } finally {
      Socket.prototype.write = original;
      one.close();
    }
    expect(got).toBe(8 + n * 48);
    // The hello (at the dial), then all ten 48-byte frames together.
    expect(writes).toEqual([8, n * 48]);
  });

  it('busy is an answer, not a doubt: no fallback', async () => {
    const port = await rawServer((s) => {
      s.once('data', () => s.write(Buffer.concat([encodeHello(), encodeReplyHeader({ requestId: 1, status: WireStatus.busy, retryAfterS: 7, length: 0 })])));
    });
    const both = new WireOrHttp(wire, http);
    const e = await failure(both.fetch(`127.0.0.1:${server.port}`, `127.0.0.1:${port}`, k.swarmId, run(4, 1), Buffer.alloc(4096), sig()));
    expect(e.detail).toMatchObject({ status: 503, retryAfterS: 7, fallback: false });
    expect(both.usesWire(`127.0.0.1:${port}`)).toBe(true);
  });
});

describe('wirePeerFrom (the X-Kascade-Wire advertisement)', () => {
  it.each<[string, string | undefined, string | undefined]>([
    ['127.0.0.1:8000', '9000', '127.0.0.1:9000'],
    ['[::1]:8000', '9000', '[::1]:9000'],
    ['127.0.0.1:8000', ' 9000 ', '127.0.0.1:9000'],
    ['127.0.0.1:8000', undefined, undefined],
    ['127.0.0.1:8000', '', undefined],
    ['127.0.0.1:8000', '0', undefined],
    ['127.0.0.1:8000', '65536', undefined],
    ['127.0.0.1:8000', '09000', undefined],
    ['127.0.0.1:8000', '9000, 9001', undefined],
    ['127.0.0.1:8000', '10.0.0.1:9000', undefined],
    ['not a peer', '9000', undefined],
  ])('%s + %j -> %s', (http, header, want) => {
    expect(wirePeerFrom(http, header)).toBe(want);
  });

  it('reads the header a wire-enabled seeder sends', async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/${k.filehash}`, { headers: { Range: 'bytes=0-0' } });
    await res.arrayBuffer();
    expect(wirePeerFrom(`127.0.0.1:${server.port}`, res.headers.get('x-kascade-wire') ?? undefined)).toBe(`127.0.0.1:${server.wirePort}`);
  });
});
