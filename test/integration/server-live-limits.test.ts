// Issue 12 (PATCH /settings applied at once): a real block server on 127.0.0.1 whose upload rate and maxClients
// change while it serves. Bytes are counted where the server hands them to sockets (stats().bytesSent), so kernel
// socket buffers do not blur the count. Only upper bounds of a rate are correctness claims (a loaded machine only
// makes things slower); "it did not stall" and "it sped up" are bounded waits far longer than needed yet far
// shorter than the old rate would take.

import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Kascade } from '../../src/kascade/kascade.js';
import { parseKascade } from '../../src/kascade/parse.js';
import { startBlockServer, type BlockServer, type BlockServerOptions } from '../../src/server/block-server.js';
import { Library, VerifiedServedFile } from '../../src/server/library.js';
import { chunkBytesFor } from '../../src/server/upload-rate.js';
import { LIMITS } from '../../src/limits.js';
import { openDataFileToSeed, type DataFile } from '../../src/store/data-file.js';
import { Bitfield } from '../../src/util/bitfield.js';
import { RawConnection, rawRequest, requestBytes } from '../helpers/raw-http.js';
import { until } from '../helpers/wait.js';

const log = pino({ level: 'silent' });
const KiB = 1024;
const MiB = 1024 * KiB;
const BIG = 256 * MiB; // sparse, trusted as held

let dir: string;
let big: { k: Kascade; data: DataFile };
let library: Library;
const servers: BlockServer[] = [];
const closers: Array<() => void> = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kfetch-live-limits-'));
  const path = join(dir, 'big.bin');
  writeFileSync(path, '');
  truncateSync(path, BIG);
  const json = {
    filename: 'big.bin',
    filesize: BIG,
    filehash: 'ab'.repeat(32),
    tracker: 'http://127.0.0.1:9/x',
    blockhashes: { [String(MiB)]: Array.from({ length: BIG / MiB }, () => '0'.repeat(32)) },
  };
  big = { k: parseKascade(JSON.stringify(json)), data: await openDataFileToSeed(path, BIG) };
  library = new Library();
  library.add(new VerifiedServedFile(big.k, big.data, Bitfield.full(BIG / MiB), MiB));
});

