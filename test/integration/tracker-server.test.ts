// The tracker we ship, over real HTTP on 127.0.0.1: both body encodings, PUT, caller exclusion, random
// subsets, expiry, stopped, 403 + Retry-After, body cap with flat memory, 404/405, JSON errors. These requests
// say `User-Agent: kfetch/…` (the JSON error shape is for kfetch clients only; original clients are covered by
// tracker-original-clients.test.ts).
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningTracker } from '../../src/tracker/tracker-server.js';
import { startTestTracker } from '../helpers/tracker-store.js';
import { VERSION } from '../../src/version.js';
import { until } from '../helpers/wait.js';

const H = 'ab'.repeat(32);
/** The header that makes the tracker treat a request as kfetch's (refusal-reply.ts). */
const KF = { 'user-agent': `kfetch/${VERSION}` };
let tracker: RunningTracker | undefined;

afterEach(async () => {
  await tracker?.close();
  tracker = undefined;
});

async function start(opts: Parameters<typeof startTestTracker>[0] = {}): Promise<RunningTracker> {
  tracker = await startTestTracker({ minIntervalMs: 0, ...opts });
  return tracker;
}

function post(url: string, fields: Record<string, string>, method = 'POST'): Promise<Response> {
  return fetch(url, { method, headers: KF, body: new URLSearchParams(fields), signal: AbortSignal.timeout(10_000) });
}

interface Peer {
  ip: string;
  port: number;
  progress: number;
  updated: string;
  feeder: boolean;
  blocks?: string;
  blocksize?: number;
}

