// Review of issue 11's in-place receive (range-client.ts): bytes a peer sends past a Content-Length body.
// Before the in-place reads, a body and the bytes after it arriving together ended the exchange as "done, not
// reused" (response-parser.ts: "the verdict never depends on where the bytes were split"). With the read window
// cut to exactly the bytes still wanted, the trailing bytes always come in a later read; when the connection was
// handed to a waiting request in between (microtasks run between two reads of one libuv read loop), they are read
// as the head of that request's answer.

import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { KfetchError } from '../../src/errors.js';
import { RangeClient } from '../../src/peer/range-client.js';
import { within } from '../helpers/wait.js';

const servers: Server[] = [];
const sockets = new Set<Socket>();
afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

const body = Buffer.from('0123456789abcdef');
const head = 'HTTP/1.1 206 Partial Content\r\nContent-Length: 16\r\nContent-Range: bytes 0-15/100\r\n\r\n';

it('bytes past a Content-Length body end that exchange; the next request still gets its own answer', async () => {
  let n = 0;
  let conns = 0;
  const srv = createServer((s) => {
    conns++;
    sockets.add(s);
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (let e = buf.indexOf('\r\n\r\n'); e !== -1; e = buf.indexOf('\r\n\r\n')) {
        buf = buf.slice(e + 4);
        if (n++ === 0) {
          // The head alone, then (a separate read for the client) the body and 4 bytes nobody asked for, in one write.
          s.write(head);
          setTimeout(() => s.write(Buffer.concat([body, Buffer.from('JUNK')])), 50);
        } else {
          s.write(head + body.toString('latin1'));
        }
      }
    });
    s.on('error', () => undefined);
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = `127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const c = new RangeClient({ connectionsPerPeer: 1 });
  const code = (p: Promise<void>): Promise<string> => p.then(() => 'ok', (e: unknown) => (e instanceof KfetchError ? `${e.code}: ${e.message}` : String(e)));
  const a = code(c.fetchRange(addr, 'ab', 0, 15, Buffer.alloc(16), AbortSignal.timeout(10_000)));
  const intoB = Buffer.alloc(16);
  const b = code(c.fetchRange(addr, 'ab', 0, 15, intoB, AbortSignal.timeout(10_000)));
  expect(await within(a, 15_000, 'the first fetch')).toBe('ok');
  // Before in-place reads: the first exchange ended "done, not reused" and b went out on a new connection.
  expect(await within(b, 15_000, 'the second fetch')).toBe('ok');
  expect(intoB.equals(body)).toBe(true);
  expect(conns).toBe(2);
  await c.close();
});
