// The announce client against real misbehaving trackers (test/helpers/adversarial-tracker.ts) and the real
// tracker: error codes, reply caps, peer filtering and interval clamping.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/limits.js';
import { announce, type AnnounceRequest } from '../../src/tracker/announce-client.js';
import type { RunningTracker } from '../../src/tracker/tracker-server.js';
import { startTestTracker } from '../helpers/tracker-store.js';
import { failure } from '../helpers/failure.js';
import { Bitfield } from '../../src/util/bitfield.js';
import { startAdversarialTracker, type AdversarialTracker, type TrackerMode } from '../helpers/adversarial-tracker.js';
import { within } from '../helpers/wait.js';

let adv: AdversarialTracker | undefined;
let real: RunningTracker | undefined;
afterEach(async () => {
  await adv?.close();
  await real?.close();
  adv = undefined;
  real = undefined;
});

async function against(mode: TrackerMode, extra: Partial<AnnounceRequest> = {}) {
  adv = await startAdversarialTracker(mode);
  return announce({ url: adv.url, port: 7001, progress: 0.25, ...extra });
}

describe('announce: request', () => {
  it('sends an urlencoded POST with the SPEC fields and no Accept-Encoding', async () => {
    const bf = new Bitfield(11);
    for (const i of [0, 1, 2, 9]) bf.set(i);
    const r = await against(
      { kind: 'body', body: '[]' },
      { progress: 1e-7, blocks: { blockSize: 4096, bitfield: bf }, event: 'started', peerId: 'c'.repeat(64), ip: '10.0.0.1' },
    );
    expect(r).toEqual({ peers: [], intervalMs: LIMITS.announceIntervalDefaultMs, dropped: 0 });
    const req = adv!.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(req.headers['accept-encoding']).toBeUndefined();
    expect(req.fields).toEqual({ port: '7001', progress: '0', blocks: 'e040', blocksize: '4096', event: 'started', id: 'c'.repeat(64), ip: '10.0.0.1' });
  });
});

