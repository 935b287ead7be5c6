// The UDP tracker end to end (issue 14 point 2): announceUdp against startUdpTracker on real loopback sockets, on
// the store the tests run on (memory, or Redis in the tracker-on-redis project), beside the HTTP tracker on the
// same store. A tiny relay in the test drops datagrams to show the client retransmits.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { announce } from '../../src/tracker/announce-client.js';
import { openPeerStore } from '../../src/tracker/open-peer-store.js';
import type { PeerStore } from '../../src/tracker/peer-store.js';
import { startTracker, storeLimits, trackerLimits, type RunningTracker } from '../../src/tracker/tracker-server.js';
import { announceUdp, closeUdpAnnounceSockets } from '../../src/tracker/udp-announce-client.js';
import { startUdpTracker, type RunningUdpTracker } from '../../src/tracker/udp-tracker.js';
import { testStoreSpec } from '../helpers/tracker-store.js';
import { failure } from '../helpers/failure.js';

const SWARM = 'ab'.repeat(32);
const started: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const s of started.splice(0).reverse()) await s.close();
});
afterAll(closeUdpAnnounceSockets);

async function world(limits: Parameters<typeof trackerLimits>[0] = {}): Promise<{ store: PeerStore; udp: RunningUdpTracker; http: RunningTracker }> {
  const l = trackerLimits({ minIntervalMs: 5_000, ...limits });
  const store = await openPeerStore(testStoreSpec(), storeLimits(l));
  started.push(store);
  const http = await startTracker({ store, ...limits });
  started.push(http);
  const udp = await startUdpTracker({ store, ...limits });
  started.push(udp);
  return { store, udp, http };
}

const url = (base: string, swarm = SWARM): string => `${base}/peers/${swarm}.json`;

