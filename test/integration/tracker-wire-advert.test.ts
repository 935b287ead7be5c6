// Issue 14 point 1, the tracker's half: a kfetch peer that serves the binary peer wire announces its port as the
// form field `wire`, the tracker (in process, on the test store: memory, or Redis in the tracker-on-redis project)
// keeps it with the peer and returns it as the `wire` key of that peer's reply entry, and a kfetch get that learns
// of a seeder only from the tracker asks its very first block over the wire. Against real processes on 127.0.0.1:
// `kfetch seed --wire-port 0` and `kfetch get` children, adversarial HTTP peers, raw TCP servers for lying ports,
// and raw-socket original (2015) clients reading the reply.

import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { announce } from '../../src/tracker/announce-client.js';
import { Announcer } from '../../src/tracker/announcer.js';
import type { RunningTracker } from '../../src/tracker/tracker-server.js';
import { Bitfield } from '../../src/util/bitfield.js';
import { VERSION } from '../../src/version.js';
import { startAdversarialPeer, type AdversarialPeer } from '../helpers/adversarial-peer.js';
import { badWirePorts, closeRawTcp } from '../helpers/raw-tcp.js';
import { killAllChildren, runCli, startCli, tempHome, type CliRun } from '../helpers/cli.js';
import { kascadeJsonFor, payloadBytes, writeKascade } from '../helpers/make-file.js';
import { originalAnnounce, pythonDownload } from '../helpers/original-client.js';
import { startTestTracker } from '../helpers/tracker-store.js';
import { until } from '../helpers/wait.js';

const BLOCK = 64 * 1024;
const SIZE = 3 * 1024 * 1024 + 321; // 49 blocks, the last one short
const BLOCKS = Math.ceil(SIZE / BLOCK);
const H = 'cd'.repeat(32);
const KF = { 'user-agent': `kfetch/${VERSION}` };

const dirs: string[] = [];
const peers: AdversarialPeer[] = [];
const trackers: RunningTracker[] = [];