describe('announce: bad trackers', () => {
  it.each<[string, TrackerMode, string]>([
    ['HTML', { kind: 'html' }, 'KF_E_TRACKER_RESPONSE'],
    ['empty 200', { kind: 'empty' }, 'KF_E_TRACKER_RESPONSE'],
    ['JSON object without peers', { kind: 'body', body: '{"hello": 1}' }, 'KF_E_TRACKER_RESPONSE'],
    ['gzip-encoded', { kind: 'body', body: '[]', headers: { 'content-encoding': 'gzip' } }, 'KF_E_TRACKER_RESPONSE'],
    ['302 redirect', { kind: 'redirect', location: 'http://127.0.0.1:1/peers/x.json' }, 'KF_E_TRACKER_REFUSED'],
    ['503', { kind: 'status', status: 503 }, 'KF_E_TRACKER_REFUSED'],
    ['404', { kind: 'status', status: 404, body: '<html>' }, 'KF_E_TRACKER_REFUSED'],
    ['failure reason', { kind: 'body', body: '{"failure reason": "go away"}' }, 'KF_E_TRACKER_REFUSED'],
  ])('%s -> %s', async (_name, mode, code) => {
    const e = await failure(against(mode));
    expect(e.code).toBe(code);
  });

  it('quotes the JSON error text of a refusal', async () => {
    const e = await failure(against({ kind: 'status', status: 400, body: JSON.stringify({ error: 'port is required', field: 'port' }) }));
    expect(e.message).toContain('port is required');
    expect(e.detail?.status).toBe(400);
  });

  it('does not follow a redirect', async () => {
    await failure(against({ kind: 'redirect', location: '/peers/other.json' }));
    expect(adv!.requests).toHaveLength(1);
  });

  it('stops reading an endless body at the reply cap', async () => {
    const before = process.memoryUsage().rss;
    // Both deadlines far past the 20 s bound: only the reply cap can end the request in time.
    const endless = against({ kind: 'endless' }, { timeouts: { idleMs: 60_000, totalMs: 60_000 } });
    const e = await failure(within(endless, 20_000, 'announce to an endless body'));
    expect(e.code).toBe('KF_E_TRACKER_RESPONSE');
    expect(e.message).toMatch(/cap/);
    // The reader holds at most the cap plus one entry, and reads on to trackerReplyReadMaxBytes (8 MiB): RSS, which
    // also counts garbage not yet collected, stays within a few times that.
    expect(process.memoryUsage().rss - before).toBeLessThan(4 * LIMITS.trackerReplyReadMaxBytes + 32 * 1024 * 1024);
  });

  it('refuses a reply over the cap that is not a JSON array', async () => {
    const e = await failure(against({ kind: 'body', body: JSON.stringify({ peers: [{ ip: '1.2.3.4', port: 1 }] }) }, { limits: { trackerReplyMaxBytes: 10 } }));
    expect(e.code).toBe('KF_E_TRACKER_RESPONSE');
    expect(e.message).toMatch(/over the cap/);
  });

  it('issue 10 point 11: keeps the honest peers of a reply over the cap, dropping only the oversized entries', async () => {
    const honest = (i: number) => ({ ip: `10.0.0.${i}`, port: 7000 + i, progress: 1, feeder: true, blocks: 'ff', blocksize: 4096 });
    // Two poisoned entries of 1.5 MiB bitfields around the honest ones: 3 MiB, three times the cap, Content-Length set.
    const poison = (i: number) => ({ ip: `10.9.9.${i}`, port: 1, progress: 1, blocks: 'ff'.repeat(768 * 1024), blocksize: 4096 });
    const body = JSON.stringify([honest(1), poison(1), honest(2), poison(2), honest(3)]);
    expect(body.length).toBeGreaterThan(3 * LIMITS.trackerReplyMaxBytes);
    const r = await against({ kind: 'body', body });
    expect(r.peers.map((p) => p.ip)).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    expect(r.peers[0]).toMatchObject({ blocks: 'ff', blocksize: 4096 });
    expect(r.dropped).toBe(2);
    expect(r.warning).toMatch(/over the 1048576-byte cap/);
  });

  it('times out a tracker that never answers (idle deadline)', async () => {
    // The total deadline is far past the 20 s bound: only the idle deadline can end the request in time.
    const hang = against({ kind: 'hang' }, { timeouts: { idleMs: 300, totalMs: 60_000 } });
    const e = await failure(within(hang, 20_000, 'announce to a silent tracker'));
    expect(e.code).toBe('KF_E_TRACKER_UNREACHABLE');
  });

  it('times out a slow trickle (total deadline)', async () => {
    // A byte every 50 ms keeps the 60 s idle deadline away: only the total deadline can end the request in time.
    const slow = against({ kind: 'slow', everyMs: 50 }, { timeouts: { idleMs: 60_000, totalMs: 400 } });
    const e = await failure(within(slow, 20_000, 'announce to a trickling tracker'));
    expect(e.code).toBe('KF_E_TRACKER_UNREACHABLE');
    expect(e.message).toMatch(/within 400 ms/);
  });

  it('reports a refused connection as unreachable', async () => {
    const s: Server = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const e = await failure(announce({ url: `http://127.0.0.1:${port}/peers/x.json`, port: 1, progress: 0 }));
    expect(e.code).toBe('KF_E_TRACKER_UNREACHABLE');
  });

  it('rethrows the caller abort as is', async () => {
    adv = await startAdversarialTracker({ kind: 'hang' });
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('shutdown')), 100);
    const err = await announce({ url: adv.url, port: 1, progress: 0, signal: ac.signal }).catch((e: unknown) => e);
    expect(err).toEqual(new Error('shutdown'));
  });
});

