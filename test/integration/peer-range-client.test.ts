// The range client against raw TCP servers on 127.0.0.1 that answer with exact bytes: keep-alive reuse, and each
// way a response can be wrong (status, head too large, Content-Range, lengths, encodings, early close); the
// original 2015 peer's answers (issue 9 point 6) and the connection pool's waiters (issue 9 point 10).

import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { KfetchError } from '../../src/errors.js';
import { RangeClient } from '../../src/peer/range-client.js';
import { until, within } from '../helpers/wait.js';

const servers: Server[] = [];
const sockets = new Set<Socket>();
afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A server that answers every request (one per `\r\n\r\n`) with `reply(n)`; counts connections. */
async function rawServer(reply: (n: number, req: string) => Buffer | string | undefined): Promise<{ addr: string; connections: () => number }> {
  let conns = 0;
  let n = 0;
  const srv = createServer((s) => {
    conns++;
    sockets.add(s);
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (let e = buf.indexOf('\r\n\r\n'); e !== -1; e = buf.indexOf('\r\n\r\n')) {
        const req = buf.slice(0, e);
        buf = buf.slice(e + 4);
        const out = reply(n++, req);
        if (out !== undefined) s.write(out);
      }
    });
    s.on('error', () => undefined);
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { addr: `127.0.0.1:${(srv.address() as AddressInfo).port}`, connections: () => conns };
}

const body = Buffer.from('0123456789abcdef');
const ok = (extra = ''): string => `HTTP/1.1 206 Partial Content\r\nContent-Length: 16\r\nContent-Range: bytes 0-15/100\r\n${extra}\r\n${body.toString('latin1')}`;

