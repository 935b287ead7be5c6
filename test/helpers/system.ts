// Small facts of this machine that tests ask for: a loopback port that was free a moment ago (bound, then closed:
// connecting to it is refused until someone binds it), and whether a process still lives.

import { createServer } from 'node:net';

/** A loopback port that was bound and closed just now. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = s.address() as { port: number };
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Whether process `pid` exists (signal 0). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