describe('announce: 403 backoff', () => {
  it.each<[string | undefined, number]>([
    ['120', 120_000],
    [undefined, LIMITS.trackerDefaultBackoffMs],
    ['soon', LIMITS.trackerDefaultBackoffMs],
    ['0', 1000],
    ['315360000', LIMITS.announceIntervalMaxMs],
  ])('Retry-After %s -> %d ms', async (retryAfter, want) => {
    const e = await failure(against({ kind: 'status', status: 403, ...(retryAfter === undefined ? {} : { retryAfter }) }));
    expect(e.code).toBe('KF_E_TRACKER_BACKOFF');
    expect(e.detail?.retryAfterMs).toBe(want);
  });

  it('takes an HTTP-date', async () => {
    const at = new Date(Date.now() + 90_000).toUTCString();
    const e = await failure(against({ kind: 'status', status: 403, retryAfter: at }));
    expect(e.detail?.retryAfterMs).toBeGreaterThan(85_000);
    expect(e.detail?.retryAfterMs).toBeLessThanOrEqual(90_000);
  });
});

describe('announce: peer lists', () => {
  it('takes at most peersPerReply of 10 000 peers', async () => {
    const r = await against({ kind: 'peers', count: 10_000 });
    expect(r.peers).toHaveLength(LIMITS.peersPerReply);
    expect(new Set(r.peers.map((p) => `${p.ip}:${p.port}`)).size).toBe(LIMITS.peersPerReply);
  });

  it('drops bad entries and counts them; loopback from a loopback tracker is fine', async () => {
    const r = await against({
      kind: 'entries',
      entries: [
        { ip: '10.0.0.1', port: 1, progress: 1 },
        { ip: '127.0.0.1', port: 2, progress: 1 },
        { ip: 'example.com', port: 3 },
        { ip: '0.0.0.0', port: 4 },
        { ip: '255.255.255.255', port: 5 },
        { ip: '239.1.1.1', port: 6 },
        { ip: '10.0.0.1', port: 0 },
        { ip: '10.0.0.1', port: 70000 },
        { ip: '10.0.0.1', port: 1.5 },
        { ip: '10.0.0.1', port: 1 },
        'garbage',
      ],
    });
    expect(r.peers.map((p) => `${p.ip}:${p.port}`)).toEqual(['10.0.0.1:1', '127.0.0.1:2']);
    expect(r.dropped).toBe(9);
  });

  it.each<[unknown, number]>([
    [0, LIMITS.announceIntervalDefaultMs],
    ['NaN', LIMITS.announceIntervalDefaultMs],
    [-1, LIMITS.announceIntervalDefaultMs],
    [1, LIMITS.announceIntervalMinMs],
    [600, 600_000],
    [10 * 365 * 86_400, LIMITS.announceIntervalMaxMs],
  ])('interval %j -> %d ms', async (interval, want) => {
    const r = await against({ kind: 'peers', count: 1, interval });
    expect(r.intervalMs).toBe(want);
  });
});

describe('announce: against the real tracker', () => {
  it('learns the tracker interval from X-Kascade-Interval', async () => {
    real = await startTestTracker({ intervalMs: 120_000 });
    const r = await announce({ url: `${real.url}/peers/${'ef'.repeat(32)}.json`, port: 5001, progress: 1 });
    expect(r.intervalMs).toBe(120_000);
  });

  it('round-trips peers, blocks and stopped', async () => {
    real = await startTestTracker({ minIntervalMs: 0 });
    const url = `${real.url}/peers/${'ef'.repeat(32)}.json`;
    const bf = Bitfield.full(9);
    await announce({ url, port: 5001, progress: 1, blocks: { blockSize: 4096, bitfield: bf } });
    const r = await announce({ url, port: 5002, progress: 0 });
    expect(r.peers).toEqual([
      { ip: '127.0.0.1', port: 5001, progress: 1, feeder: true, updated: expect.any(String), blocks: 'ff80', blocksize: 4096 },
    ]);
    expect(r.intervalMs).toBe(LIMITS.trackerIntervalMs);
    await announce({ url, port: 5001, progress: 1, event: 'stopped' });
    expect((await announce({ url, port: 5002, progress: 0 })).peers).toEqual([]);
  });
});
