// Issue 9: `kfetch tracker` (a real child process) with clients that behave like the original 2015 peers
// (test/helpers/original-client.ts): their announce forms, their two-announce life, a restart loop, every refusal
// as a JSON array they can iterate, complete peers kept listed, and the Python downloader fetching a whole file
// through `kfetch tracker` + `kfetch seed` from feeders only, under each --feeders mode.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningTracker } from '../../src/tracker/tracker-server.js';
import { startTestTracker, trackerStoreArgs } from '../helpers/tracker-store.js';
import { freePort } from '../helpers/system.js';
import { killAllChildren, runCli, startCli, type CliRun } from '../helpers/cli.js';
import {
  OriginalClientCrash,
  announceBytes,
  originalAnnounce,
  pythonDownload,
  pythonLife,
  readLikeOriginal,
  restartLoop,
  sendToTracker,
  type OriginalPeer,
  type RawReply,
} from '../helpers/original-client.js';
import { startSwarm, type Swarm } from '../helpers/swarm.js';

const H = 'ab'.repeat(32);
let inProcess: RunningTracker | undefined;

afterEach(async () => {
  killAllChildren();
  await inProcess?.close();
  inProcess = undefined;
});

async function tracker(args: string[] = []): Promise<{ run: CliRun; url: string }> {
  const run = startCli(['tracker', '--port', '0', ...trackerStoreArgs(), ...args]);
  const base = (await run.waitForLine(/^listening on (http:\/\/\S+)$/))[1]!;
  return { run, url: `${base}/peers/${H}.json` };
}

const key = (p: OriginalPeer): string => `${p.ip}:${p.port}`;

/** Announce like the Python peer until `cond` holds for the reply (bounded); the last peers seen. */
async function watch(url: string, port: number, cond: (peers: OriginalPeer[]) => boolean, ms = 10_000): Promise<OriginalPeer[]> {
  const end = performance.now() + ms;
  for (;;) {
    const { peers } = await originalAnnounce(url, { port, progress: '0.0' });
    if (cond(peers)) return peers;
    if (performance.now() > end) throw new Error(`condition not met; last reply ${JSON.stringify(peers)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function expectArrayReply(reply: RawReply, status = 200): void {
  expect(reply.status).toBe(status);
  expect(reply.headers['content-type']).toBe('application/json');
  expect(() => readLikeOriginal(reply)).not.toThrow();
}

describe('original announces against kfetch tracker (issue 9)', () => {
  it('hears the Python peer say 1.0 a second after 0.0 and then lists it as a feeder', async () => {
    const { url } = await tracker();
    // Default --min-interval is 5 s: the 1.0 a second later is a change of state, so it must be heard.
    const [first, second] = await pythonLife(url, 7001, 1_000);
    expect(first!.peers).toEqual([]);
    expectArrayReply(second!.reply);
    const { peers } = await originalAnnounce(url, { port: 7002, progress: '0.0' });
    expect(peers).toMatchObject([{ ip: '127.0.0.1', port: 7001, progress: 1, feeder: true }]);
  });

  it('a restart loop of 150 announces in 1.5 s always gets an array with the swarm, never itself, and stays one peer', async () => {
    const { url } = await tracker();
    await originalAnnounce(url, { port: 7100, progress: '1.0' });
    const replies = await restartLoop(url, { port: 7101, count: 150, withinMs: 1_500 });
    expect(replies).toHaveLength(150);
    for (const { reply, peers } of replies) {
      expect(reply.status).toBe(200);
      expect(peers.map(key)).toEqual(['127.0.0.1:7100']);
    }
    // All but the first were repeats inside --min-interval: the reason is in the header, the list in the body.
    expect(replies.slice(1).every((r) => /too soon/.test(r.reply.headers['x-kascade-error'] ?? ''))).toBe(true);
    expect(replies.every((r) => r.reply.headers['x-kascade-interval'] === '60')).toBe(true);
    const seen = await originalAnnounce(url, { port: 7102, progress: '0.0' });
    expect(seen.peers.map(key).sort()).toEqual(['127.0.0.1:7100', '127.0.0.1:7101']);
  });

  it('accepts the JavaScript forms: GET with a multipart body, POST multipart with bare numbers, GET with a query', async () => {
    const { url } = await tracker();
    const a = await originalAnnounce(url, { style: 'js-get-multipart', port: 7201, progress: '0.5' });
    expect(a.reply.status).toBe(200);
    expect(a.reply.headers['x-kascade-error']).toBeUndefined();
    const b = await originalAnnounce(url, { style: 'js-post-multipart', port: 7202, progress: '1' });
    expect(b.reply.headers['x-kascade-error']).toBeUndefined();
    expect(b.peers).toMatchObject([{ port: 7201, progress: 0.5, feeder: false }]);
    const q = await sendToTracker(url, `GET ${new URL(url).pathname}?port=07203&progress=%200 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(q.status).toBe(200);
    expect(q.headers['x-kascade-error']).toBeUndefined();
    expect(readLikeOriginal(q).map((p) => [p.port, p.progress, p.feeder]).sort()).toEqual([
      [7201, 0.5, false],
      [7202, 1, true],
    ]);
    // Lenient numbers: 1e0 is complete, so a feeder.
    await originalAnnounce(url, { port: 7204, progress: ' 1e0 ' });
    const all = await originalAnnounce(url, { port: 7203, progress: '0' });
    expect(all.peers.find((p) => p.port === 7204)).toMatchObject({ progress: 1, feeder: true });
  });

  it('a field both in the query and in the body is a duplicate: 400 for kfetch, 200 [] for an original', async () => {
    const { url } = await tracker();
    const withQuery = `${url}?port=7301`;
    const orig = await sendToTracker(url, announceBytes(withQuery, 'python', '7301', '0.0'));
    expectArrayReply(orig);
    expect(readLikeOriginal(orig)).toEqual([]);
    expect(orig.headers['x-kascade-error']).toMatch(/port given more than once/);
    const kf = await fetch(withQuery, { method: 'POST', headers: { 'user-agent': 'kfetch/test' }, body: new URLSearchParams({ port: '7301', progress: '0' }) });
    expect(kf.status).toBe(400);
    expect(await kf.json()).toMatchObject({ field: 'port' });
  });
});