afterEach(async () => {
  killAllChildren();
  for (const p of peers.splice(0)) await p.close();
  await closeRawTcp();
  for (const t of trackers.splice(0)) await t.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function tracker(): Promise<RunningTracker> {
  const t = await startTestTracker({ minIntervalMs: 0 });
  trackers.push(t);
  return t;
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A payload and its kascade naming `trackerBase`'s swarm for it. */
function setup(seed: string, trackerBase: string): { dir: string; bytes: Buffer; kascadePath: string; id: string; announceUrl: string } {
  const dir = mkdtempSync(join(tmpdir(), 'kfetch-wire-advert-'));
  dirs.push(dir);
  const bytes = payloadBytes(0, SIZE, seed);
  const id = createHash('sha256').update(bytes).digest('hex');
  const announceUrl = `${trackerBase}/peers/${id}.json`;
  const k = kascadeJsonFor(bytes, { filename: 'payload.bin', tracker: announceUrl, blockSizes: [BLOCK] });
  const kascadePath = writeKascade(join(dir, 'payload.json'), k);
  return { dir, bytes, kascadePath, id, announceUrl };
}

function post(url: string, fields: Record<string, string>, headers: Record<string, string> = KF): Promise<Response> {
  return fetch(url, { method: 'POST', headers, body: new URLSearchParams(fields), signal: AbortSignal.timeout(10_000) });
}

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

interface Served {
  bytesSent: number;
  statuses: Record<string, number>;
  wire?: { requests: number; bytesSent: number; replies: Record<string, number> };
}

/** Stop a seeder child (SIGTERM) and read what it says it served (its `seed: served` log line). */
async function stopAndRead(run: CliRun): Promise<Served> {
  run.child.kill('SIGTERM');
  expect(await run.exited(15_000)).toBe(0);
  const line = jsonLines(run.stderr()).find((l) => l.msg === 'seed: served');
  expect(line, run.stderr()).toBeDefined();
  return line as unknown as Served;
}

describe('tracker: the `wire` announce field and reply key (issue 14)', () => {
  it('keeps the announced wire port with the peer and returns it in that peer\'s entry only', async () => {
    const t = await tracker();
    const url = `${t.url}/peers/${H}.json`;
    expect((await post(url, { port: '8001', progress: '1', wire: '9001' })).status).toBe(200);
    expect((await post(url, { port: '8002', progress: '0.5' })).status).toBe(200);
    const r = await post(url, { port: '8003', progress: '0' });
    const list = (await r.json()) as Record<string, unknown>[];
    const byPort = new Map(list.map((e) => [e.port, e]));
    expect(byPort.get(8001)).toMatchObject({ ip: '127.0.0.1', port: 8001, progress: 1, feeder: true, wire: 9001 });
    expect(byPort.get(8002)).toBeDefined();
    expect(Object.keys(byPort.get(8002)!)).not.toContain('wire');
    // Port 0 lists only; a wire beside it is ignored, nothing recorded.
    const listOnly = await post(url, { port: '0', progress: '0', wire: '9009' });
    expect(listOnly.status).toBe(200);
    expect(((await listOnly.json()) as unknown[]).length).toBe(3);
    expect((await t.stats()).peers).toBe(3);
    // The peer re-announces without it: its entry loses the key (the latest announce decides).
    await post(url, { port: '8001', progress: '1' });
    const again = (await (await post(url, { port: '8003', progress: '0' })).json()) as Record<string, unknown>[];
    expect(again.find((e) => e.port === 8001)).not.toHaveProperty('wire');
  });

  it('refuses a bad `wire` with 400 naming the field for kfetch, and lists no such peer', async () => {
    const t = await tracker();
    const url = `${t.url}/peers/${H}.json`;
    for (const wire of ['0', '65536', '', '-1', '07000', '1.5', 'x', '9'.repeat(100)]) {
      const r = await post(url, { port: '8001', progress: '1', wire });
      expect(r.status, wire).toBe(400);
      expect(await r.json(), wire).toMatchObject({ field: 'wire' });
    }
    expect((await t.stats()).peers).toBe(0);
    // The announce client reports it as a refusal naming `wire` (what the Announcer drops the field for).
    await expect(announce({ url, port: 8001, progress: 1, wirePort: 0 })).rejects.toMatchObject({ code: 'KF_E_TRACKER_REFUSED', field: 'wire' });
  });

  it('original 2015 clients read a reply whose entries carry `wire` as the array of ip/port/feeder they expect', async () => {
    const t = await tracker();
    const url = `${t.url}/peers/${H}.json`;
    await post(url, { port: '8001', progress: '1', wire: '9001', blocks: 'ff', blocksize: '1024' });
    const { reply, peers: got } = await originalAnnounce(url, { port: 8002, progress: '0.0' });
    expect(reply.status).toBe(200);
    expect(got).toEqual([{ ip: '127.0.0.1', port: 8001, progress: 1, feeder: true }]);
    // The raw body really carried the key (so the line above proves it is ignored, not absent).
    expect(JSON.parse(reply.body.toString('utf8'))).toEqual([expect.objectContaining({ wire: 9001 })]);
    for (const style of ['js-get-multipart', 'js-post-multipart'] as const) {
      expect((await originalAnnounce(url, { style, port: 8003, progress: '0' })).peers.map((p) => p.port)).toContain(8001);
    }
    // A bad `wire` from no kfetch client is answered like every refusal to an original: 200 and an array.
    const r = await post(url, { port: '8004', progress: '0', wire: 'nope' }, {});
    expect(r.status).toBe(200);
    expect(Array.isArray(await r.json())).toBe(true);
  });

  it('the announce client sends `wirePort` and parses the key back into PeerInfo.wire; never with stopped', async () => {
    const t = await tracker();
    const url = `${t.url}/peers/${H}.json`;
    await announce({ url, port: 5001, progress: 1, wirePort: 6001, blocks: { blockSize: 4096, bitfield: Bitfield.full(9) } });
    const r = await announce({ url, port: 5002, progress: 0, wirePort: 6002 });
    expect(r.peers).toEqual([
      { ip: '127.0.0.1', port: 5001, progress: 1, feeder: true, updated: expect.any(String), wire: 6001, blocks: 'ff80', blocksize: 4096 },
    ]);
    expect((await announce({ url, port: 5003, progress: 0 })).peers.find((p) => p.port === 5002)?.wire).toBe(6002);
    await announce({ url, port: 5001, progress: 1, wirePort: 6001, event: 'stopped' });
    expect((await announce({ url, port: 5003, progress: 0 })).peers.map((p) => p.port)).toEqual([5002]);
  });

  it('an Announcer whose tracker refuses `wire` announces again at once without it, and stays listed', async () => {
    // A tracker that refuses any announce naming `wire` (as a stricter tracker might): a real HTTP server.
    const seen: string[] = [];
    const { createServer: createHttp } = await import('node:http');
    const strict = createHttp((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('latin1')));
      req.on('end', () => {
        seen.push(body);
        const refuse = new URLSearchParams(body).has('wire');
        res.writeHead(refuse ? 400 : 200, { 'content-type': 'application/json' });
        res.end(refuse ? JSON.stringify({ error: 'no wire here', field: 'wire' }) : '[]');
      });
    });
    await new Promise<void>((res) => strict.listen(0, '127.0.0.1', () => res()));
    const port = (strict.address() as { port: number }).port;
    const errors: string[] = [];
    const a = new Announcer({
      url: `http://127.0.0.1:${port}/peers/${H}.json`,
      state: () => ({ port: 5001, progress: 1, wirePort: 6001 }),
      onError: (e) => errors.push(`${e.code}:${e.field ?? ''}`),
    });
    try {
      a.start();
      await until(() => seen.length >= 2, 10_000, 'a second announce');
      expect(new URLSearchParams(seen[0]).get('wire')).toBe('6001');
      expect(new URLSearchParams(seen[1]).has('wire')).toBe(false);
      expect(new URLSearchParams(seen[1]).get('port')).toBe('5001');
      expect(errors).toEqual(['KF_E_TRACKER_REFUSED:wire']);
    } finally {
      await a.stop();
      await new Promise<void>((res) => strict.close(() => res()));
    }
  });
});

describe('kfetch get learns a seeder\'s wire from the tracker (issue 14)', () => {
  /** `kfetch seed --wire-port 0` of `bytes`, and a wait until the tracker lists it (with its wire). */
  async function seeder(s: ReturnType<typeof setup>, extra: string[] = []): Promise<{ run: CliRun; wirePort: number }> {
    const data = join(s.dir, 'data');
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, 'payload.bin'), s.bytes);
    const run = startCli(['--log-json', 'seed', s.kascadePath, '--data', data, '--port', '0', '--wire-port', '0', ...extra]);
    await run.waitForLine(/^listening on http:\/\/\S+$/);
    const wirePort = Number((await run.waitForLine(/^wire on 127\.0\.0\.1:(\d+)$/))[1]);
    await until(async () => (await announce({ url: s.announceUrl, port: 0, progress: 0 })).peers.some((p) => p.wire === wirePort), 15_000, 'the tracker lists the seeder with its wire');
    return { run, wirePort };
  }

  it('asks its very first block over the wire: the seeder answers no HTTP request at all; KFETCH_NO_WIRE=1 and --no-wire use HTTP', async () => {
    const t = await tracker();
    const s = setup('advert-e2e', t.url);
    const a = await seeder(s);

    // No --peer: the tracker is the only way to learn of the seeder, and its reply entry carries the seeder's
    // bitfield (so no /blocks request precedes the first range) and its wire port.
    const r = await runCli(['--log-json', 'get', s.kascadePath, '--out', join(s.dir, 'out'), '--no-serve', '--json', '--timeout', '30'], { home: tempHome() });
    expect(r.code, r.stderr).toBe(0);
    expect(sha256(readFileSync(join(s.dir, 'out', 'payload.bin')))).toBe(sha256(s.bytes));
    expect(jsonLines(r.stderr).find((l) => l.msg === 'bytes received over the peer wire')?.overWire).toBe(SIZE);
    const servedA = await stopAndRead(a.run);
    // Every byte over the wire and not one HTTP reply of any kind (with the X-Kascade-Wire header alone, the first
    // request to a peer is an HTTP range: its 206 would show here).
    expect(servedA.wire?.bytesSent).toBe(SIZE);
    expect(servedA.bytesSent).toBe(SIZE);
    expect(servedA.statuses).toEqual({});

    // Both ways of turning the wire off still hold with a tracker-advertised wire: plain HTTP ranges only.
    const b = await seeder(s);
    const r2 = await runCli(['get', s.kascadePath, '--out', join(s.dir, 'out2'), '--no-serve', '--json', '--timeout', '30'], {
      home: tempHome(),
      env: { KFETCH_NO_WIRE: '1' },
    });
    expect(r2.code, r2.stderr).toBe(0);
    const r3 = await runCli(['get', s.kascadePath, '--out', join(s.dir, 'out3'), '--no-serve', '--json', '--no-wire', '--timeout', '30'], { home: tempHome() });
    expect(r3.code, r3.stderr).toBe(0);
    expect(sha256(readFileSync(join(s.dir, 'out3', 'payload.bin')))).toBe(sha256(s.bytes));
    const servedB = await stopAndRead(b.run);
    expect(servedB.wire?.bytesSent ?? 0).toBe(0);
    expect(servedB.bytesSent).toBe(2 * SIZE);
    expect(servedB.statuses['206']).toBeGreaterThan(0);
  }, 90_000);

  it('a get --seed --wire-port announces its own wire to the tracker', async () => {
    const t = await tracker();
    const s = setup('advert-get-seed', t.url);
    const seed = await seeder(s);
    const b = startCli(['--log-json', 'get', s.kascadePath, '--out', join(s.dir, 'b'), '--json', '--seed', '--port', '0', '--wire-port', '0', '--timeout', '30']);
    const [, bPort] = await b.waitForLine(/"event":"serving","url":"http:\/\/127\.0\.0\.1:(\d+)"/);
    await b.waitForLine(/"event":"done"/, 30_000);
    await until(() => jsonLines(b.stderr()).some((l) => l.msg === 'serving the peer wire'), 10_000, 'B logs its wire');
    const bWire = jsonLines(b.stderr()).find((l) => l.msg === 'serving the peer wire')!.wirePort as number;
    await until(
      async () => (await announce({ url: s.announceUrl, port: 0, progress: 0 })).peers.some((p) => p.port === Number(bPort) && p.wire === bWire && p.progress === 1),
      15_000,
      'the tracker lists B complete with its wire',
    );
    b.child.kill('SIGTERM');
    await b.exited(15_000);
    await stopAndRead(seed.run);
  }, 60_000);

  it('the box (`seed --watch --wire-port 0`) downloads over the tracker-advertised wire, then announces its own', async () => {
    const t = await tracker();
    const s = setup('advert-box', t.url);
    const a = await seeder(s);
    const watch = join(s.dir, 'watch');
    mkdirSync(watch);
    writeFileSync(join(watch, 'payload.json'), readFileSync(s.kascadePath));
    const box = startCli(['--log-json', 'seed', '--watch', watch, '--data', join(s.dir, 'box'), '--port', '0', '--wire-port', '0']);
    const boxPort = Number((await box.waitForLine(/^listening on http:\/\/127\.0\.0\.1:(\d+)$/))[1]);
    const boxWire = Number((await box.waitForLine(/^wire on 127\.0\.0\.1:(\d+)$/))[1]);
    await until(
      async () => (await announce({ url: s.announceUrl, port: 0, progress: 0 })).peers.some((p) => p.port === boxPort && p.wire === boxWire && p.progress === 1),
      30_000,
      'the tracker lists the box complete with its wire',
    );
    expect(jsonLines(box.stderr()).find((l) => l.msg === 'bytes received over the peer wire')?.overWire).toBe(SIZE);
    expect(sha256(readFileSync(join(s.dir, 'box', 'payload.bin')))).toBe(sha256(s.bytes));
    box.child.kill('SIGTERM');
    await box.exited(15_000);
    expect((await stopAndRead(a.run)).statuses).toEqual({});
  }, 60_000);

  it('falls back to HTTP, with no ban or strike, for a peer whose tracker-advertised wire is closed, garbage or lying', async () => {
    const t = await tracker();
    const s = setup('advert-fallback', t.url);
    const { closed, garbage, liar } = await badWirePorts();
    for (const [what, wirePort, tried] of [
      ['closed port', closed, undefined],
      ['garbage instead of a hello', garbage.port, garbage.connections],
      ['a lying reply', liar.port, liar.connections],
    ] as const) {
      // An HTTP peer with no wire of its own (no X-Kascade-Wire), announced to the tracker with a wire port that
      // does not work: only the tracker's key leads the client there.
      const p = await startAdversarialPeer({ bytes: s.bytes, id: s.id, blockSize: BLOCK, bitfield: true });
      peers.push(p);
      await announce({ url: s.announceUrl, port: p.port, progress: 1, wirePort });
      const out = join(s.dir, `out-${wirePort}`);
      const r = await runCli(['get', s.kascadePath, '--out', out, '--no-serve', '--json', '--timeout', '30'], { home: tempHome() });
      expect(r.code, `${what}: ${r.stderr}`).toBe(0);
      expect(sha256(readFileSync(join(out, 'payload.bin'))), what).toBe(sha256(s.bytes));
      expect(new Set(p.requests).size, what).toBe(BLOCKS);
      if (tried !== undefined) expect(tried(), what).toBeGreaterThan(0);
      const peerEvents = jsonLines(r.stdout).filter((e) => e.event === 'peer' && e.action !== 'added');
      expect(peerEvents, what).toEqual([]);
      await announce({ url: s.announceUrl, port: p.port, progress: 1, event: 'stopped' });
    }
  }, 120_000);

  it('the original Python downloader fetches the whole file through the same tracker and a wire-serving seeder', async () => {
    const t = await tracker();
    const s = setup('advert-original', t.url);
    const seed = await seeder(s);
    const k = JSON.parse(readFileSync(s.kascadePath, 'utf8')) as Parameters<typeof pythonDownload>[1];
    const got = await pythonDownload(s.announceUrl, k, { port: 8999, blockSize: BLOCK });
    expect(got.sha256).toBe(sha256(s.bytes));
    expect(Object.values(got.servedBy)).toEqual([BLOCKS]);
    const served = await stopAndRead(seed.run);
    expect(served.wire?.bytesSent ?? 0).toBe(0);
  }, 60_000);
});
