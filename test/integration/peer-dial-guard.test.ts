// Issue 10 point 15: the address policy asserted at every dial (range client, /blocks client, announce client),
// whatever the address's source. The refused address is 0.0.0.0 (or a name that resolves to it), which Linux
// dials as this host: a guard that let it through would hit the loopback listener here, so the test goes red
// without ever leaving 127.0.0.0/8. A listener on the same port takes an allowed dial first, as the control.

import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { KfetchError } from '../../src/errors.js';
import { BlockClient } from '../../src/peer/block-client.js';
import { RangeClient } from '../../src/peer/range-client.js';
import { announce } from '../../src/tracker/announce-client.js';
import { testScope } from '../helpers/test-scope.js';

const scope = testScope();

/** A loopback listener that counts connections and answers each request with a 206 of `body`. */
async function listener(body: Buffer): Promise<{ port: number; connections: () => number }> {
  let conns = 0;
  const sockets = new Set<Socket>();
  const srv: Server = createServer((s) => {
    conns++;
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('data', () => {
      s.write(`HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-${body.length - 1}/${body.length}\r\nContent-Length: ${body.length}\r\n\r\n`);
      s.write(body);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  scope.keep({
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => srv.close(() => r()));
    },
  });
  return { port: (srv.address() as AddressInfo).port, connections: () => conns };
}

async function codeOf(p: Promise<unknown>): Promise<KfetchError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KfetchError);
  return err as KfetchError;
}

describe('dial guard (issue 10 point 15)', () => {
  it('the range client refuses 0.0.0.0 and a name resolving to it, and still dials loopback', async () => {
    const l = await listener(Buffer.from('abcd'));
    const client = scope.keep(new RangeClient({ connectTimeoutMs: 2000 }));
    const into = Buffer.alloc(4);
    await client.fetchRange(`127.0.0.1:${l.port}`, 'ab'.repeat(32), 0, 3, into, AbortSignal.timeout(5000));
    expect(into.toString()).toBe('abcd');
    expect(l.connections()).toBe(1);

    const literal = await codeOf(client.fetchRange(`0.0.0.0:${l.port}`, 'ab'.repeat(32), 0, 3, into, AbortSignal.timeout(5000)));
    expect(literal.code).toBe('KF_E_PEER_CONNECT');
    expect(literal.message).toMatch(/0\.0\.0\.0 is the unspecified address .*address policy refuses to dial it/);
    const named = await codeOf(client.fetchRange(`0:${l.port}`, 'ab'.repeat(32), 0, 3, into, AbortSignal.timeout(5000)));
    expect(named.code).toBe('KF_E_PEER_CONNECT');
    expect(named.message).toMatch(/resolves only to addresses the address policy refuses \(0\.0\.0\.0\)/);
    expect(l.connections()).toBe(1);
  });

  it('the /blocks client refuses 0.0.0.0 and a name resolving to it', async () => {
    const l = await listener(Buffer.from('ff'));
    const client = scope.keep(new BlockClient({ connectionsPerPeer: 1, connectTimeoutMs: 2000 }));
    for (const peer of [`0.0.0.0:${l.port}`, `0:${l.port}`]) {
      const err = await codeOf(client.fetchBitfield(peer, 'ab'.repeat(32), 1024, 8, AbortSignal.timeout(5000)));
      expect(err.code, peer).toBe('KF_E_PEER_CONNECT');
      expect(err.message, peer).toMatch(/address policy refuses/);
    }
    expect(l.connections()).toBe(0);
  });

  it('the announce client refuses a tracker URL on 0.0.0.0 or a name resolving to it', async () => {
    const l = await listener(Buffer.from('[]'));
    for (const host of ['0.0.0.0', '0']) {
      const err = await codeOf(announce({ url: `http://${host}:${l.port}/peers/x.json`, port: 1, progress: 0, timeouts: { totalMs: 5000 } }));
      expect(err.code, host).toBe('KF_E_TRACKER_UNREACHABLE');
      expect(err.message, host).toMatch(/address policy refuses/);
    }
    expect(l.connections()).toBe(0);
  });
});
