// One UDP request/reply at a time on a bench lane's socket (bench/udp-tracker-quick.ts, bench/udp-tracker-workers.ts):
// send, wait up to 1 s for the reply, re-send a lost one; at most 30 tries, then throw (the tracker is gone).

import type { Socket as UdpSocket } from 'node:dgram';

/** An exchange function on `s` (bound) to 127.0.0.1:`port`; `lost()` is called for each datagram re-sent. */
export function udpExchange(s: UdpSocket, port: number): (d: Buffer, lost: () => void) => Promise<Buffer> {
  let waiting: ((b: Buffer) => void) | undefined;
  s.on('message', (m) => waiting?.(m));
  return async (d, lost) => {
    for (let tries = 0; tries < 30; tries++) {
      s.send(d, port, '127.0.0.1');
      const got = await new Promise<Buffer | undefined>((r) => {
        const t = setTimeout(() => r(undefined), 1000);
        waiting = (b) => {
          clearTimeout(t);
          r(b);
        };
      });
      if (got !== undefined) return got;
      lost();
    }
    throw new Error(`no UDP reply from 127.0.0.1:${port} in 30 tries`);
  };
}
