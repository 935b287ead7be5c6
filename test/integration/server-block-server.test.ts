// A real block server (in process, 127.0.0.1, port 0) over real generated files, probed with exact bytes over raw
// sockets: traversal attempts touch no file, ranges and whole-file GETs return the exact bytes, caps and timeouts hold.

import { mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Kascade } from '../../src/kascade/kascade.js';
import { parseKascade } from '../../src/kascade/parse.js';
import { startBlockServer, type BlockServer, type BlockServerLimits } from '../../src/server/block-server.js';
import { dataFileCounters, openDataFileToSeed, type DataFile } from '../../src/store/data-file.js';
import { Library, VerifiedServedFile } from '../../src/server/library.js';
import { Bitfield } from '../../src/util/bitfield.js';
import { VERSION } from '../../src/version.js';
import { kascadeJsonFor, makePayload } from '../helpers/make-file.js';
import { RawConnection, rawRequest, requestBytes, type RawResponse } from '../helpers/raw-http.js';
import { until, within } from '../helpers/wait.js';

const log = pino({ level: 'silent' });
const SIZE = 100_000; // 25 blocks of 4096 (last 1696 bytes), 13 of 8192
let dir: string;
let full: { k: Kascade; data: DataFile; bytes: Buffer };
let partial: { k: Kascade; data: DataFile; bytes: Buffer };
const secret = 'TOP-SECRET-SENTINEL';
const servers: BlockServer[] = [];
const conns: RawConnection[] = [];

async function served(name: string, seed: string, size = SIZE): Promise<{ k: Kascade; data: DataFile; bytes: Buffer }> {
  const p = makePayload(dir, name, size, seed);
  const json = kascadeJsonFor(p.bytes!, { filename: name, tracker: 'http://127.0.0.1:9/peers/x.json', blockSizes: [4096, 8192] });
  const k = parseKascade(JSON.stringify(json), `${name}.json`);
  const data = await openDataFileToSeed(p.path, size);
  return { k, data, bytes: p.bytes! };
}

async function start(library: Library, limits: Partial<BlockServerLimits> = {}): Promise<BlockServer> {
  const s = await startBlockServer({ library, host: '127.0.0.1', port: 0, log, limits });
  servers.push(s);
  return s;
}

async function open(port: number, localAddress?: string): Promise<RawConnection> {
  const c = await RawConnection.open(port, localAddress === undefined ? {} : { localAddress });
  conns.push(c);
  return c;
}

function get(port: number, target: string, headers: Record<string, string> = {}, method = 'GET'): Promise<RawResponse> {
  return rawRequest(port, requestBytes(method, target, headers, port), { head: method === 'HEAD' });
}

let server: BlockServer;
let library: Library;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kfetch-server-'));
  writeFileSync(join(dir, 'secret.txt'), secret);
  full = await served('full.bin', 'full');
  partial = await served('partial.bin', 'partial');
  library = new Library();
  library.add(new VerifiedServedFile(full.k, full.data, Bitfield.full(25), 4096));
  const held = Bitfield.full(25);
  held.set(1, false); // bytes 4096..8191 not held
  library.add(new VerifiedServedFile(partial.k, partial.data, held, 4096));
  server = await start(library);
});

afterEach(() => {
  for (const c of conns.splice(0)) c.close();
});

