// Issue 5 (a long-running seeding box), part 3 and the routing half of part 5: a real block server on 127.0.0.1 under
// many real sockets. Requests that find no slot wait in a bounded, round-robin queue; slow readers are cut and free
// their slot; an upload rate limit is shared fairly by client address; /metrics and /status answer on the same port.
// Distinct client addresses are distinct loopback source addresses (127.0.0.x).

import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Kascade } from '../../src/kascade/kascade.js';
import { parseKascade } from '../../src/kascade/parse.js';
import { startBlockServer, type BlockServer, type BlockServerOptions } from '../../src/server/block-server.js';
import { openDataFileToSeed, type DataFile } from '../../src/store/data-file.js';
import { Library, VerifiedServedFile } from '../../src/server/library.js';
import { Bitfield } from '../../src/util/bitfield.js';
import { kascadeJsonFor, makePayload } from '../helpers/make-file.js';
import { RawConnection, rawRequest, requestBytes, type RawResponse } from '../helpers/raw-http.js';
import { never, until } from '../helpers/wait.js';

const log = pino({ level: 'silent' });
const MiB = 1024 * 1024;
const SIZE = 8 * MiB; // real bytes, 128 blocks of 64 KiB
const BLOCK = 64 * 1024;
const BIG = 128 * MiB; // sparse, trusted as held: for slow and paused readers that must not run out of bytes

let dir: string;
let real: { k: Kascade; data: DataFile; bytes: Buffer };
let big: { k: Kascade; data: DataFile };
let library: Library;
const servers: BlockServer[] = [];
const conns: RawConnection[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kfetch-fair-'));
  const p = makePayload(dir, 'real.bin', SIZE, 'fair');
  const k = parseKascade(JSON.stringify(kascadeJsonFor(p.bytes!, { filename: 'real.bin', tracker: 'http://127.0.0.1:9/x', blockSizes: [BLOCK] })));
  real = { k, data: await openDataFileToSeed(p.path, SIZE), bytes: p.bytes! };
  const bigPath = join(dir, 'big.bin');
  writeFileSync(bigPath, '');
  truncateSync(bigPath, BIG);
  const bigJson = {
    filename: 'big.bin',
    filesize: BIG,
    filehash: 'cd'.repeat(32),
    tracker: 'http://127.0.0.1:9/x',
    blockhashes: { [String(MiB)]: Array.from({ length: BIG / MiB }, () => '0'.repeat(32)) },
  };
  big = { k: parseKascade(JSON.stringify(bigJson)), data: await openDataFileToSeed(bigPath, BIG) };
  library = new Library();
  library.add(new VerifiedServedFile(real.k, real.data, Bitfield.full(SIZE / BLOCK), BLOCK));
  library.add(new VerifiedServedFile(big.k, big.data, Bitfield.full(BIG / MiB), MiB));
});

