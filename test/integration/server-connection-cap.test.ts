// Issue 10 point 14: the block server caps open connections (overall and per address) below the fd limit, closes
// idle ones first, refuses new ones when every connection is busy, and keeps a few connections for the owner's
// /status. In process with small configured caps over real sockets on 127.0.0.x; and `kfetch seed` as a child under
// a real low `ulimit -n`, flooded with idle connections, still serving.

import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseKascade } from '../../src/kascade/parse.js';
import { startBlockServer, type BlockServer, type BlockServerLimits } from '../../src/server/block-server.js';
import { parseFdLimit } from '../../src/server/fd-limit.js';
import { Library, VerifiedServedFile } from '../../src/server/library.js';
import { openDataFileToSeed } from '../../src/store/data-file.js';
import { Bitfield } from '../../src/util/bitfield.js';
import { BIN, tempHome } from '../helpers/cli.js';
import { kascadeJsonFor, makePayload, writeKascade } from '../helpers/make-file.js';
import { RawConnection, rawRequest, requestBytes } from '../helpers/raw-http.js';
import { testScope } from '../helpers/test-scope.js';
import { until } from '../helpers/wait.js';

const scope = testScope();
const BLOCK = 4096;
const SIZE = 64 * BLOCK;
const BIG = 8 * 1024 * 1024; // a paused reader of it stays busy (more than the loopback socket buffers)
const sockets: (Socket | RawConnection)[] = [];

afterEach(() => {
  for (const s of sockets.splice(0)) s instanceof RawConnection ? s.close() : s.destroy();
});

const addr = (n: number): string => `127.0.0.${n}`;

async function serve(limits: Partial<BlockServerLimits>, withBig = false): Promise<{ s: BlockServer; id: string; bigId: string; bytes: Buffer }> {
  const dir = scope.dir('kfetch-conncap-');
  const library = new Library();
  const ids: string[] = [];
  let bytes: Buffer = Buffer.alloc(0);
  for (const [name, size] of withBig ? ([['f.bin', SIZE], ['big.bin', BIG]] as const) : ([['f.bin', SIZE]] as const)) {
    const p = makePayload(dir, name, size, name);
    if (name === 'f.bin') bytes = p.bytes!;
    const k = parseKascade(JSON.stringify(kascadeJsonFor(p.bytes!, { filename: name, tracker: 'http://127.0.0.1:9/x', blockSizes: [BLOCK] })));
    const data = await openDataFileToSeed(join(dir, name), size);
    scope.keep({ close: () => Promise.resolve(data.close()) });
    library.add(new VerifiedServedFile(k, data, Bitfield.full(size / BLOCK), BLOCK));
    ids.push(k.filehash);
  }
  const s = scope.keep(
    await startBlockServer({
      library,
      host: '127.0.0.1',
      port: 0,
      log: pino({ level: 'silent' }),
      limits: { closeGraceMs: 50, ...limits },
      observability: { metrics: () => '', status: () => ({ ok: true }), allowed: (a) => a === addr(1) },
    }),
  );
  return { s, id: ids[0]!, bigId: ids[1] ?? '', bytes };
}

/** An idle connection from `from` (never sends a request). */
async function idle(s: BlockServer, from: string): Promise<RawConnection> {
  const c = await RawConnection.open(s.port, { localAddress: from });
  sockets.push(c);
  return c;
}

/** A busy connection: a paused reader of the big file. */
async function busy(s: BlockServer, from: string, bigId: string): Promise<RawConnection> {
  const c = await idle(s, from);
  c.send(requestBytes('GET', `/${bigId}`, {}, s.port));
  c.socket.pause();
  return c;
}

const block = (s: BlockServer, id: string, from: string): Promise<{ status: number }> =>
  rawRequest(s.port, requestBytes('GET', `/${id}`, { Range: `bytes=0-${BLOCK - 1}` }, s.port), { localAddress: from });

