// Issue 10 point 17 (server parts), with exact bytes over raw sockets to a real block server on 127.0.0.1: a client
// that half-closes after its request still gets the reply; a request with more headers than node:http keeps is
// refused with 431 (never served as the whole-file GET a dropped late Range would make it); an HTTP/1.0 request
// without Host is served by a loopback seeder, while a foreign Host is still refused (DNS rebinding).

import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseKascade } from '../../src/kascade/parse.js';
import { startBlockServer, type BlockServer } from '../../src/server/block-server.js';
import { Library, VerifiedServedFile } from '../../src/server/library.js';
import { openDataFileToSeed } from '../../src/store/data-file.js';
import { Bitfield } from '../../src/util/bitfield.js';
import { kascadeJsonFor, makePayload } from '../helpers/make-file.js';
import { RawConnection, rawRequest, requestBytes } from '../helpers/raw-http.js';
import { testScope } from '../helpers/test-scope.js';

const scope = testScope();
const SIZE = 40_000; // 10 blocks of 4096, the last one short
const conns: RawConnection[] = [];
let bytes: Buffer;
let id: string;

afterEach(() => {
  for (const c of conns.splice(0)) c.close();
});

/** A block server over one complete file, stopped after the test. */
async function serve(): Promise<BlockServer> {
  const dir = scope.dir('kfetch-http-edges-');
  const p = makePayload(dir, 'f.bin', SIZE, 'edges');
  bytes = p.bytes!;
  const k = parseKascade(JSON.stringify(kascadeJsonFor(bytes, { filename: 'f.bin', tracker: 'http://127.0.0.1:9/x', blockSizes: [4096] })));
  id = k.filehash;
  const data = await openDataFileToSeed(join(dir, 'f.bin'), SIZE);
  scope.keep({ close: () => Promise.resolve(data.close()) });
  const library = new Library();
  library.add(new VerifiedServedFile(k, data, Bitfield.full(10), 4096));
  return scope.keep(await startBlockServer({ library, host: '127.0.0.1', port: 0, log: pino({ level: 'silent' }) }));
}

let server: BlockServer;

describe('block server HTTP edges (issue 10 point 17)', () => {
  it('a client that half-closes after sending its request still gets the whole reply', async () => {
    server = await serve();
    const c = await RawConnection.open(server.port);
    conns.push(c);
    c.send(requestBytes('GET', `/${id}`, { Range: 'bytes=4096-8191' }, server.port));
    c.socket.end(); // FIN: no more requests, the reply is still wanted
    const r = await c.readResponse();
    expect(r.status).toBe(206);
    expect(r.body.equals(bytes.subarray(4096, 8192))).toBe(true);
    expect(await c.waitClosed()).toBe(true); // and then the server closes its side too
  });

  it('1,100 headers with Range last: 431, never a whole-file 200', async () => {
    server = await serve();
    const headers: Record<string, string> = {};
    for (let i = 0; i < 1_099; i++) headers[`X-${i}`] = 'a';
    headers.Range = 'bytes=0-4095';
    const r = await rawRequest(server.port, requestBytes('GET', `/${id}`, headers, server.port));
    expect(r.status).toBe(431);
    // A request with a plain number of headers is still served.
    const few: Record<string, string> = { Range: 'bytes=0-4095' };
    for (let i = 0; i < 50; i++) few[`X-${i}`] = 'a';
    expect((await rawRequest(server.port, requestBytes('GET', `/${id}`, few, server.port))).status).toBe(206);
  });

  it('HTTP/1.0 without Host is served by a loopback seeder; a foreign Host is still refused', async () => {
    server = await serve();
    const r = await rawRequest(server.port, `GET /${id} HTTP/1.0\r\nRange: bytes=8192-12287\r\n\r\n`);
    expect(r.status).toBe(206);
    expect(r.body.equals(bytes.subarray(8192, 12288))).toBe(true);
    const foreign = await rawRequest(server.port, `GET /${id} HTTP/1.0\r\nHost: evil.example\r\nRange: bytes=0-4095\r\n\r\n`);
    expect(foreign.status).toBe(403);
    // HTTP/1.1 requires Host: node:http refuses it without one (400), before any of our code.
    expect((await rawRequest(server.port, `GET /${id} HTTP/1.1\r\nRange: bytes=0-4095\r\n\r\n`)).status).toBe(400);
  });
});
