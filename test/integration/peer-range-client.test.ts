// The range client against raw TCP servers on 127.0.0.1 that answer with exact bytes: keep-alive reuse, and each
// way a response can be wrong (status, head too large, Content-Range, lengths, encodings, early close).

import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { KfetchError } from '../../src/errors.js';
import { RangeClient } from '../../src/peer/range-client.js';

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

  it('times out a peer that never answers, and a refused connection is a connection error', async () => {
    const s = await rawServer(() => undefined);
    const c = new RangeClient();
    const t = performance.now();
    const err = await c.fetchRange(s.addr, 'ab', 0, 15, Buffer.alloc(16), AbortSignal.timeout(300)).catch((e: unknown) => e);
    expect((err as KfetchError).code).toBe('KF_E_PEER_TIMEOUT');
    expect(performance.now() - t).toBeLessThan(2000);
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