describe('connection caps (issue 10 point 14)', () => {
  it('idle connections filling the cap are closed, oldest first, so /status and a block request still work', async () => {
    const { s, id, bytes } = await serve({ maxConnections: 8, maxConnectionsPerAddress: 8, ownerConnections: 2 });
    const idlers: RawConnection[] = [];
    for (let i = 0; i < 8; i++) idlers.push(await idle(s, addr(2 + (i % 3))));
    await until(() => s.stats().connections === 8);
    const st = await rawRequest(s.port, requestBytes('GET', '/status', {}, s.port), { localAddress: addr(1) });
    expect(st.status).toBe(200);
    const r = await rawRequest(s.port, requestBytes('GET', `/${id}`, { Range: `bytes=0-${BLOCK - 1}` }, s.port), { localAddress: addr(5) });
    expect(r.status).toBe(206);
    expect(r.body.equals(bytes.subarray(0, BLOCK))).toBe(true);
    expect(s.stats().idleClosed).toBe(2);
    expect(await idlers[0]!.waitClosed()).toBe(true); // the longest idle went first
    expect(await idlers[1]!.waitClosed()).toBe(true);
    expect(idlers[7]!.closed).toBe(false);
    expect(s.stats().connections).toBeLessThanOrEqual(8);
  });

  it('per address: a fourth connection from one address closes that address\'s idle one, not another\'s', async () => {
    const { s, id } = await serve({ maxConnections: 8, maxConnectionsPerAddress: 3, ownerConnections: 0 });
    const other = await idle(s, addr(3));
    const mine = [await idle(s, addr(2)), await idle(s, addr(2)), await idle(s, addr(2))];
    await until(() => s.stats().connections === 4);
    expect((await block(s, id, addr(2))).status).toBe(206);
    expect(await mine[0]!.waitClosed()).toBe(true);
    expect(other.closed).toBe(false);
  });

  it('all busy: a new connection is closed at once; the owner still reads /status on its own slot, where blocks get 503', async () => {
    const { s, id, bigId } = await serve({ maxConnections: 3, maxConnectionsPerAddress: 3, ownerConnections: 1 }, true);
    for (let i = 0; i < 3; i++) await busy(s, addr(2 + i), bigId);
    await until(() => s.stats().inFlight === 3);
    await expect(block(s, id, addr(6))).rejects.toThrow(/connection closed/);
    expect(s.stats().refusedConnections).toBe(1);
    const st = await rawRequest(s.port, requestBytes('GET', '/status', {}, s.port), { localAddress: addr(1) });
    expect(st.status).toBe(200);
    const b = await block(s, id, addr(1));
    expect(b.status).toBe(503);
  });

  it('reads the soft limit from /proc/self/limits text', () => {
    const text = 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n';
    expect(parseFdLimit(text)).toBe(1024);
    expect(parseFdLimit('Max open files            unlimited            unlimited            files')).toBeUndefined();
    expect(parseFdLimit('')).toBeUndefined();
  });

  it('kfetch seed under ulimit -n 96, flooded with 200 idle connections, still serves a block', async () => {
    const dir = scope.dir('kfetch-conncap-cli-');
    const p = makePayload(dir, 'c.bin', SIZE, 'cli');
    const kascadePath = writeKascade(join(dir, 'c.json'), kascadeJsonFor(p.bytes!, { filename: 'c.bin', tracker: 'http://127.0.0.1:9/x', blockSizes: [BLOCK] }));
    const child = spawn('sh', ['-c', 'ulimit -n 96 && exec "$0" "$@"', BIN, 'seed', kascadePath, '--data', dir, '--port', '0', '--trust'], {
      env: { ...process.env, KFETCH_HOME: tempHome() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    scope.keep({ close: () => Promise.resolve(void child.kill('SIGKILL')) });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    await until(() => /listening on http:\/\/127\.0\.0\.1:(\d+)/.test(out), 20_000);
    const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1]);
    const flood: Socket[] = [];
    for (let i = 0; i < 200; i++) {
      const sock = connect({ port, host: '127.0.0.1', localAddress: addr(2 + (i % 50)) });
      sock.on('error', () => undefined);
      flood.push(sock);
      sockets.push(sock);
    }
    await Promise.all(flood.map((f) => new Promise((res) => (f.connecting ? f.once('connect', res).once('close', res) : res(undefined)))));
    const k = JSON.parse(JSON.stringify(kascadeJsonFor(p.bytes!, { filename: 'c.bin', tracker: 'http://127.0.0.1:9/x', blockSizes: [BLOCK] }))) as { filehash: string };
    const r = await rawRequest(port, requestBytes('GET', `/${k.filehash}`, { Range: `bytes=0-${BLOCK - 1}` }, port), { localAddress: addr(60) });
    expect(r.status).toBe(206);
    expect(r.body.equals(p.bytes!.subarray(0, BLOCK))).toBe(true);
  });
});