afterAll(async () => {
  for (const c of conns.splice(0)) c.close();
  await Promise.all(servers.map((s) => s.close()));
  full.data.close();
  partial.data.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('hostile targets', () => {
  const id = () => full.k.filehash;
  const targets = (): string[] => [
    '/../../etc/passwd',
    '/../secret.txt',
    `/${id()}/../secret.txt`,
    `/${id()}/../../../../etc/passwd`,
    '/%2e%2e/%2e%2e/etc/passwd',
    '/%2E%2e/secret.txt',
    '/..%2fsecret.txt',
    '/%252e%252e/secret.txt',
    '/..\\..\\secret.txt',
    `/${id()}\\..\\secret.txt`,
    '/secret.txt%00',
    `/${id()}%00`,
    '/\xc0\xae\xc0\xae/secret.txt',
    `http://127.0.0.1/${id()}`,
    `http://x/../secret.txt`,
    `//${id()}`,
    '//etc/passwd',
    '/secret.txt',
    `${dir}/secret.txt`,
    '/etc/passwd',
    '*',
  ];

  it('answers 400/404 and touches no file', async () => {
    const before = { ...dataFileCounters };
    const atime = statSync(join(dir, 'secret.txt')).atimeMs;
    for (const t of targets()) {
      const res = await rawRequest(server.port, Buffer.from(requestBytes('GET', t, {}, server.port), 'latin1'));
      expect([400, 404], `${JSON.stringify(t)} -> ${res.status}`).toContain(res.status);
      expect(res.body.toString('latin1')).not.toContain(secret);
      expect(res.body.toString('latin1')).not.toContain('root:');
    }
    // The same with a Range header, which would otherwise trigger a read.
    for (const t of targets()) {
      const res = await rawRequest(server.port, Buffer.from(requestBytes('GET', t, { Range: 'bytes=0-4095' }, server.port), 'latin1'));
      expect([400, 404], `${JSON.stringify(t)} -> ${res.status}`).toContain(res.status);
    }
    expect(dataFileCounters).toEqual(before);
    expect(statSync(join(dir, 'secret.txt')).atimeMs).toBe(atime);
  });

  it('answers the same 404 for every unknown id, without reading', async () => {
    const before = { ...dataFileCounters };
    const a = await get(server.port, `/${'0'.repeat(64)}`, { Range: 'bytes=0-4095' });
    const b = await get(server.port, `/${'f'.repeat(64)}`, { Range: 'bytes=0-4095' });
    const c = await get(server.port, `/${'0'.repeat(64)}/blocks?blocksize=4096`);
    expect([a.status, b.status, c.status]).toEqual([404, 404, 404]);
    expect(a.body.equals(b.body)).toBe(true);
    expect(JSON.parse(a.body.toString())).toEqual({ error: 'unknown file' });
    expect(a.headers['content-type']).toMatch(/^application\/json/);
    expect(dataFileCounters).toEqual(before);
  });

  it('refuses other methods with 405 and a body on GET with 400', async () => {
    const post = await get(server.port, `/${full.k.filehash}`, { Range: 'bytes=0-4095' }, 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    const del = await get(server.port, `/${full.k.filehash}`, {}, 'DELETE');
    expect(del.status).toBe(405);
    const withBody = await rawRequest(
      server.port,
      `GET /${full.k.filehash} HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: bytes=0-4095\r\nContent-Length: 5\r\n\r\nhello`,
    );
    expect(withBody.status).toBe(400);
  });
});

describe('ranges', () => {
  const range = (k: Kascade, value: string) => get(server.port, `/${k.filehash}`, { Range: value });

  it('serves one aligned block: 206 with Content-Range, Content-Length, octet-stream, Server', async () => {
    const res = await range(full.k, 'bytes=4096-8191');
    expect(res.status).toBe(206);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    expect(res.headers['content-range']).toBe(`bytes 4096-8191/${SIZE}`);
    expect(res.headers['content-length']).toBe('4096');
    expect(res.headers.server).toBe(`kfetch/${VERSION}`);
    expect(res.body.equals(full.bytes.subarray(4096, 8192))).toBe(true);
  });

  it('accepts a Range without the bytes= unit, the short last block, and an upper-case id', async () => {
    const a = await get(server.port, `/${full.k.filehash.toUpperCase()}`, { Range: '98304-99999' });
    expect(a.status).toBe(206);
    expect(a.body.equals(full.bytes.subarray(98304))).toBe(true);
  });

  it('serves an unaligned sub-range of held data and a multi-block range with exact bytes', async () => {
    const a = await range(full.k, 'bytes=5-9');
    expect(a.status).toBe(206);
    expect(a.headers['content-range']).toBe(`bytes 5-9/${SIZE}`);
    expect(a.body.equals(full.bytes.subarray(5, 10))).toBe(true);
    const b = await range(full.k, 'bytes=4000-70000');
    expect(b.status).toBe(206);
    expect(b.body.equals(full.bytes.subarray(4000, 70001))).toBe(true);
    const c = await range(full.k, 'bytes=90000-');
    expect(c.status).toBe(206);
    expect(c.headers['content-range']).toBe(`bytes 90000-99999/${SIZE}`);
    expect(c.body.equals(full.bytes.subarray(90000))).toBe(true);
  });

  it('answers 416 past the end, for several ranges and for suffix ranges; 400 for garbage', async () => {
    const past = await range(full.k, `bytes=0-${SIZE}`);
    expect(past.status).toBe(416);
    expect(past.headers['content-range']).toBe(`bytes */${SIZE}`);
    expect((await range(full.k, `bytes=${SIZE}-${SIZE + 10}`)).status).toBe(416);
    expect((await range(full.k, 'bytes=0-1,5-6')).status).toBe(416);
    expect((await range(full.k, 'bytes=-500')).status).toBe(416);
    expect((await range(full.k, `bytes=0-${2 ** 53}`)).status).toBe(416);
    expect((await range(full.k, 'bytes=1e3-')).status).toBe(400);
    expect((await range(full.k, 'bytes=0x10-0x20')).status).toBe(400);
    expect((await range(full.k, 'bytes=1.0-2')).status).toBe(400);
  });

  it('answers 400 for a block not held, and still serves the held ones of that file', async () => {
    const before = { ...dataFileCounters };
    const missing = await range(partial.k, 'bytes=4096-8191');
    expect(missing.status).toBe(400);
    expect(JSON.parse(missing.body.toString())).toEqual({ error: 'block not held (yet)' });
    expect((await range(partial.k, 'bytes=8191-8191')).status).toBe(400);
    expect((await range(partial.k, 'bytes=0-8191')).status).toBe(400);
    expect(dataFileCounters.reads).toBe(before.reads); // nothing unverified was read
    const held = await range(partial.k, 'bytes=8192-12287');
    expect(held.status).toBe(206);
    expect(held.body.equals(partial.bytes.subarray(8192, 12288))).toBe(true);
    // The whole file is not served while incomplete.
    expect((await get(server.port, `/${partial.k.filehash}`)).status).toBe(416);
  });
});

describe('whole file, HEAD, bitfield, keep-alive', () => {
  it('counts every byte read and sent while many responses stream at once', async () => {
    const s = await start(library, { readChunkBytes: 4096 });
    const N = 8;
    const rs = await Promise.all(Array.from({ length: N }, () => get(s.port, `/${full.k.filehash}`)));
    for (const r of rs) expect(r.body.equals(full.bytes)).toBe(true);
    // 25 chunks each, interleaved: a counter updated across an await would lose some of them.
    expect(s.stats().bytesSent).toBe(N * SIZE);
    expect(s.stats().bytesRead).toBe(N * SIZE);
  });

  it('GET without Range gives 200 and the whole file; HEAD gives the length and no body', async () => {
    const res = await get(server.port, `/${full.k.filehash}`);
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe(String(SIZE));
    expect(res.headers['accept-ranges']).toBe('bytes');
    expect(res.body.equals(full.bytes)).toBe(true);
    const head = await get(server.port, `/${full.k.filehash}`, {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(SIZE));
    expect(head.body.length).toBe(0);
    const headRange = await get(server.port, `/${full.k.filehash}`, { Range: 'bytes=0-4095' }, 'HEAD');
    expect(headRange.status).toBe(206);
    expect(headRange.headers['content-length']).toBe('4096');
  });

  it('serves /blocks?blocksize=B as text/plain hex; 400 for a size not offered', async () => {
    const a = await get(server.port, `/${partial.k.filehash}/blocks?blocksize=4096`);
    expect(a.status).toBe(200);
    expect(a.headers['content-type']).toMatch(/^text\/plain/);
    expect(a.body.toString()).toBe('bfffff80'); // 25 blocks, block 1 missing
    const b = await get(server.port, `/${partial.k.filehash}/blocks?blocksize=8192`);
    expect(b.body.toString()).toBe('7ff8'); // 13 blocks, block 0 (bytes 0..8191) not whole
    const c = await get(server.port, `/${full.k.filehash}/blocks?blocksize=8192`);
    expect(c.body.toString()).toBe('fff8');
    expect((await get(server.port, `/${full.k.filehash}/blocks?blocksize=1024`)).status).toBe(400);
  });

  it('keeps the connection alive for two requests', async () => {
    const c = await open(server.port);
    c.send(requestBytes('GET', `/${full.k.filehash}`, { Range: 'bytes=0-4095' }, server.port));
    const r1 = await c.readResponse();
    c.send(requestBytes('GET', `/${full.k.filehash}`, { Range: 'bytes=8192-12287' }, server.port));
    const r2 = await c.readResponse();
    expect([r1.status, r2.status]).toEqual([206, 206]);
    expect(r2.body.equals(full.bytes.subarray(8192, 12288))).toBe(true);
    expect(c.closed).toBe(false);
  });

  it('every answer carries the Server header: errors, HEAD, the bitfield, a whole file', async () => {
    const answers = [
      await get(server.port, `/${'0'.repeat(64)}`),
      await get(server.port, `/${full.k.filehash}`, { Range: 'bytes=999999-' }),
      await get(server.port, `/${partial.k.filehash}`, { Range: 'bytes=4096-8191' }),
      await get(server.port, `/${full.k.filehash}`, {}, 'HEAD'),
      await get(server.port, `/${full.k.filehash}/blocks?blocksize=4096`),
      await get(server.port, `/${full.k.filehash}`),
      await get(server.port, `/${full.k.filehash}`, {}, 'POST'),
    ];
    expect(answers.map((r) => r.status)).toEqual([404, 416, 400, 200, 200, 200, 405]);
    for (const r of answers) expect(r.headers.server).toBe(`kfetch/${VERSION}`);
  });

  it('answers 431 to a 64 KiB header', async () => {
    const res = await rawRequest(
      server.port,
      `GET /${full.k.filehash} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`,
    );
    expect(res.status).toBe(431);
    expect(res.headers.server).toBe(`kfetch/${VERSION}`);
    expect(JSON.parse(res.body.toString())).toHaveProperty('error');
    // A request line Node's parser refuses gets the same shape.
    const junk = await rawRequest(server.port, 'GET /\x01 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect(junk.status).toBe(400);
    expect(junk.headers['content-type']).toMatch(/^application\/json/);
  });

  it('cuts a client that never finishes its headers (slowloris) by headersTimeout', async () => {
    // The request timeout is far past the wait below, so only the headers timeout can end the connection in time.
    const s = await start(library, { headersTimeoutMs: 500, requestTimeoutMs: 60_000 });
    const c = await open(s.port);
    c.send(`GET /${full.k.filehash} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a`);
    const trickle = setInterval(() => c.send('a'), 100);
    try {
      expect(await c.waitClosed(20_000)).toBe(true);
    } finally {
      clearInterval(trickle);
    }
  });

  it('refuses a foreign Host while bound to loopback, accepts loopback names', async () => {
    const evil = await get(server.port, `/${full.k.filehash}`, { Host: 'evil.example', Range: 'bytes=0-4095' });
    expect(evil.status).toBe(403);
    const evilPort = await get(server.port, `/${full.k.filehash}`, { Host: `evil.example:${server.port}` });
    expect(evilPort.status).toBe(403);
    const lh = await get(server.port, `/${full.k.filehash}`, { Host: `localhost:${server.port}`, Range: 'bytes=0-4095' });
    expect(lh.status).toBe(206);
    const v6 = await get(server.port, `/${full.k.filehash}`, { Host: `[::1]:${server.port}`, Range: 'bytes=0-4095' });
    expect(v6.status).toBe(206);
  });

  it('never sends wrong bytes when the file shrinks under it: 400 "not held now" before headers (issue 10 point 9: not a 500 counted against an honest seeder), and none of it served after (point 1)', async () => {
    const p = makePayload(dir, 'shrink.bin', SIZE, 'shrink');
    const k = parseKascade(
      JSON.stringify(kascadeJsonFor(p.bytes!, { filename: 'shrink.bin', tracker: 'http://127.0.0.1:9/x', blockSizes: [4096] })),
    );
    const data = await openDataFileToSeed(p.path, SIZE);
    try {
      const lib = new Library();
      lib.add(new VerifiedServedFile(k, data, Bitfield.full(25), 4096));
      const s = await start(lib, { readChunkBytes: 4096 });
      truncateSync(p.path, 50_000);
      const after = await get(s.port, `/${k.filehash}`, { Range: 'bytes=61440-65535' });
      expect(after.status).toBe(400);
      expect(after.body.toString()).toContain('block not held now');
      // Once found changed the file is not served any more (issue 10 point 1), not even the bytes still there.
      const still = await get(s.port, `/${k.filehash}`, { Range: 'bytes=0-4095' });
      expect(still.status).toBe(400);
      expect((await get(s.port, `/${k.filehash}/blocks?blocksize=4096`)).body.toString()).toBe('00000000');
    } finally {
      data.close();
    }
  });
});

describe('under load', () => {
  const BIG = 128 * 1024 * 1024;
  let big: { k: Kascade; data: DataFile };

  beforeAll(async () => {
    // A sparse 128 MiB file, trusted as held (the server never hashes; only what it is told is held is read).
    const path = join(dir, 'big.bin');
    writeFileSync(path, '');
    truncateSync(path, BIG);
    const n = BIG / (1024 * 1024);
    const json = {
      filename: 'big.bin',
      filesize: BIG,
      filehash: 'ab'.repeat(32),
      tracker: 'http://127.0.0.1:9/peers/x.json',
      blockhashes: { [String(1024 * 1024)]: Array.from({ length: n }, () => '0'.repeat(32)) },
    };
    big = { k: parseKascade(JSON.stringify(json)), data: await openDataFileToSeed(path, BIG) };
  });

  afterAll(async () => {
    big.data.close();
  });

  async function paused(port: number, localAddress?: string): Promise<RawConnection> {
    const c = await open(port, localAddress);
    c.send(requestBytes('GET', `/${big.k.filehash}`, {}, port));
    c.socket.pause();
    return c;
  }

  it('a paused reader keeps server memory bounded while streaming a 128 MiB file, and is cut after the idle timeout', async () => {
    const lib = new Library();
    lib.add(new VerifiedServedFile(big.k, big.data, Bitfield.full(128), 1024 * 1024));
    const s = await start(lib, { idleTimeoutMs: 5_000 });
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    let rssPeak = rss0;
    await paused(s.port);
    await until(() => s.stats().bytesRead > 0, 20_000, 'first read of the file');
    expect(s.stats().inFlight).toBe(1);
    await until(
      () => {
        rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
        return s.stats().inFlight === 0;
      },
      30_000,
      'paused reader cut by the idle timeout',
    );
    // Over the reader's whole life only what fits in the socket buffers plus a chunk or two was read, not the file.
    expect(s.stats().bytesRead).toBeLessThan(24 * 1024 * 1024);
    expect(rssPeak - rss0).toBeLessThan(64 * 1024 * 1024);
  });

  it('many paused readers hold one read buffer each, and large ones only up to readBufferMaxBytes', async () => {
    const lib = new Library();
    lib.add(new VerifiedServedFile(big.k, big.data, Bitfield.full(128), 1024 * 1024));
    lib.add(new VerifiedServedFile(full.k, full.data, Bitfield.full(25), 4096));
    const LARGE = 64 * 1024;
    const SMALL = 4096;
    const s = await start(lib, { readChunkBytes: LARGE, readChunkSmallBytes: SMALL, readBufferMaxBytes: 2 * LARGE, idleTimeoutMs: 30_000 });
    const READERS = 8;
    for (let i = 0; i < READERS; i++) await paused(s.port);
    const held = (): number => s.stats().readBuffers.large.live + s.stats().readBuffers.small.live;
    // Each reader's socket buffers fill up, then its response waits with its buffer in the unfinished write.
    await until(() => s.stats().inFlight === READERS && held() === READERS, 20_000, 'every paused response holding its buffer');
    const b = s.stats().readBuffers;
    expect(b.large.allocated).toBeLessThanOrEqual(2); // never more large buffers than the cap, whoever asked
    expect(b.large.live).toBe(2);
    expect(b.small.live).toBe(READERS - 2);
    expect(b.liveBytes).toBe(2 * LARGE + (READERS - 2) * SMALL);
    // A response served from a small buffer sends the same bytes (25 chunks of 4 KiB, the last one short).
    const r = await get(s.port, `/${full.k.filehash}`);
    expect(r.status).toBe(200);
    expect(r.body.equals(full.bytes)).toBe(true);
    expect(s.stats().readBuffers.small.allocated).toBeLessThanOrEqual(READERS + 1);
    // The readers leave: every buffer comes back (or is dropped if its write was cut short), none is held.
    for (const c of conns.splice(0)) c.close();
    await until(() => s.stats().inFlight === 0 && held() === 0, 10_000, 'buffers released');
  });

  it('caps requests per client and overall with 503 + Retry-After, and frees slots when clients leave', async () => {
    const lib = new Library();
    lib.add(new VerifiedServedFile(big.k, big.data, Bitfield.full(128), 1024 * 1024));
    lib.add(new VerifiedServedFile(full.k, full.data, Bitfield.full(25), 4096));
    // maxQueued 0: no waiting room, so a request finding no slot is refused at once (queueing has its own tests).
    const s = await start(lib, { maxPerClient: 2, maxConcurrent: 3, maxQueued: 0 });
    const a1 = await paused(s.port, '127.0.0.1');
    const a2 = await paused(s.port, '127.0.0.1');
    await until(() => s.stats().inFlight === 2, 20_000, 'two paused readers in flight');
    const busy = await rawRequest(s.port, requestBytes('GET', `/${full.k.filehash}`, { Range: 'bytes=0-4095' }, s.port));
    expect(busy.status).toBe(503);
    expect(busy.headers['retry-after']).toBe('1');
    expect(JSON.parse(busy.body.toString()).error).toMatch(/busy/);
    // Another address still gets a slot, until the overall cap.
    const other = await rawRequest(s.port, requestBytes('GET', `/${full.k.filehash}`, { Range: 'bytes=0-4095' }, s.port), {
      localAddress: '127.0.0.2',
    });
    expect(other.status).toBe(206);
    await paused(s.port, '127.0.0.2');
    await until(() => s.stats().inFlight === 3, 20_000, 'three paused readers in flight');
    const full3 = await rawRequest(s.port, requestBytes('GET', `/${full.k.filehash}`, { Range: 'bytes=0-4095' }, s.port), {
      localAddress: '127.0.0.3',
    });
    expect(full3.status).toBe(503);
    // Many sockets at once from one address: none is served beyond the cap, the server stays up.
    const many = await Promise.all(
      Array.from({ length: 50 }, () =>
        rawRequest(s.port, requestBytes('GET', `/${full.k.filehash}`, { Range: 'bytes=0-4095' }, s.port)).then((r) => r.status),
      ),
    );
    expect(new Set(many)).toEqual(new Set([503]));
    a1.close();
    a2.close();
    await until(() => s.stats().inFlight === 1, 20_000, 'slots of the closed readers freed');
    const again = await rawRequest(s.port, requestBytes('GET', `/${full.k.filehash}`, { Range: 'bytes=0-4095' }, s.port));
    expect(again.status).toBe(206);
  });

  it('close() ends even with a paused reader in flight', async () => {
    const lib = new Library();
    lib.add(new VerifiedServedFile(big.k, big.data, Bitfield.full(128), 1024 * 1024));
    // The idle timeout is far past the close bound, so only close() itself can end the paused reader in time.
    const s = await startBlockServer({
      library: lib,
      host: '127.0.0.1',
      port: 0,
      log,
      limits: { closeGraceMs: 200, idleTimeoutMs: 60_000 },
    });
    await paused(s.port);
    await until(() => s.stats().inFlight === 1, 20_000, 'paused reader in flight');
    await within(s.close(), 20_000, 'close() with a paused reader');
  });
});