describe('refusals: an array for originals, JSON errors for kfetch (issue 9)', () => {
  const path = `/peers/${H}.json`;
  /** Request bytes with no User-Agent (an original) or with `ua`; Content-Length from the body unless given. */
  const req = (method: string, headers: Record<string, string>, body: string) => (ua?: string) =>
    `${method} ${path} HTTP/1.1\r\nHost: x\r\n${ua === undefined ? '' : `User-Agent: ${ua}\r\n`}` +
    Object.entries({ 'Content-Length': String(Buffer.byteLength(body)), ...headers })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('') +
    `Connection: close\r\n\r\n${body}`;
  const fileBody = '--b\r\nContent-Disposition: form-data; name="port"; filename="p.txt"\r\n\r\n80\r\n--b--\r\n';
  const cases: Array<[string, number, (ua?: string) => string]> = [
    ['bad port', 400, req('POST', { 'Content-Type': 'application/x-www-form-urlencoded' }, 'port=70000&progress=0.0')],
    ['garbage progress', 400, req('POST', {}, 'port=80&progress=half.')],
    ['percentage progress', 400, req('POST', {}, 'port=80&progress=50')],
    ['unsupported type', 415, req('POST', { 'Content-Type': 'application/json' }, '{}')],
    ['declared oversized body', 413, req('POST', { 'Content-Length': '10000000' }, 'port=1')],
    ['other method', 405, req('DELETE', {}, '')],
    ['multipart file part', 400, req('POST', { 'Content-Type': 'multipart/form-data; boundary=b' }, fileBody)],
  ];

  it.each(cases)('%s: 200 [] with X-Kascade-Error for an original, %d JSON for kfetch', async (_name, kfStatus, bytes) => {
    const { url } = await tracker();
    // A peer in the swarm, so an empty array is a choice, not luck.
    await originalAnnounce(url, { port: 7400, progress: '1.0' });
    const orig = await sendToTracker(url, bytes());
    expectArrayReply(orig);
    expect(readLikeOriginal(orig)).toEqual([]);
    expect(orig.headers['x-kascade-error']).toBeTruthy();
    expect(orig.headers['x-kascade-interval']).toBe('60');
    const kf = await sendToTracker(url, bytes('kfetch/test'));
    expect(kf.status).toBe(kfStatus);
    expect(JSON.parse(kf.body.toString('utf8'))).toHaveProperty('error');
  });

  it('a streamed oversized body: 200 [] for an original, then the connection is closed', async () => {
    const { url } = await tracker();
    const chunk = `10000\r\n${'a'.repeat(0x10000)}\r\n`;
    const body = chunk.repeat(48); // 3 MiB, over the 2 MiB cap
    const reply = await sendToTracker(url, `POST ${path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body}0\r\n\r\n`, 10_000);
    expectArrayReply(reply);
    expect(reply.headers.connection).toBe('close');
    expect(reply.headers['x-kascade-error']).toMatch(/over/);
  });

  it('a path that is not an announce path: 404 [] for an original, 404 JSON error for kfetch', async () => {
    const { url } = await tracker();
    const bytes = 'POST /announce HTTP/1.1\r\nHost: x\r\nContent-Length: 19\r\nConnection: close\r\n\r\nport=1&progress=0.0';
    const orig = await sendToTracker(url, bytes);
    expectArrayReply(orig, 404);
    expect(readLikeOriginal(orig)).toEqual([]);
    const kf = await sendToTracker(url, bytes.replace('Host: x\r\n', 'Host: x\r\nUser-Agent: kfetch/1\r\n'));
    expect(kf.status).toBe(404);
    expect(JSON.parse(kf.body.toString('utf8'))).toHaveProperty('error');
  });

  it('too soon: the original gets the swarm without itself, kfetch gets 403 + Retry-After', async () => {
    const { url } = await tracker();
    await originalAnnounce(url, { port: 7500, progress: '1.0' });
    await originalAnnounce(url, { port: 7501, progress: '0.0' });
    const again = await originalAnnounce(url, { port: 7501, progress: '0.0' });
    expect(again.reply.status).toBe(200);
    expect(again.reply.headers['x-kascade-error']).toMatch(/too soon/);
    expect(again.peers.map(key)).toEqual(['127.0.0.1:7500']);
    const body = new URLSearchParams({ port: '7502', progress: '0' });
    const headers = { 'user-agent': 'kfetch/test' };
    expect((await fetch(url, { method: 'POST', headers, body })).status).toBe(200);
    const kf = await fetch(url, { method: 'POST', headers, body });
    expect(kf.status).toBe(403);
    expect(Number(kf.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await kf.json()).toHaveProperty('error');
  });

  it('a full swarm: the original gets its peers, kfetch gets 503 (in-process tracker with a cap of 2)', async () => {
    inProcess = await startTestTracker({ maxPeersPerSwarm: 2 });
    const url = `${inProcess.url}/peers/${H}.json`;
    await originalAnnounce(url, { port: 7601, progress: '1.0' });
    await originalAnnounce(url, { port: 7602, progress: '0.0' });
    const full = await originalAnnounce(url, { port: 7603, progress: '0.0' });
    expect(full.reply.status).toBe(200);
    expect(full.reply.headers['x-kascade-error']).toMatch(/full/);
    expect(full.peers.map(key).sort()).toEqual(['127.0.0.1:7601', '127.0.0.1:7602']);
    const kf = await fetch(url, { method: 'POST', headers: { 'user-agent': 'kfetch/test' }, body: new URLSearchParams({ port: '7604', progress: '0' }) });
    expect(kf.status).toBe(503);
    expect((await inProcess.stats()).peers).toBe(2);
  });
});

describe('complete peers stay listed after they stop announcing (issue 9)', () => {
  it('keeps a peer that said 1.0 for --complete-expiry while one that said 0.0 expires after --expiry', async () => {
    const { url } = await tracker(['--interval', '0.5', '--expiry', '1', '--complete-expiry', '60']);
    await originalAnnounce(url, { port: 7702, progress: '0.0' });
    await originalAnnounce(url, { port: 7702, progress: '1.0' });
    await originalAnnounce(url, { port: 7701, progress: '0.0' });
    // The downloader that never came back drops out; the complete one, heard from earlier, stays.
    const peers = await watch(url, 7703, (ps) => !ps.some((p) => p.port === 7701), 10_000);
    expect(peers.map((p) => [p.port, p.feeder])).toEqual([[7702, true]]);
  });

  it('drops the complete peer too once --complete-expiry has passed', async () => {
    const { url } = await tracker(['--interval', '0.5', '--expiry', '0.5', '--complete-expiry', '1.5']);
    await originalAnnounce(url, { port: 7801, progress: '1.0' });
    const t0 = performance.now();
    await watch(url, 7802, (ps) => ps.length === 0, 10_000);
    expect(performance.now() - t0).toBeGreaterThan(1_000);
  });
});

function kascadeOf(swarm: Swarm): { filehash: string; filesize: number; blockhashes: Record<string, string[]> } {
  return JSON.parse(readFileSync(swarm.kascadePath, 'utf8')) as { filehash: string; filesize: number; blockhashes: Record<string, string[]> };
}

describe('the Python downloader through kfetch tracker + kfetch seed (issue 9)', () => {
  it.each([1024, 4096])('fetches a whole file from the seeder (a feeder by default), %d-byte blocks, right SHA-256', async (blockSize) => {
    const swarm = await startSwarm({ size: 300_000 + 17, blockSize, seeders: 1 });
    const k = kascadeOf(swarm);
    const got = await pythonDownload(`${swarm.trackerUrl}/peers/${swarm.filehash}.json`, k, { port: 7901, blockSize });
    expect(got.feeders).toEqual([swarm.seeders[0]!.addr]);
    expect(got.sha256).toBe(swarm.filehash);
    expect(got.servedBy).toEqual({ [swarm.seeders[0]!.addr]: Math.ceil(k.filesize / blockSize) });
  });

  it('finds no feeder under --feeders none, though the seeder is listed', async () => {
    const swarm = await startSwarm({ size: 50_000, blockSize: 4096, seeders: 1, trackerArgs: ['--feeders', 'none'] });
    const url = `${swarm.trackerUrl}/peers/${swarm.filehash}.json`;
    const peers = await watch(url, 7902, (ps) => ps.some((p) => key(p) === swarm.seeders[0]!.addr));
    expect(peers.map((p) => p.feeder)).toEqual([false]);
    await expect(pythonDownload(url, kascadeOf(swarm), { port: 7902, blockSize: 4096, waitForFeederMs: 500 })).rejects.toThrow(/no feeder/);
  });

  it('under --feeders listed --feeder A downloads from A only, though B is complete too', async () => {
    const portA = await freePort();
    const swarm = await startSwarm({
      size: 100_000,
      blockSize: 4096,
      seeders: 0,
      trackerArgs: ['--feeders', 'listed', '--feeder', `127.0.0.1:${portA}`],
    });
    const url = `${swarm.trackerUrl}/peers/${swarm.filehash}.json`;
    const data = `${swarm.dir}/data`;
    const a = startCli(['seed', swarm.kascadePath, '--data', data, '--port', String(portA), '--trust']);
    const b = startCli(['seed', swarm.kascadePath, '--data', data, '--port', '0', '--trust']);
    await a.waitForLine(/^listening on /);
    const addrB = new URL((await b.waitForLine(/^listening on (http:\/\/\S+)$/))[1]!).host;
    const peers = await watch(url, 7903, (ps) => ps.length === 2);
    expect(peers.filter((p) => p.feeder).map(key)).toEqual([`127.0.0.1:${portA}`]);
    expect(peers.find((p) => key(p) === addrB)).toMatchObject({ progress: 1, feeder: false });
    const got = await pythonDownload(url, kascadeOf(swarm), { port: 7903, blockSize: 4096 });
    expect(got.sha256).toBe(swarm.filehash);
    expect(Object.keys(got.servedBy)).toEqual([`127.0.0.1:${portA}`]);
  });
});

describe('kfetch tracker feeder flags (issue 9)', () => {
  it.each([
    [['--feeders', 'none', '--feeder', '127.0.0.1:80']],
    [['--feeder', 'localhost:80']],
    [['--feeder', '127.0.0.1:0']],
    [['--feeders', 'all']],
    [['--feeders', 'listed']],
    [['--complete-expiry', '0']],
  ])('%j is a usage error (exit 2)', async (args) => {
    const { code } = await runCli(['tracker', '--port', '0', ...args], { timeoutMs: 15_000 });
    expect(code).toBe(2);
  });

  it('the helper crashes like the original on a JSON object (so the tests above would notice one)', () => {
    expect(() => readLikeOriginal({ status: 403, headers: {}, body: Buffer.from('{"error":"too soon"}') })).toThrow(OriginalClientCrash);
  });
});