describe('tracker server: announces', () => {
  it('registers with urlencoded POST and lists the peer to others, never the caller', async () => {
    const t = await start();
    const url = `${t.url}/peers/${H}.json`;
    const r1 = await post(url, { port: '8001', progress: '0.5', blocks: 'e040', blocksize: '4096' });
    expect(r1.status).toBe(200);
    expect(r1.headers.get('content-type')).toBe('application/json');
    expect(r1.headers.get('server')).toBe(`kfetch/${VERSION}`);
    expect(await r1.json()).toEqual([]);

    const r2 = await post(url, { port: '8002', progress: '1.0' });
    const peers = (await r2.json()) as Peer[];
    expect(peers).toHaveLength(1);
    const p = peers[0]!;
    expect(p).toMatchObject({ ip: '127.0.0.1', port: 8001, progress: 0.5, feeder: false, blocks: 'e040', blocksize: 4096 });
    expect(new Date(p.updated).toISOString()).toBe(p.updated);
    expect(p.updated.endsWith('Z')).toBe(true);

    const r3 = await post(url, { port: '8001', progress: '0.6' });
    expect(((await r3.json()) as Peer[]).map((x) => x.port)).toEqual([8002]);
  });

  it('accepts multipart/form-data and PUT, and an uppercase swarm id', async () => {
    const t = await start();
    const form = new FormData();
    form.set('port', '9001');
    form.set('progress', '0');
    const r1 = await fetch(`${t.url}/peers/${H.toUpperCase()}.json`, { method: 'POST', headers: KF, body: form });
    expect(r1.status).toBe(200);
    const r2 = await post(`${t.url}/peers/${H}.json`, { port: '9002', progress: '0' }, 'PUT');
    expect(r2.status).toBe(200);
    expect(await r2.json()).toMatchObject([{ ip: '127.0.0.1', port: 9001 }]);
  });

  /** POST `fields` from the loopback address `local` (127.0.0.0/8 is all loopback on Linux); resolves with the JSON body. */
  function postFrom(local: string, url: string, fields: Record<string, string>): Promise<{ status: number; body: unknown }> {
    return new Promise((resolve, reject) => {
      const body = new URLSearchParams(fields).toString();
      const req = httpRequest(url, { method: 'POST', localAddress: local, headers: { ...KF, 'content-type': 'application/x-www-form-urlencoded' }, timeout: 10_000 }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
      });
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end(body);
    });
  }

  it('lists a caller under its source address: an `ip` naming another address is ignored unless sent by a trusted proxy', async () => {
    const t = await start();
    const url = `${t.url}/peers/${H}.json`;
    // 127.0.0.5 tries to list (and vouch for, progress 1) an address it does not own.
    await postFrom('127.0.0.5', url, { port: '22', progress: '1', ip: '127.0.0.77' });
    // 127.0.0.8 is a real seeder; 127.0.0.6 tries to stop it and then to demote it.
    await postFrom('127.0.0.8', url, { port: '7001', progress: '1' });
    await postFrom('127.0.0.6', url, { port: '7001', progress: '0', event: 'stopped', ip: '127.0.0.8' });
    await postFrom('127.0.0.6', url, { port: '7001', progress: '0', ip: '127.0.0.8' });
    const seen = (await postFrom('127.0.0.9', url, { port: '1', progress: '0' })).body as Peer[];
    const byKey = new Map(seen.map((p) => [`${p.ip}:${p.port}`, p]));
    expect(byKey.has('127.0.0.77:22')).toBe(false);
    expect(byKey.get('127.0.0.5:22')).toMatchObject({ progress: 1, feeder: true });
    expect(byKey.get('127.0.0.8:7001')).toMatchObject({ progress: 1, feeder: true }); // neither stopped nor demoted
    expect(byKey.get('127.0.0.6:7001')).toMatchObject({ progress: 0 }); // its own record, under its own address
  });

  it('honours `ip` from a --trust-proxy address (announce and stop)', async () => {
    const t = await start({ trustProxy: ['127.0.0.6'] });
    const url = `${t.url}/peers/${H}.json`;
    await postFrom('127.0.0.6', url, { port: '7001', progress: '1', ip: '127.0.0.8' });
    let seen = (await postFrom('127.0.0.9', url, { port: '1', progress: '0' })).body as Peer[];
    expect(seen.map((p) => `${p.ip}:${p.port}`)).toEqual(['127.0.0.8:7001']);
    await postFrom('127.0.0.6', url, { port: '7001', progress: '1', event: 'stopped', ip: '127.0.0.8' });
    seen = (await postFrom('127.0.0.10', url, { port: '1', progress: '0' })).body as Peer[];
    expect(seen.map((p) => `${p.ip}:${p.port}`)).toEqual(['127.0.0.9:1']);
  });

  it('port 0 (a caller that accepts no connections, get --no-serve) is sent the peers and never listed', async () => {
    const t = await start();
    const url = `${t.url}/peers/${H}.json`;
    await post(url, { port: '7001', progress: '1' });
    for (let i = 0; i < 3; i++) {
      const r = await post(url, { port: '0', progress: '0' }); // repeats are not "too soon": nothing is recorded
      expect(r.status).toBe(200);
      expect(((await r.json()) as Peer[]).map((p) => p.port)).toEqual([7001]);
    }
    expect(await t.stats()).toMatchObject({ swarms: 1, peers: 1, bitfieldBytes: 0 });
  });

  it('accepts a 2014 trackhash (32 hex) as swarm id', async () => {
    const t = await start();
    const r = await post(`${t.url}/peers/${'c'.repeat(32)}.json`, { port: '1', progress: '0' });
    expect(r.status).toBe(200);
  });

  it('answers at most 50 of 80 peers, a different random subset each time', async () => {
    const t = await start({ maxPeersPerAddress: 1_000 }); // all from 127.0.0.1 here
    const url = `${t.url}/peers/${H}.json`;
    for (let i = 0; i < 80; i++) expect((await post(url, { port: String(10_000 + i), progress: '1' })).status).toBe(200);
    const replies: number[][] = [];
    for (let k = 0; k < 3; k++) {
      const r = await post(url, { port: String(20_000 + k), progress: '0' });
      const peers = (await r.json()) as Peer[];
      expect(peers).toHaveLength(50);
      expect(new Set(peers.map((p) => `${p.ip}:${p.port}`)).size).toBe(50);
      replies.push(peers.map((p) => p.port).filter((p) => p >= 10_000 && p < 10_080).sort());
    }
    expect(replies[0]).not.toEqual(replies[1]);
    expect(await t.stats()).toMatchObject({ swarms: 1, peers: 83, bitfieldBytes: 0 });
  });

  it('drops peers after the expiry time', async () => {
    const EXPIRY = 3_000; // long enough that the second announce comes well within it on a loaded machine
    const t = await start({ intervalMs: 100, expiryMs: EXPIRY });
    const url = `${t.url}/peers/${H}.json`;
    const t0 = performance.now(); // before the first announce is recorded, so elapsed below never overstates
    await post(url, { port: '1', progress: '0' });
    expect(await (await post(url, { port: '2', progress: '0' })).json()).toHaveLength(1);
    // Port 2 keeps announcing (staying fresh) until port 1 is no longer listed, which must not be before the expiry.
    await until(async () => ((await (await post(url, { port: '2', progress: '0' })).json()) as Peer[]).length === 0, 20_000, 'port 1 expired');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(EXPIRY);
    // The sweeper (every expiry/2) also frees the memory of the expired peers, port 2 once it too is stale.
    await until(async () => (await t.stats()).peers === 0, 20_000, 'expired peers swept');
  });

  it('event=stopped removes the caller', async () => {
    const t = await start();
    const url = `${t.url}/peers/${H}.json`;
    await post(url, { port: '1', progress: '0' });
    const stop = await post(url, { port: '1', progress: '0', event: 'stopped' });
    expect(stop.status).toBe(200);
    expect(await (await post(url, { port: '2', progress: '0' })).json()).toEqual([]);
  });

  it('answers a too-soon repeat of the same state with 403 + Retry-After, but hears a change and always accepts stopped', async () => {
    const t = await start({ minIntervalMs: 5000 });
    const url = `${t.url}/peers/${H}.json`;
    expect((await post(url, { port: '1', progress: '0' })).status).toBe(200);
    const again = await post(url, { port: '1', progress: '0' });
    expect(again.status).toBe(403);
    expect(Number(again.headers.get('retry-after'))).toBeGreaterThanOrEqual(4);
    expect(Number(again.headers.get('retry-after'))).toBeLessThanOrEqual(5);
    expect(((await again.json()) as { error: string }).error).toMatch(/too soon/);
    // A change of progress (issue 9: the original Python peer says 1.0 a second after 0.0) is heard at once…
    expect((await post(url, { port: '1', progress: '0.1' })).status).toBe(200);
    // …and its repeat is refused again.
    expect((await post(url, { port: '1', progress: '0.1' })).status).toBe(403);
    // Another port on the same address is another peer.
    expect((await post(url, { port: '2', progress: '0' })).status).toBe(200);
    expect((await post(url, { port: '1', progress: '0', event: 'stopped' })).status).toBe(200);
    expect((await t.stats()).peers).toBe(1);
  });
});

