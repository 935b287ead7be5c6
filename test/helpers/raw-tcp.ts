// Raw TCP servers on 127.0.0.1 for tests of what a client does with a peer that speaks nonsense: each answers every
// connection with the test's own function and counts connections. `closeRawTcp` (in afterEach) destroys every
// socket they accepted and closes them.

import { createServer, type Server, type Socket } from 'node:net';
import { freePort } from './system.js';

const servers: Server[] = [];
const sockets = new Set<Socket>();

/** A raw TCP server that answers every connection with `answer` (then leaves it open); counts connections. */
export async function rawServer(answer: (socket: Socket) => void): Promise<{ port: number; connections: () => number }> {
  let n = 0;
  const s = createServer((socket) => {
    n++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    answer(socket);
  });
  servers.push(s);
  await new Promise<void>((res) => s.listen(0, '127.0.0.1', () => res()));
  return { port: (s.address() as { port: number }).port, connections: () => n };
}

/** Destroy every socket the raw servers accepted and close the servers. */
export async function closeRawTcp(): Promise<void> {
  for (const s of sockets) s.destroy();
  sockets.clear();
  for (const s of servers.splice(0)) await new Promise<void>((res) => s.close(() => res()));
}

/**
 * Three wire ports a seeder could advertise that are no peer wire: one nothing listens on, one that answers like an
 * HTTP server, and one that sends a good hello and then a reply to request 1 whose length is not what was asked (a
 * bad frame). Each raw server counts its connections.
 */
export async function badWirePorts(): Promise<{
  closed: number;
  garbage: { port: number; connections: () => number };
  liar: { port: number; connections: () => number };
}> {
  const closed = await freePort();
  const garbage = await rawServer((sock) => sock.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
  const liar = await rawServer((sock) => {
    const hello = Buffer.from([...Buffer.from('KWIRE', 'latin1'), 1, 0, 0]);
    const reply = Buffer.alloc(16);
    reply.writeUInt32BE(1, 0);
    reply.writeBigUInt64BE(7n, 8);
    sock.write(Buffer.concat([hello, reply, Buffer.alloc(7)]));
  });
  return { closed, garbage, liar };
}