/** A loopback relay in front of `target`: drops the first `drop` datagrams from the client, forwards the rest both ways. */
async function lossyRelay(target: number, drop: number): Promise<{ port: number; dropped: () => number; forwarded: () => number; close(): Promise<void> }> {
  const bind = (s: Socket): Promise<void> => new Promise((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  const front = createSocket('udp4');
  const back = createSocket('udp4');
  await bind(front);
  await bind(back);
  let client: RemoteInfo | undefined;
  let dropped = 0;
  let forwarded = 0;
  front.on('message', (m, r) => {
    client = r;
    if (dropped < drop) return void dropped++;
    forwarded++;
    back.send(m, target, '127.0.0.1');
  });
  back.on('message', (m) => {
    if (client !== undefined) front.send(m, client.port, client.address);
  });
  const close = async (): Promise<void> => {
    await new Promise<void>((r) => front.close(() => r()));
    await new Promise<void>((r) => back.close(() => r()));
  };
  return { port: front.address().port, dropped: () => dropped, forwarded: () => forwarded, close };
}

describe('udp tracker: announceUdp end to end', () => {
  it('two peers see each other, a list-only caller sees both, stopped removes', async () => {
    const { udp } = await world();
    const a = await announceUdp({ url: url(udp.url), port: 7101, progress: 1, event: 'started' });
    expect(a.peers).toEqual([]);
    const b = await announceUdp({ url: url(udp.url), port: 7102, progress: 0.25 });
    expect(b.peers).toEqual([{ ip: '127.0.0.1', port: 7101, progress: 1, feeder: true }]);
    expect(b.intervalMs).toBe(60_000);
    const all = await announceUdp({ url: url(udp.url), port: 0, progress: 0 });
    expect(all.peers.map((p) => p.port).sort()).toEqual([7101, 7102]);
    expect(all.peers.find((p) => p.port === 7102)?.progress).toBe(0.25);

    await announceUdp({ url: url(udp.url), port: 7101, progress: 1, event: 'stopped' });
    const after = await announceUdp({ url: url(udp.url), port: 0, progress: 0 });
    expect(after.peers.map((p) => p.port)).toEqual([7102]);
    const s = udp.stats();
    expect(s.answers).toMatchObject({ announced: 2, listed: 2, stopped: 1 });
    expect(s.connects).toBe(1); // the connection id is cached between announces
    expect(s.malformed).toBe(0);
  });

  it('a repeat of the same state within the minimum gap gets a back-off (KF_E_TRACKER_BACKOFF, Retry-After)', async () => {
    const { udp } = await world();
    await announceUdp({ url: url(udp.url), port: 7103, progress: 0.5 });
    const err = await failure(announceUdp({ url: url(udp.url), port: 7103, progress: 0.5 }));
    expect(err.code).toBe('KF_E_TRACKER_BACKOFF');
    expect(err.detail?.retryAfterMs).toBeGreaterThanOrEqual(1000);
    expect(err.detail?.retryAfterMs).toBeLessThanOrEqual(5000);
    expect(udp.stats().answers.tooSoon).toBe(1);
  });

  it('HTTP and UDP announces land in the one store: each side lists the other', async () => {
    const { udp, http } = await world();
    await announceUdp({ url: url(udp.url), port: 7104, progress: 0.1 });
    const viaHttp = await announce({ url: url(http.url), port: 7105, progress: 0.2 });
    expect(viaHttp.peers.map((p) => p.port)).toEqual([7104]);
    const viaUdp = await announceUdp({ url: url(udp.url), port: 0, progress: 0 });
    expect(viaUdp.peers.map((p) => p.port).sort()).toEqual([7104, 7105]);
  });

  it('works over IPv6 (::1): the peer is listed under its v6 source address', async () => {
    const l = trackerLimits({ minIntervalMs: 5_000 });
    const store = await openPeerStore(testStoreSpec(), storeLimits(l));
    started.push(store);
    const udp6 = await startUdpTracker({ store, host: '::1' });
    started.push(udp6);
    expect(udp6.url).toMatch(/^udp:\/\/\[::1\]:\d+$/);
    await announceUdp({ url: url(udp6.url), port: 7110, progress: 1 });
    const r = await announceUdp({ url: url(udp6.url), port: 0, progress: 0 });
    expect(r.peers).toEqual([{ ip: '::1', port: 7110, progress: 1, feeder: true }]);
  });

  it('a lost connect datagram is retransmitted and the announce succeeds', async () => {
    const { udp } = await world();
    const relay = await lossyRelay(udp.port, 1);
    started.push(relay);
    const r = await announceUdp({ url: url(`udp://127.0.0.1:${relay.port}`), port: 7106, progress: 0.3 }, { firstTimeoutMs: 200 });
    expect(r.peers).toEqual([]);
    expect(relay.dropped()).toBe(1);
    expect(udp.stats().connects).toBe(1);
    expect(udp.stats().answers.announced).toBe(1);
  });

  it('a tracker that never answers fails with KF_E_TRACKER_UNREACHABLE after the tries', async () => {
    const { udp } = await world();
    const relay = await lossyRelay(udp.port, 1_000);
    started.push(relay);
    const err = await failure(announceUdp({ url: url(`udp://127.0.0.1:${relay.port}`), port: 7107, progress: 0 }, { firstTimeoutMs: 20, tries: 3 }));
    expect(err.code).toBe('KF_E_TRACKER_UNREACHABLE');
    expect(relay.dropped()).toBe(3);
  });

  it('honours the AbortSignal and the total deadline', async () => {
    const { udp } = await world();
    const relay = await lossyRelay(udp.port, 1_000);
    started.push(relay);
    const ac = new AbortController();
    const p = announceUdp({ url: url(`udp://127.0.0.1:${relay.port}`), port: 7108, progress: 0, signal: ac.signal });
    ac.abort(new Error('stop now'));
    await expect(p).rejects.toThrow('stop now');
    const err = await failure(announceUdp({ url: url(`udp://127.0.0.1:${relay.port}`), port: 7108, progress: 0, timeouts: { totalMs: 150 } }));
    expect(err.code).toBe('KF_E_TRACKER_UNREACHABLE');
  });

  it('refuses a URL that is not udp://HOST:PORT/peers/<id>.json, or names an address the dial policy refuses', async () => {
    for (const bad of ['http://127.0.0.1:1/peers/ab.json', 'udp://127.0.0.1/peers/' + SWARM + '.json', 'udp://127.0.0.1:9/x', `udp://127.0.0.1:9/peers/${'a'.repeat(33)}.json`]) {
      expect((await failure(announceUdp({ url: bad, port: 1, progress: 0 }))).code).toBe('KF_E_INPUT');
    }
    for (const host of ['169.254.169.254', '0.0.0.0', '[fe80::1]', '224.0.0.1']) {
      expect((await failure(announceUdp({ url: url(`udp://${host}:6969`), port: 1, progress: 0 }))).code).toBe('KF_E_TRACKER_UNREACHABLE');
    }
  });
});