describe('tracker server: bad requests', () => {
  it.each([
    [{ progress: '0.5' }, 'port'],
    [{ port: '70000', progress: '0.5' }, 'port'],
    [{ port: '80', progress: 'x' }, 'progress'],
    [{ port: '80', progress: '1.5' }, 'progress'],
    [{ port: '80', progress: '1', blocks: 'abc', blocksize: '4096' }, 'blocks'],
    [{ port: '80', progress: '1', blocks: 'zz', blocksize: '4096' }, 'blocks'],
    [{ port: '80', progress: '1', blocks: 'ff' }, 'blocksize'],
    [{ port: '80', progress: '1', id: 'abc' }, 'id'],
    [{ port: '80', progress: '1', ip: 'evil.example' }, 'ip'],
  ])('%j -> 400 field %s', async (fields, field) => {
    const t = await start();
    const r = await post(`${t.url}/peers/${H}.json`, fields as Record<string, string>);
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(await r.json()).toMatchObject({ field });
  });

  it('404 for other paths, 405 for other methods, 415 for other bodies, all JSON', async () => {
    const t = await start();
    for (const path of ['/', '/peers/', `/peers/${H}`, `/peers/${H}.json/x`, '/peers/xyz.json', `/peers/${'a'.repeat(130)}.json`, `/${H}`]) {
      const r = await fetch(`${t.url}${path}`, { method: 'POST', headers: KF, body: 'port=1&progress=0' });
      expect(r.status, path).toBe(404);
      expect(await r.json()).toHaveProperty('error');
    }
    // GET is an announce since issue 9 (without fields it is a 400 naming port).
    const get = await fetch(`${t.url}/peers/${H}.json`, { headers: KF });
    expect(get.status).toBe(400);
    expect(await get.json()).toMatchObject({ field: 'port' });
    for (const method of ['DELETE', 'PATCH']) {
      const r = await fetch(`${t.url}/peers/${H}.json`, { method, headers: KF });
      expect(r.status).toBe(405);
      expect(r.headers.get('allow')).toBe('GET, POST, PUT');
      expect(await r.json()).toHaveProperty('error');
    }
    const r = await fetch(`${t.url}/peers/${H}.json`, { method: 'POST', headers: { ...KF, 'content-type': 'application/json' }, body: '{}' });
    expect(r.status).toBe(415);
    expect(await r.json()).toHaveProperty('error');
  });

  it.each([
    ['garbage request line', 'HELLO\r\n\r\n', 400],
    ['64 KiB header', `POST /peers/${H}.json HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`, 431],
  ])('answers a %s from a raw socket with %d, an empty array (any client may be an original) and the reason', async (_name, raw, want) => {
    const t = await start();
    const reply = await new Promise<string>((resolve, reject) => {
      const s = connect(t.port, '127.0.0.1', () => s.end(raw));
      let got = '';
      s.setEncoding('utf8').on('data', (d: string) => (got += d));
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
      s.setTimeout(5000, () => reject(new Error('no answer')));
    });
    expect(reply.startsWith(`HTTP/1.1 ${want} `)).toBe(true);
    expect(reply).toMatch(/content-type: application\/json/i);
    expect(reply).toMatch(/x-kascade-error: (bad HTTP request|request headers too large)/i);
    expect(JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4))).toEqual([]);
  });

  it('refuses a multipart file part and a broken multipart body with 400', async () => {
    const t = await start();
    const form = new FormData();
    form.set('port', '1');
    form.set('progress', '0');
    form.set('blocks', new Blob(['ff']), 'b.txt');
    const r1 = await fetch(`${t.url}/peers/${H}.json`, { method: 'POST', headers: KF, body: form });
    expect(r1.status).toBe(400);
    const r2 = await fetch(`${t.url}/peers/${H}.json`, {
      method: 'POST',
      headers: { ...KF, 'content-type': 'multipart/form-data' },
      body: 'x',
    });
    expect(r2.status).toBe(400);
  });

  it('answers a declared 10 MB body with 413 without reading it', async () => {
    const t = await start();
    const r = await fetch(`${t.url}/peers/${H}.json`, {
      method: 'POST',
      headers: { ...KF, 'content-type': 'application/x-www-form-urlencoded' },
      body: Buffer.alloc(10 * 1024 * 1024, 0x61),
    }).catch((err: unknown) => err);
    // The server may close before the client finished sending; either way nothing was stored.
    if (r instanceof Response) {
      expect(r.status).toBe(413);
      expect(await r.json()).toHaveProperty('error');
    }
    expect((await t.stats()).peers).toBe(0);
  });

  it.each(['application/x-www-form-urlencoded', 'multipart/form-data; boundary=xyz'])(
    'stops a streamed (chunked) 10 MB %s body at the cap with 413, memory flat',
    async (type) => {
      const t = await start();
      const before = process.memoryUsage().rss;
      const { status, body, sent } = await streamBody(`${t.url}/peers/${H}.json`, type, 10 * 1024 * 1024);
      expect(status).toBe(413);
      expect(JSON.parse(body)).toHaveProperty('error');
      // The client could push all of it (drained after the 413, never stored) or was cut off; nothing was kept.
      expect(sent).toBeGreaterThan(2 * 1024 * 1024);
      expect((await t.stats()).peers).toBe(0);
      expect(process.memoryUsage().rss - before).toBeLessThan(40 * 1024 * 1024);
    },
  );
});

/** POST `total` bytes of 'a' in 64 KiB chunks without Content-Length; resolve with the answer. */
function streamBody(url: string, type: string, total: number): Promise<{ status: number; body: string; sent: number }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    let sent = 0;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { ...KF, 'content-type': type } }, (res) => {
      status = res.statusCode ?? 0;
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, sent }));
      res.on('error', reject);
    });
    let status = 0;
    req.on('error', () => resolve({ status, body: '', sent }));
    const timer = setTimeout(() => reject(new Error('no answer')), 10_000);
    timer.unref();
    const pump = (): void => {
      while (sent < total && !req.destroyed) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      if (!req.destroyed) req.end();
    };
    pump();
  });
}