afterEach(async () => {
  for (const c of conns.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

afterAll(async () => {
  real.data.close();
  big.data.close();
  rmSync(dir, { recursive: true, force: true });
});

async function start(limits: BlockServerOptions['limits'] = {}, extra: Partial<BlockServerOptions> = {}): Promise<BlockServer> {
  const s = await startBlockServer({ library, host: '127.0.0.1', port: 0, log, limits: { closeGraceMs: 200, ...limits }, ...extra });
  servers.push(s);
  return s;
}

const addr = (n: number): string => `127.0.0.${n}`;

/** One range of the real file, on a fresh connection from `from`. */
function getRange(s: BlockServer, first: number, last: number, from = addr(1), timeoutMs = 5_000): Promise<RawResponse> {
  return rawRequest(s.port, requestBytes('GET', `/${real.k.filehash}`, { Range: `bytes=${first}-${last}` }, s.port), {
    localAddress: from,
    timeoutMs,
  });
}

/** Send a request on a connection kept open (for queueing tests); the response is read later. */
async function send(s: BlockServer, target: string, headers: Record<string, string>, from: string): Promise<RawConnection> {
  const c = await RawConnection.open(s.port, { localAddress: from });
  conns.push(c);
  c.send(requestBytes('GET', target, headers, s.port));
  return c;
}

/** Take a slot with a paused reader of the big file; it keeps the slot until closed. */
async function hold(s: BlockServer, from: string): Promise<RawConnection> {
  const before = s.stats().inFlight;
  const c = await send(s, `/${big.k.filehash}`, {}, from);
  c.socket.pause();
  await until(() => s.stats().inFlight > before, 10_000, 'the holder to get its slot');
  return c;
}

/** A client counting the bytes it receives for one request, reading as fast as it can. */
function pull(s: BlockServer, target: string, from: string): { bytes: () => number; close: () => void } {
  let n = 0;
  const sock = connect({ port: s.port, host: '127.0.0.1', localAddress: from });
  sock.on('error', () => undefined);
  sock.on('data', (d: Buffer) => (n += d.length));
  sock.write(requestBytes('GET', target, {}, s.port));
  return { bytes: () => n, close: () => sock.destroy() };
}

describe('500 clients at once', () => {
  it('every request ends in time with the right bytes or 503 + Retry-After; the server recovers', async () => {
    const s = await start({
      maxConcurrent: 64,
      maxPerClient: 8,
      maxQueued: 200,
      maxQueuedPerClient: 16,
      queueTimeoutMs: 2_000,
      maxUploadBytesPerSec: 16 * MiB, // so that responses take long enough for the queue to fill
    });
    const LEN = 128 * 1024;
    const t0 = Date.now();
    const results = await Promise.all(
      Array.from({ length: 500 }, async (_, i) => {
        const first = (i * 16_384) % (SIZE - LEN);
        try {
          return { i, first, res: await getRange(s, first, first + LEN - 1, addr(1 + (i % 25)), 20_000) };
        } catch (err) {
          return { i, first, err: String(err) };
        }
      }),
    );
    const elapsed = Date.now() - t0;
    const failures = results.filter((r) => r.res === undefined);
    expect(failures, JSON.stringify(failures.slice(0, 3))).toEqual([]);
    const counts: Record<number, number> = {};
    for (const { first, res } of results) {
      const status = res!.status;
      counts[status] = (counts[status] ?? 0) + 1;
      expect([206, 503]).toContain(status);
      if (status === 206) expect(res!.body.equals(real.bytes.subarray(first, first + LEN))).toBe(true);
      else expect(res!.headers['retry-after']).toBe('1');
    }
    const st = s.stats();
    console.log(`500 clients: ${JSON.stringify(counts)} in ${elapsed} ms; queued ${st.queuedTotal}, rejected ${JSON.stringify(st.rejectedBusy)}`);
    expect(counts[206]).toBeGreaterThan(64);
    expect(st.queuedTotal).toBeGreaterThan(0);
    const rejected = Object.values(st.rejectedBusy).reduce((a, b) => a + b, 0);
    expect(rejected).toBe(counts[503] ?? 0);
    expect(st.bytesSentBySwarm[real.k.swarmId]).toBe((counts[206] ?? 0) * LEN);
    await until(() => s.stats().inFlight === 0 && s.stats().queueDepth === 0, 10_000, 'in flight and queue back at 0');
    expect(s.stats().activeClients).toBe(0);
    const again = await getRange(s, 0, BLOCK - 1);
    expect(again.status).toBe(206);
  });
});

describe('queueing', () => {
  it('requests beyond the slots wait and are all served, not refused', async () => {
    const s = await start({ maxConcurrent: 2, maxPerClient: 2 });
    const holders = [await hold(s, addr(3)), await hold(s, addr(3))];
    const waiting = await Promise.all(
      Array.from({ length: 6 }, (_, i) => send(s, `/${real.k.filehash}`, { Range: `bytes=${i * BLOCK}-${(i + 1) * BLOCK - 1}` }, addr(1 + (i % 2)))),
    );
    await until(() => s.stats().queueDepth === 6, 10_000, 'six queued');
    for (const h of holders) h.close();
    const replies = await Promise.all(waiting.map((c) => c.readResponse()));
    replies.forEach((r, i) => {
      expect(r.status).toBe(206);
      expect(r.body.equals(real.bytes.subarray(i * BLOCK, (i + 1) * BLOCK))).toBe(true);
    });
    const st = s.stats();
    expect(st.queuedTotal).toBe(6);
    expect(st.queueWaitCount).toBe(6);
    expect(st.queueWaitMsSum).toBeGreaterThan(0);
    expect(st.rejectedBusy).toEqual({ maxClients: 0, queueFull: 0, clientQueueFull: 0, queueTimeout: 0 });
  });

  it('answers 503 + Retry-After beyond maxQueued, maxQueuedPerClient, maxClients and queueTimeoutMs', async () => {
    const s = await start({ maxConcurrent: 1, maxQueued: 2, maxQueuedPerClient: 1, maxClients: 3, queueTimeoutMs: 800 });
    await hold(s, addr(3));
    const range = { Range: `bytes=0-${BLOCK - 1}` };
    const q1 = await send(s, `/${real.k.filehash}`, range, addr(1));
    await until(() => s.stats().queueDepth === 1, 10_000, 'one queued');
    const perClient = await getRange(s, 0, BLOCK - 1, addr(1));
    expect(perClient.status).toBe(503);
    expect(perClient.headers['retry-after']).toBe('1');
    expect(JSON.parse(perClient.body.toString()).error).toMatch(/^busy/);
    const q2 = await send(s, `/${real.k.filehash}`, range, addr(2));
    await until(() => s.stats().queueDepth === 2, 10_000, 'two queued');
    const full = await getRange(s, 0, BLOCK - 1, addr(3)); // a known address: the global queue is full
    expect(full.status).toBe(503);
    const tooMany = await getRange(s, 0, BLOCK - 1, addr(4)); // a fourth address
    expect(tooMany.status).toBe(503);
    expect(tooMany.headers['retry-after']).toBe('1');
    // The queued ones time out with 503 (counted as queueTimeout below), long before the read bound.
    const [r1, r2] = await Promise.all([q1.readResponse({ timeoutMs: 20_000 }), q2.readResponse({ timeoutMs: 20_000 })]);
    expect([r1.status, r2.status]).toEqual([503, 503]);
    expect(s.stats().rejectedBusy).toEqual({ maxClients: 1, queueFull: 1, clientQueueFull: 1, queueTimeout: 2 });
    expect(s.stats().statuses[503]).toBe(5);
    expect(s.stats().queueDepth).toBe(0);
  });

  it('a client that disconnects while queued leaves the queue and never gets a slot', async () => {
    const s = await start({ maxConcurrent: 1 });
    const holder = await hold(s, addr(3));
    const gone = await send(s, `/${real.k.filehash}`, { Range: `bytes=0-${BLOCK - 1}` }, addr(1));
    await until(() => s.stats().queueDepth === 1, 10_000, 'one queued');
    // A reset, not a FIN: a FIN alone is a half-close, whose sender still wants its reply (issue 10 point 17).
    gone.socket.resetAndDestroy();
    await until(() => s.stats().queueDepth === 0, 10_000, 'the queue to empty');
    expect(s.stats().queueWaitCount).toBe(1);
    holder.close();
    await until(() => s.stats().inFlight === 0, 10_000, 'no request in flight');
    await never(() => s.stats().statuses[206] !== undefined, 200, 'the gone request served');
    const st = s.stats();
    expect(st.inFlight).toBe(0);
    expect(st.bytesSentBySwarm[real.k.swarmId]).toBeUndefined(); // the gone request was never served
    expect(st.statuses[206]).toBeUndefined();
    expect((await getRange(s, 0, BLOCK - 1)).status).toBe(206);
  });
});

describe('pipelined requests', () => {
  it('a connection that closes with pipelined requests frees their slots and queue places at once', async () => {
    const s = await start({ maxConcurrent: 2, idleTimeoutMs: 30_000, queueTimeoutMs: 30_000 });
    const c = await RawConnection.open(s.port, { localAddress: addr(5) });
    conns.push(c);
    // Three requests in one write: Node dispatches all three, but only the first response owns the socket; the
    // others never get a 'close' of their own when the connection dies.
    const one = requestBytes('GET', `/${big.k.filehash}`, {}, s.port);
    c.send(one + one + one);
    c.socket.pause();
    await until(() => s.stats().inFlight === 2 && s.stats().queueDepth === 1, 10_000, 'two in flight and one queued');
    c.close();
    // Far below the 30 s idle and queue timeouts: only the close itself can free them in time.
    await until(() => s.stats().inFlight === 0 && s.stats().queueDepth === 0, 10_000, 'slots and queue freed');
    expect(s.stats().activeClients).toBe(0);
  });
});

describe('round-robin by client address', () => {
  it('a client with one queued request is served before another client backlog of five drains', async () => {
    const s = await start({ maxConcurrent: 1, maxPerClient: 1 });
    const holder = await hold(s, addr(3));
    const busy: RawConnection[] = [];
    for (let i = 0; i < 5; i++) {
      busy.push(await send(s, `/${real.k.filehash}`, { Range: `bytes=${i * BLOCK}-${(i + 1) * BLOCK - 1}` }, addr(1)));
      await until(() => s.stats().queueDepth === i + 1, 10_000, `busy request ${i} queued`);
    }
    const patient = await send(s, `/${real.k.filehash}`, { Range: `bytes=0-${BLOCK - 1}` }, addr(2));
    await until(() => s.stats().queueDepth === 6, 10_000, 'six queued');
    const order: string[] = [];
    const done = [
      ...busy.map((c, i) => c.readResponse().then((r) => order.push(`a${i}:${r.status}`))),
      patient.readResponse().then((r) => order.push(`b:${r.status}`)),
    ];
    holder.close();
    await Promise.all(done);
    // One slot: a's first request, then b's, then the rest of a's backlog in its own order.
    expect(order).toEqual(['a0:206', 'b:206', 'a1:206', 'a2:206', 'a3:206', 'a4:206']);
  });
});

describe('slow readers', () => {
  it('a client reading one byte a second does not slow others, is cut after idleTimeoutMs and frees its slot', async () => {
    // An idle timeout far above what 4 MiB over loopback takes, so the order check below holds on a loaded machine.
    const s = await start({ maxConcurrent: 2, idleTimeoutMs: 5_000 });
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    const tSlow = Date.now();
    const slow = await send(s, `/${big.k.filehash}`, {}, addr(9));
    slow.socket.pause();
    const trickle = setInterval(() => slow.socket.read(1), 1_000);
    try {
      await until(() => s.stats().inFlight === 1, 10_000, 'the slow reader in flight');
      // Meanwhile another client is served at normal speed: 16 x 256 KiB with the other slot.
      const t0 = Date.now();
      for (let i = 0; i < 16; i++) {
        const first = i * 4 * BLOCK;
        const r = await getRange(s, first, first + 4 * BLOCK - 1, addr(1), 20_000);
        expect(r.status).toBe(206);
        expect(r.body.equals(real.bytes.subarray(first, first + 4 * BLOCK))).toBe(true);
      }
      const fastMs = Date.now() - t0;
      // Not slowed: the fast client is done while the slow reader still holds its slot (a server serving one
      // request at a time would have made it wait for the cut).
      expect(s.stats().inFlight).toBe(1);
      // Bounded: what was handed to the slow reader's socket is one chunk plus the socket buffers, not the file.
      const sentToSlow = s.stats().bytesSentBySwarm[big.k.swarmId] ?? 0;
      console.log(`slow reader: ${sentToSlow} bytes handed to its socket; 4 MiB fetched by another client in ${fastMs} ms`);
      expect(sentToSlow).toBeLessThan(24 * MiB);
      expect(process.memoryUsage().rss - rss0).toBeLessThan(64 * MiB);
      await until(() => s.stats().inFlight === 0, 20_000, 'the slow reader cut and its slot freed');
      const cutMs = Date.now() - tSlow;
      console.log(`slow reader cut after ${cutMs} ms (idleTimeoutMs 5000)`);
      expect(cutMs).toBeGreaterThanOrEqual(5_000);
      expect(s.stats().bytesSentBySwarm[big.k.swarmId]).toBeLessThan(24 * MiB);
    } finally {
      clearInterval(trickle);
    }
    // The client, paused, sees the end only once it reads what was buffered: the connection was really closed.
    slow.socket.resume();
    expect(await slow.waitClosed(20_000)).toBe(true);
    expect((await getRange(s, 0, BLOCK - 1, addr(9))).status).toBe(206);
  });
});

describe('upload rate limit', () => {
  it('two clients pulling at once never get more than the limit together', async () => {
    const RATE = 4 * MiB;
    const s = await start({ maxUploadBytesPerSec: RATE });
    const t0 = performance.now();
    const a = pull(s, `/${big.k.filehash}`, addr(1));
    const b = pull(s, `/${big.k.filehash}`, addr(2));
    // Two seconds' worth at the limit: a loaded machine only makes it take longer, never faster.
    await until(() => a.bytes() + b.bytes() >= 2 * RATE, 20_000, 'two seconds of the limit received');
    const secs = (performance.now() - t0) / 1000;
    const [na, nb] = [a.bytes(), b.bytes()];
    a.close();
    b.close();
    const total = na + nb;
    console.log(`rate limit ${RATE} B/s: ${Math.round(total / secs)} B/s over ${secs.toFixed(2)} s; shares ${(na / total).toFixed(2)} / ${(nb / total).toFixed(2)}`);
    // Only the upper bound is a correctness claim: a limiter must never exceed its rate. That the limit is reached
    // (rate >= 0.65x) and shared about evenly per address depends on the machine's load: a bench matter, and
    // bench/scenarios has no fair-serving figure yet.
    expect(total / secs).toBeLessThan(RATE * 1.35);
    await until(() => s.stats().inFlight === 0 && s.stats().rateWaiting === 0, 10_000, 'both gone');
  });
});

describe('/metrics and /status', () => {
  const observability = (calls: { n: number }): NonNullable<BlockServerOptions['observability']> => ({
    metrics: () => {
      calls.n++;
      return Promise.resolve('kfetch_test_up 1\n');
    },
    status: () => ({ ok: true, files: library.size }),
    allowed: (remote) => remote === '127.0.0.1' || remote === '::ffff:127.0.0.1',
  });
  const req = (s: BlockServer, method: string, target: string, from = addr(1), headers: Record<string, string> = {}) =>
    rawRequest(s.port, requestBytes(method, target, headers, s.port), { localAddress: from, head: method === 'HEAD' });

  it('serves them to allowed addresses, 403 to others, HEAD without a body, 405 for other methods', async () => {
    const calls = { n: 0 };
    const s = await start({}, { observability: observability(calls) });
    const m = await req(s, 'GET', '/metrics');
    expect(m.status).toBe(200);
    expect(m.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(m.body.toString()).toBe('kfetch_test_up 1\n');
    const st = await req(s, 'GET', '/status');
    expect(st.status).toBe(200);
    expect(st.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(st.body.toString())).toEqual({ ok: true, files: 2 });
    const head = await req(s, 'HEAD', '/metrics');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String('kfetch_test_up 1\n'.length));
    expect(head.body.length).toBe(0);
    const refused = await req(s, 'GET', '/metrics', addr(2));
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body.toString())).toEqual({ error: 'forbidden' });
    expect((await req(s, 'GET', '/status', addr(2))).status).toBe(403);
    const post = await req(s, 'POST', '/metrics');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    expect((await req(s, 'DELETE', '/status')).status).toBe(405);
    // The DNS-rebinding guard still applies.
    expect((await req(s, 'GET', '/metrics', addr(1), { Host: 'evil.example' })).status).toBe(403);
    expect(calls.n).toBe(2); // GET and HEAD; never for refused requests
    // Block URLs are unchanged.
    const block = await getRange(s, BLOCK, 2 * BLOCK - 1);
    expect(block.status).toBe(206);
    expect(block.body.equals(real.bytes.subarray(BLOCK, 2 * BLOCK))).toBe(true);
    expect((await req(s, 'GET', `/${real.k.filehash}/blocks?blocksize=${BLOCK}`)).body.toString()).toBe('ff'.repeat(16));
    expect(s.stats().observabilityRequests).toBe(7);
    expect(s.stats().requests).toBe(3); // the rebinding 403 and the two block requests
  });

  it('bypass the admission queue: answered while every slot and queue place is taken', async () => {
    const s = await start({ maxConcurrent: 1, maxQueued: 0 }, { observability: observability({ n: 0 }) });
    await hold(s, addr(3));
    expect((await getRange(s, 0, BLOCK - 1)).status).toBe(503);
    expect((await req(s, 'GET', '/metrics')).status).toBe(200);
    expect((await req(s, 'GET', '/status')).status).toBe(200);
  });

  it('without the option they get the same 404 as before; a failing supplier gives 500', async () => {
    const plain = await start();
    for (const t of ['/metrics', '/status']) {
      const r = await req(plain, 'GET', t);
      expect(r.status).toBe(404);
      expect(JSON.parse(r.body.toString())).toEqual({ error: 'not found' });
    }
    expect((await req(plain, 'POST', '/metrics')).status).toBe(405);
    const failing = await start(
      {},
      {
        observability: {
          metrics: () => Promise.reject(new Error('registry broke')),
          status: () => ({}),
          allowed: () => true,
        },
      },
    );
    const r = await req(failing, 'GET', '/metrics');
    expect(r.status).toBe(500);
    expect(JSON.parse(r.body.toString())).toHaveProperty('error');
    expect((await req(failing, 'GET', '/status')).status).toBe(200);
  });
});