afterEach(async () => {
  for (const c of closers.splice(0)) c();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

afterAll(() => {
  big.data.close();
  rmSync(dir, { recursive: true, force: true });
});

async function start(limits: BlockServerOptions['limits'] = {}): Promise<BlockServer> {
  const s = await startBlockServer({ library, host: '127.0.0.1', port: 0, log, limits: { closeGraceMs: 200, ...limits } });
  servers.push(s);
  return s;
}

const addr = (n: number): string => `127.0.0.${n}`;

/** A client pulling the whole big file as fast as it reads; `onFirstData` runs inside the first 'data' event. */
function pull(s: BlockServer, from: string, onFirstData?: () => void): { bytes: () => number } {
  let n = 0;
  const sock = connect({ port: s.port, host: '127.0.0.1', localAddress: from });
  sock.on('error', () => undefined);
  sock.on('data', (d: Buffer) => {
    if (n === 0) onFirstData?.();
    n += d.length;
  });
  sock.write(requestBytes('GET', `/${big.k.filehash}`, {}, s.port));
  closers.push(() => sock.destroy());
  return { bytes: () => n };
}

/**
 * The rate the server sends at while `bytes` more go out, measured from the moment `skip` bytes past now were
 * sent (so whatever a previous rate had granted has gone). Bytes/s.
 */
async function measure(s: BlockServer, skip: number, bytes: number, deadlineMs: number): Promise<number> {
  const b0 = s.stats().bytesSent + skip;
  await until(() => s.stats().bytesSent >= b0, deadlineMs, `${skip} bytes to go out`);
  const t1 = performance.now();
  const b1 = s.stats().bytesSent;
  await until(() => s.stats().bytesSent >= b1 + bytes, deadlineMs, `${bytes} bytes to go out`);
  return ((s.stats().bytesSent - b1) * 1000) / (performance.now() - t1);
}

describe('upload rate changed while serving (BlockServer.setLimits)', () => {
  it('from no limit to a rate mid-response: the rate holds at once; back to no limit: the rest goes at once', async () => {
    const s = await start();
    expect(s.limits().maxUploadBytesPerSec).toBe(0);
    const RATE = 512 * KiB;
    // Set in the first 'data' event: the response is running, unlimited, with most of its 256 MiB still to send.
    const a = pull(s, addr(1), () => s.setLimits({ maxUploadBytesPerSec: RATE }));
    await until(() => a.bytes() > 0, 10_000, 'the first bytes');
    expect(s.limits().maxUploadBytesPerSec).toBe(RATE);
    expect(s.stats().bytesSent).toBeLessThan(BIG / 2);
    // Skip what was granted before the change (up to one unlimited 1 MiB chunk), then two seconds' worth.
    const measured = await measure(s, MiB + 64 * KiB, 2 * RATE, 30_000);
    console.log(`no limit -> ${RATE} B/s mid-response: measured ${Math.round(measured)} B/s`);
    expect(measured).toBeLessThan(RATE * 1.35);
    // Back to no limit: what is left (over 200 MiB, 400 s at the rate) arrives within the bound.
    s.setLimits({ maxUploadBytesPerSec: 0 });
    await until(() => s.stats().bytesSent === BIG, 60_000, 'the rest of the file at no limit');
    expect(s.stats().rateWaiting).toBe(0);
  });

  it('lowered mid-response: no stall on the old rate, the new rate holds; buffers follow the chunk size; raised: it speeds up', async () => {
    const s = await start({ maxUploadBytesPerSec: 8 * MiB });
    const a = pull(s, addr(1));
    await until(() => a.bytes() >= 2 * MiB, 20_000, 'two MiB at 8 MiB/s');
    const LOW = 64 * KiB;
    s.setLimits({ maxUploadBytesPerSec: LOW });
    // The old rate's debt and one waiting 400 KiB chunk would stall for seconds at 64 KiB/s if carried in bytes;
    // the first 2 s' worth must go out at about the new rate.
    const low = await measure(s, 16 * KiB, 2 * LOW, 30_000);
    console.log(`8 MiB/s -> ${LOW} B/s mid-response: measured ${Math.round(low)} B/s`);
    expect(low).toBeLessThan(LOW * 1.35);
    // A new response takes a read buffer of one chunk at the new rate (50 ms of it), not the old rate's…
    // The running one traded its 400 KiB buffer for one of that size at its next chunk (memory follows the rate).
    const lowChunk = chunkBytesFor(LOW, LIMITS.serverUploadChunkMs, LIMITS.serverUploadMinChunkBytes, LIMITS.serverReadChunkBytes);
    expect(s.stats().readBuffers.liveBytes).toBe(lowChunk);
    const b = pull(s, addr(2));
    await until(() => b.bytes() > 0, 20_000, 'the second response to start');
    expect(s.stats().readBuffers.liveBytes).toBe(2 * lowChunk);
    // Raised: 32 MiB more (over 8 minutes at 64 KiB/s) within the bound, and never above the new rate.
    const HIGH = 16 * MiB;
    s.setLimits({ maxUploadBytesPerSec: HIGH });
    const high = await measure(s, 256 * KiB, 32 * MiB, 30_000);
    console.log(`${LOW} -> ${HIGH} B/s: measured ${Math.round(high)} B/s`);
    expect(high).toBeLessThan(HIGH * 1.35);
  });

  it('refuses bad values with KF_E_INPUT naming the field, and changes nothing', async () => {
    const s = await start({ maxUploadBytesPerSec: MiB, maxClients: 5 });
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60]) {
      expect(() => s.setLimits({ maxUploadBytesPerSec: bad })).toThrow(expect.objectContaining({ code: 'KF_E_INPUT', field: 'maxUploadBytesPerSec' }));
    }
    for (const bad of [0, -3, 2.5, Number.NaN]) {
      expect(() => s.setLimits({ maxClients: bad })).toThrow(expect.objectContaining({ code: 'KF_E_INPUT', field: 'maxClients' }));
    }
    expect(s.limits()).toEqual({ maxUploadBytesPerSec: MiB, maxClients: 5 });
  });
});

describe('maxClients changed while serving', () => {
  /** Take a slot with a paused reader of the big file: it keeps the slot until closed. */
  async function hold(s: BlockServer, from: string): Promise<RawConnection> {
    const before = s.stats().inFlight;
    const c = await RawConnection.open(s.port, { localAddress: from });
    closers.push(() => c.close());
    c.send(requestBytes('GET', `/${big.k.filehash}`, {}, s.port));
    c.socket.pause();
    await until(() => s.stats().inFlight > before, 10_000, 'the holder to get its slot');
    return c;
  }
  const range = (s: BlockServer, from: string) =>
    rawRequest(s.port, requestBytes('GET', `/${big.k.filehash}`, { Range: 'bytes=0-1023' }, s.port), { localAddress: from, timeoutMs: 10_000 });

  it('raised: a new address is served at once; lowered: running requests go on, new addresses obey the new bound', async () => {
    const s = await start({ maxClients: 2 });
    await hold(s, addr(1));
    await hold(s, addr(2));
    const refused = await range(s, addr(3));
    expect(refused.status).toBe(503);
    expect(refused.body.toString()).toContain('too many clients');

    s.setLimits({ maxClients: 3 });
    expect((await range(s, addr(3))).status).toBe(206);

    s.setLimits({ maxClients: 1 });
    expect(s.limits().maxClients).toBe(1);
    expect(s.stats().inFlight).toBe(2); // nothing cut
    expect((await range(s, addr(4))).status).toBe(503);
    // An address already served keeps being served (its new request queues behind its own, not refused).
    expect(s.stats().rejectedBusy.maxClients).toBe(2);
    for (const c of closers.splice(0)) c();
    await until(() => s.stats().inFlight === 0, 10_000, 'the holders to go');
    expect((await range(s, addr(4))).status).toBe(206);
    expect((await range(s, addr(5))).status).toBe(206); // one at a time, each served
  });
});
