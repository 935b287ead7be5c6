// announceUdp against a misbehaving UDP tracker written here with raw datagrams (issue 14 point 2): the reply's
// peers pass the HTTP client's address policy (parse-reply.ts PeerCollector), replies from another port or with
// another transaction id are ignored, only-malformed replies are KF_E_TRACKER_RESPONSE, and a tracker that keeps
// refusing the connection id is not reconnected to forever.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { announceUdp, closeUdpAnnounceSockets } from '../../src/tracker/udp-announce-client.js';
import { decodeRequest, encodeAnnounceReply, encodeConnectReply, encodeReconnectReply } from '../../src/tracker/udp-wire.js';
import { failure } from '../helpers/failure.js';

const SWARM = '12'.repeat(32);
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});
afterAll(closeUdpAnnounceSockets);

async function bound(): Promise<Socket> {
  const s = createSocket('udp4');
  sockets.push(s);
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

/** A tracker that answers connects properly and announces with `answer(transactionId, from, socket)`. */
async function fakeTracker(answer: (tx: number, from: RemoteInfo, s: Socket) => void): Promise<{ url: string; announces: () => number; connects: () => number }> {
  const s = await bound();
  let announces = 0;
  let connects = 0;
  s.on('message', (m, from) => {
    const r = decodeRequest(m);
    if (!r.ok) return;
    if (r.value.action === 'connect') {
      connects++;
      return void s.send(encodeConnectReply(r.value.transactionId, Buffer.alloc(8, 1)), from.port, from.address);
    }
    announces++;
    answer(r.value.transactionId, from, s);
  });
  return { url: `udp://127.0.0.1:${s.address().port}/peers/${SWARM}.json`, announces: () => announces, connects: () => connects };
}

describe('announceUdp against a misbehaving tracker', () => {
  it('drops refused addresses, port 0 and repeats, as the HTTP client does; clamps the interval', async () => {
    const t = await fakeTracker((tx, from, s) => {
      const peers = [
        { ip: '0.0.0.0', port: 1, progress: 0, feeder: false },
        { ip: '169.254.169.254', port: 80, progress: 0, feeder: false },
        { ip: '224.0.0.1', port: 5, progress: 0, feeder: false },
        { ip: 'fe80::1', port: 5, progress: 0, feeder: false },
        { ip: '127.0.0.1', port: 0, progress: 0, feeder: false },
        { ip: '127.0.0.1', port: 7000, progress: 0.5, feeder: true },
        { ip: '127.0.0.1', port: 7000, progress: 0.5, feeder: true },
        { ip: '::ffff:10.0.0.9', port: 7001, progress: 1, feeder: false },
      ];
      s.send(encodeAnnounceReply(tx, 1, peers).datagram, from.port, from.address);
    });
    const r = await announceUdp({ url: t.url, port: 1, progress: 0 });
    expect(r.peers).toEqual([
      { ip: '127.0.0.1', port: 7000, progress: 0.5, feeder: true },
      { ip: '10.0.0.9', port: 7001, progress: 1, feeder: false },
    ]);
    expect(r.dropped).toBe(6);
    expect(r.intervalMs).toBe(30_000); // 1 s clamped to LIMITS.announceIntervalMinMs
  });

  it('ignores a reply from another port and one with another transaction id, then takes the real one', async () => {
    const other = await bound();
    const t = await fakeTracker((tx, from, s) => {
      const good = encodeAnnounceReply(tx, 60, [{ ip: '10.0.0.1', port: 1, progress: 0, feeder: false }]).datagram;
      other.send(encodeAnnounceReply(tx, 60, [{ ip: '10.6.6.6', port: 6, progress: 0, feeder: false }]).datagram, from.port, from.address);
      s.send(encodeAnnounceReply((tx + 1) >>> 0, 60, [{ ip: '10.7.7.7', port: 7, progress: 0, feeder: false }]).datagram, from.port, from.address);
      setTimeout(() => s.send(good, from.port, from.address), 50);
    });
    const r = await announceUdp({ url: t.url, port: 1, progress: 0 });
    expect(r.peers.map((p) => p.ip)).toEqual(['10.0.0.1']);
  });

  it('only malformed replies: KF_E_TRACKER_RESPONSE after the tries', async () => {
    const t = await fakeTracker((tx, from, s) => {
      const d = encodeAnnounceReply(tx, 60, [{ ip: '10.0.0.1', port: 1, progress: 0, feeder: false }]).datagram;
      d.writeUInt16BE(9, 12); // the count lies
      s.send(d, from.port, from.address);
    });
    const err = await failure(announceUdp({ url: t.url, port: 1, progress: 0 }, { firstTimeoutMs: 20, tries: 2 }));
    expect(err.code).toBe('KF_E_TRACKER_RESPONSE');
    expect(t.announces()).toBe(2);
  });

  it('a tracker that refuses every connection id is reconnected to once, then KF_E_TRACKER_REFUSED', async () => {
    const t = await fakeTracker((tx, from, s) => s.send(encodeReconnectReply(tx), from.port, from.address));
    const err = await failure(announceUdp({ url: t.url, port: 1, progress: 0 }));
    expect(err.code).toBe('KF_E_TRACKER_REFUSED');
    expect(t.connects()).toBe(2);
    expect(t.announces()).toBe(2);
  });
});