/** A server that answers one request per connection with `reply`, then closes its side (HTTP/1.0 style). */
async function closingServer(reply: string | Buffer): Promise<{ addr: string; connections: () => number }> {
  let conns = 0;
  const srv = createServer((s) => {
    conns++;
    sockets.add(s);
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      if (!buf.includes('\r\n\r\n')) return;
      s.off('data', onData);
      s.end(reply);
    };
    s.on('data', onData);
    s.on('error', () => undefined);
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { addr: `127.0.0.1:${(srv.address() as AddressInfo).port}`, connections: () => conns };
}

/** The code of a fetch of bytes 0-15, and `detail.status` when the error has one. */
async function fetchResult(addr: string, client = new RangeClient(), ms = 3000): Promise<{ code: string; status?: unknown }> {
  try {
    await client.fetchRange(addr, 'ab', 0, 15, Buffer.alloc(16), AbortSignal.timeout(ms));
    return { code: 'ok' };
  } catch (e) {
    if (!(e instanceof KfetchError)) return { code: String(e) };
    return e.detail?.status === undefined ? { code: e.code } : { code: e.code, status: e.detail.status };
  } finally {
    await client.close();
  }
}

async function fetchCode(addr: string, client = new RangeClient()): Promise<string> {
  try {
    await client.fetchRange(addr, 'ab', 0, 15, Buffer.alloc(16), AbortSignal.timeout(3000));
    return 'ok';
  } catch (e) {
    return e instanceof KfetchError ? e.code : String(e);
  } finally {
    await client.close();
  }
}

describe('range client', () => {
  it('reads the body into the buffer and reuses one keep-alive connection', async () => {
    const s = await rawServer(() => ok());
    const c = new RangeClient();
    for (let i = 0; i < 3; i++) {
      const into = Buffer.alloc(16);
      await c.fetchRange(s.addr, 'ab', 0, 15, into, AbortSignal.timeout(3000));
      expect(into.equals(body)).toBe(true);
    }
    expect(s.connections()).toBe(1);
    await c.close();
  });

  it('sends a Range request with the exact inclusive byte range and no Accept-Encoding', async () => {
    let seen = '';
    const s = await rawServer((_n, req) => {
      seen = req;
      return ok();
    });
    expect(await fetchCode(s.addr)).toBe('ok');
    expect(seen).toMatch(/^GET \/ab HTTP\/1\.1\r\n/);
    expect(seen).toContain('\r\nRange: bytes=0-15');
    expect(seen.toLowerCase()).not.toContain('accept-encoding');
  });

  it.each([
    ['a 404', 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n', 'KF_E_PEER_LIED'],
    ['a 500', 'HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n', 'KF_E_PEER_PROTOCOL'],
    ['a 200 (range ignored)', 'HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n0123456789abcdef', 'KF_E_PEER_PROTOCOL'],
    ['a 302', 'HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n', 'KF_E_PEER_PROTOCOL'],
    ['gzip', ok('Content-Encoding: gzip\r\n'), 'KF_E_PEER_PROTOCOL'],
    ['chunked', 'HTTP/1.1 206 Partial Content\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n', 'KF_E_PEER_PROTOCOL'],
    ['no Content-Length', 'HTTP/1.1 206 Partial Content\r\n\r\n0123456789abcdef', 'KF_E_PEER_PROTOCOL'],
    ['a longer Content-Length', 'HTTP/1.1 206 Partial Content\r\nContent-Length: 17\r\n\r\n0123456789abcdefX', 'KF_E_PEER_LONG'],
    ['extra bytes after the body', `${ok()}EXTRA`, 'ok-or-long'],
    ['another Content-Range', 'HTTP/1.1 206 Partial Content\r\nContent-Length: 16\r\nContent-Range: bytes 16-31/100\r\n\r\n0123456789abcdef', 'KF_E_PEER_PROTOCOL'],
    ['not HTTP', 'SSH-2.0-OpenSSH\r\n\r\n', 'KF_E_PEER_PROTOCOL'],
    ['a 20 KiB head', `HTTP/1.1 206 Partial Content\r\nX-Big: ${'x'.repeat(20_000)}\r\nContent-Length: 16\r\n\r\n0123456789abcdef`, 'KF_E_PEER_PROTOCOL'],
  ])('refuses %s', async (_name, reply, code) => {
    const s = await rawServer(() => reply);
    const got = await fetchCode(s.addr);
    if (code === 'ok-or-long') expect(['ok', 'KF_E_PEER_LONG']).toContain(got);
    else expect(got).toBe(code);
  });

  it('reports a body cut short by a close as KF_E_PEER_SHORT (or a connection error), never success', async () => {
    const srv = createServer((sock) => {
      sockets.add(sock);
      sock.once('data', () => sock.end('HTTP/1.1 206 Partial Content\r\nContent-Length: 16\r\n\r\n01234567'));
    });
    servers.push(srv);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const code = await fetchCode(`127.0.0.1:${(srv.address() as AddressInfo).port}`);
    expect(['KF_E_PEER_SHORT', 'KF_E_PEER_CONNECT']).toContain(code);
  });

  it('a 206 whose head announces fewer bytes is an answer (detail.announcedBytes), a body cut short is not', async () => {
    // A plain HTTP server with a shorter file clamps the range: Content-Range and Content-Length say so up front.
    const partial = await rawServer(() => `HTTP/1.1 206 Partial Content\r\nContent-Length: 8\r\nContent-Range: bytes 0-7/8\r\n\r\n01234567`);
    const e1 = await new RangeClient().fetchRange(partial.addr, 'ab', 0, 15, Buffer.alloc(16), AbortSignal.timeout(3000)).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(KfetchError);
    expect((e1 as KfetchError).code).toBe('KF_E_PEER_SHORT');
    expect((e1 as KfetchError).detail).toMatchObject({ status: 206, announcedBytes: 8 });
    // The same bytes under a Content-Length of 16 then a close: a broken transfer, no announcedBytes.
    const cut = await closingServer('HTTP/1.1 206 Partial Content\r\nContent-Length: 16\r\n\r\n01234567');
    const e2 = await new RangeClient().fetchRange(cut.addr, 'ab', 0, 15, Buffer.alloc(16), AbortSignal.timeout(3000)).catch((e: unknown) => e);
    expect((e2 as KfetchError).detail?.announcedBytes).toBeUndefined();
  });

  it('times out a peer that never answers, and a refused connection is a connection error', async () => {
    const s = await rawServer(() => undefined);
    const c = new RangeClient();
    const err = await within(c.fetchRange(s.addr, 'ab', 0, 15, Buffer.alloc(16), AbortSignal.timeout(300)).catch((e: unknown) => e), 20_000, 'the 300 ms deadline');
    expect((err as KfetchError).code).toBe('KF_E_PEER_TIMEOUT');
    await c.close();
    expect(await fetchCode('127.0.0.1:1')).toBe('KF_E_PEER_CONNECT');
  });

  it('opens a new connection after HTTP/1.0 or Connection: close', async () => {
    const s = await rawServer(() => `HTTP/1.0 206 Partial Content\r\nContent-Length: 16\r\n\r\n${body.toString('latin1')}`);
    const c = new RangeClient();
    for (let i = 0; i < 2; i++) await c.fetchRange(s.addr, 'ab', 0, 15, Buffer.alloc(16), AbortSignal.timeout(3000));
    expect(s.connections()).toBe(2);
    await c.close();
  });
});

describe('range client against the original 2015 peer (issue 9, point 6)', () => {
  const orig = (range: string, extra = ''): string =>
    `HTTP/1.0 206 Partial Content\r\nServer: BaseHTTP/0.3 Python/2.7.6\r\nRange: ${range}\r\nContent-length: 16\r\n${extra}\r\n${body.toString('latin1')}`;

  it.each([
    ['a 404 with a header, no blank line', 'HTTP/1.0 404 Not Found\r\nServer: BaseHTTP/0.3 Python/2.7.6\r\n', { code: 'KF_E_PEER_LIED', status: 404 }],
    ['a bare 404 status line', 'HTTP/1.0 404 Not Found\r\n', { code: 'KF_E_PEER_LIED', status: 404 }],
    ['a 404 status line without its CRLF', 'HTTP/1.0 404 Not Found', { code: 'KF_E_PEER_LIED', status: 404 }],
    ['a 400', 'HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n', { code: 'KF_E_PEER_LIED', status: 400 }],
    ['a 416', 'HTTP/1.0 416 Requested Range Not Satisfiable\r\n', { code: 'KF_E_PEER_LIED', status: 416 }],
    ['a 500', 'HTTP/1.0 500 Internal Server Error\r\nServer: x\r\n', { code: 'KF_E_PEER_PROTOCOL', status: 500 }],
    ['a 206 (a cut-off success)', 'HTTP/1.0 206 Partial Content\r\nContent-length: 16\r\n', { code: 'KF_E_PEER_SHORT', status: 206 }],
    ['no status line (not HTTP)', 'SSH-2.0-OpenSSH\r\n', { code: 'KF_E_PEER_CONNECT' }],
    ['nothing at all', '', { code: 'KF_E_PEER_CONNECT' }],
  ])('a head that ends at the close without a blank line: %s', async (_name, reply, want) => {
    const s = await closingServer(reply);
    expect(await fetchResult(s.addr)).toEqual(want);
  });

  it('a headerless 404 frees its connection: the next request on a one-connection pool proceeds', async () => {
    const bad = await closingServer('HTTP/1.0 404 Not Found\r\n');
    const c = new RangeClient({ connectionsPerPeer: 1 });
    const first = await c.fetchRange(bad.addr, 'ab', 0, 15, Buffer.alloc(16), AbortSignal.timeout(3000)).catch((e: unknown) => e);
    expect((first as KfetchError).code).toBe('KF_E_PEER_LIED');
    const second = await c.fetchRange(bad.addr, 'ab', 0, 15, Buffer.alloc(16), AbortSignal.timeout(3000)).catch((e: unknown) => e);
    expect((second as KfetchError).code).toBe('KF_E_PEER_LIED'); // not a timeout waiting for a pool slot
    expect(bad.connections()).toBe(2);
    await c.close();
  });

  it('accepts the original 206 (HTTP/1.0, Range: bytes=a-b/size, Content-length, close) on a new connection each time', async () => {
    const s = await closingServer(orig('bytes=0-15/100'));
    const c = new RangeClient();
    for (let i = 0; i < 3; i++) {
      const into = Buffer.alloc(16);
      await c.fetchRange(s.addr, 'ab', 0, 15, into, AbortSignal.timeout(3000));
      expect(into.equals(body)).toBe(true);
    }
    expect(s.connections()).toBe(3);
    await c.close();
  });

  it.each([
    ['another range in its Range header', orig('bytes=16-31/100'), 'KF_E_PEER_PROTOCOL'],
    ['a Range header without the unit', orig('0-15/100'), 'ok'],
    ['a Range header without the size', orig('bytes=0-15'), 'ok'],
    ['a Range header longer than asked', orig('bytes=0-150/200'), 'KF_E_PEER_PROTOCOL'],
    ['a Content-Range that disagrees with its Range', orig('bytes=0-15/100', 'Content-Range: bytes 16-31/100\r\n'), 'KF_E_PEER_PROTOCOL'],
  ])('the original 206 shape with %s', async (_name, reply, code) => {
    const s = await closingServer(reply);
    expect((await fetchResult(s.addr)).code).toBe(code);
  });

  it.each([
    ['exactly the bytes asked for, then close', `HTTP/1.0 206 Partial Content\r\n\r\n${body.toString('latin1')}`, 'ok'],
    ['Connection: close over HTTP/1.1', `HTTP/1.1 206 Partial Content\r\nConnection: close\r\n\r\n${body.toString('latin1')}`, 'ok'],
    ['one byte short, then close', `HTTP/1.0 206 Partial Content\r\n\r\n${body.toString('latin1').slice(1)}`, 'KF_E_PEER_SHORT'],
    ['one byte more, then close', `HTTP/1.0 206 Partial Content\r\n\r\n${body.toString('latin1')}X`, 'KF_E_PEER_LONG'],
    ['nothing, then close', 'HTTP/1.0 206 Partial Content\r\n\r\n', 'KF_E_PEER_SHORT'],
  ])('a close-delimited 206 without Content-Length: %s', async (_name, reply, code) => {
    const s = await closingServer(reply);
    expect((await fetchResult(s.addr)).code).toBe(code);
  });

  it('a close-delimited 206 is not taken before the close: exact length is only known at EOF', async () => {
    // The bytes arrive but the peer keeps the connection open: a 17th byte could still come.
    const s = await rawServer(() => `HTTP/1.0 206 Partial Content\r\n\r\n${body.toString('latin1')}`);
    expect((await fetchResult(s.addr, new RangeClient(), 300)).code).toBe('KF_E_PEER_TIMEOUT');
  });
});

describe('range client connection pool (issue 9, point 10)', () => {
  it('an aborted waiter leaves the queue: the next release wakes a live waiter, not the dead one', async () => {
    // The first response is held until we say; every later one is answered at once (keep-alive).
    let releaseFirst: (() => void) | undefined;
    const s = await rawServer((n) => {
      if (n > 0) return ok();
      releaseFirst = () => void [...sockets][0]!.write(ok());
      return undefined;
    });
    const c = new RangeClient({ connectionsPerPeer: 1 });
    const a = c.fetchRange(s.addr, 'ab', 0, 15, Buffer.alloc(16), AbortSignal.timeout(10_000));
    await until(() => releaseFirst !== undefined, 10_000, 'the first request at the server');
    const dead = new AbortController();
    const b = c.fetchRange(s.addr, 'ab', 0, 15, Buffer.alloc(16), dead.signal).catch((e: unknown) => e);
    const live = c.fetchRange(s.addr, 'ab', 0, 15, Buffer.alloc(16), AbortSignal.timeout(20_000)).then(
      () => 'ok',
      (e: unknown) => (e instanceof KfetchError ? e.code : String(e)),
    );
    dead.abort(new Error('cancelled'));
    expect(((await b) as KfetchError).code).toBe('KF_E_PEER_CONNECT');
    releaseFirst!();
    await a;
    // Before the fix the release woke the aborted waiter and this one slept until its deadline (KF_E_PEER_TIMEOUT).
    expect(await live).toBe('ok');
    expect(s.connections()).toBe(1);
    await c.close();
  });
  it('a waiter whose signal aborts right after it is woken is not sent (else it would hang past its deadline)', async () => {
    // The first request is answered; the second would never be.
    const s = await rawServer((n) => (n === 0 ? ok() : undefined));
    const c = new RangeClient({ connectionsPerPeer: 1 });
    const late = new AbortController();
    const a = c.fetchRange(s.addr, 'ab', 0, 15, Buffer.alloc(16), AbortSignal.timeout(10_000));
    const b = c.fetchRange(s.addr, 'ab', 0, 15, Buffer.alloc(16), late.signal).then(
      () => 'ok',
      (e: unknown) => (e instanceof KfetchError ? e.code : String(e)),
    );
    // Abort in the microtask after `a` completes: `b` has been woken (its waiter listener removed) but not sent yet.
    await a.then(() => late.abort(new DOMException('deadline', 'TimeoutError')));
    expect(await within(b, 20_000, 'the aborted waiter settling')).toBe('KF_E_PEER_TIMEOUT');
    await c.close();
  });
});
