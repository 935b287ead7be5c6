// Raw TCP servers on 127.0.0.1 for tests of what a client does with a peer that speaks nonsense: each answers every
// connection with the test's own function and counts connections. `closeRawTcp` (in afterEach) destroys every
// socket they accepted and closes them.

import { createServer, type Server, type Socket } from 'node:net';

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
