// Issue 13 point 3, end to end with the built CLI: `kfetch create --tracker A --tracker B …` writes `tracker` and the
// `trackers` extension (docs/spec-trackers.md) and refuses a bad or repeated one naming which; a --compat-2015 file
// with failover trackers is still fetched by the original Python downloader through its `tracker`; and `kfetch get`
// on a kascade naming a dead tracker first (a closed loopback port) and a live `kfetch tracker` second finds the
// seeder through the second within the fast-retry window (bounded waits only). The seeding box fails over too, and
// its API shows the tracker in use.

import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startAdversarialTracker } from '../helpers/adversarial-tracker.js';
import { freePort } from '../helpers/system.js';
import { BLOCK, boxPayload, boxWorld, startBox } from '../helpers/box-world.js';
import { runCli, startCli } from '../helpers/cli.js';
import { makePayload } from '../helpers/make-file.js';
import { pythonDownload } from '../helpers/original-client.js';
import { testScope } from '../helpers/test-scope.js';
import { until } from '../helpers/wait.js';

const scope = testScope();

async function liveTracker(): Promise<string> {
  const t = startCli(['tracker', '--port', '0']);
  return (await t.waitForLine(/^listening on (http:\/\/\S+)$/))[1]!;
}

interface KascadeJson {
  filehash: string;
  filesize: number;
  tracker: string;
  trackers?: string[];
  blockhashes: Record<string, string[]>;
}

describe('kfetch create with several --tracker', () => {
  it('writes the first as tracker and the rest as trackers, each as --tracker would be', async () => {
    const dir = scope.dir('kfetch-mt-create-');
    const { path } = makePayload(dir, 'payload.bin', 10_000, 'mt-create');
    const out = join(dir, 'payload.json');
    const r = await runCli(['create', path, '--tracker', 'http://127.0.0.1:7000', '--tracker', 'http://127.0.0.2:7000/', '--tracker', 'https://t.example/announce', '-o', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const k = JSON.parse(readFileSync(out, 'utf8')) as KascadeJson;
    expect(k.tracker).toBe(`http://127.0.0.1:7000/peers/${k.filehash}.json`);
    expect(k.trackers).toEqual([`http://127.0.0.2:7000/peers/${k.filehash}.json`, 'https://t.example/announce']);
    const created = JSON.parse(r.stdout.trim().split('\n').pop()!) as { trackers: string[] };
    expect(created.trackers).toEqual([k.tracker, ...k.trackers!]);

    const single = join(dir, 'single.json');
    expect((await runCli(['create', path, '--tracker', 'http://127.0.0.1:7000', '-o', single])).code).toBe(0);
    expect(JSON.parse(readFileSync(single, 'utf8'))).not.toHaveProperty('trackers');
  }, 30_000);

  const many = Array.from({ length: 17 }, (_, i) => ['--tracker', `http://127.0.0.${i + 1}:7000`]).flat();
  it.each([
    ['a repeat of the first (same URL once made conventional)', ['--tracker', 'http://127.0.0.1:7000', '--tracker', 'http://127.0.0.1:7000/'], /--tracker: number 2 \(trackers\[0\]\) "http:\/\/127.0.0.1:7000\/" names the same tracker as number 1/],
    ['a repeat of another', ['--tracker', 'http://127.0.0.1:7000', '--tracker', 'http://127.0.0.2:7000', '--tracker', 'http://127.0.0.2:7000'], /--tracker: number 3 \(trackers\[1\]\) .* names the same tracker as number 2/],
    ['a bad scheme in third place', ['--tracker', 'http://127.0.0.1:7000', '--tracker', 'http://127.0.0.2:7000', '--tracker', 'ftp://127.0.0.3/'], /--tracker: number 3 \(trackers\[1\]\): the tracker URL uses the scheme "ftp:"/],
    ['17 trackers', many, /--tracker: given 17 times/],
  ])('refuses %s, naming it, and writes nothing', async (_what, trackers, message) => {
    const dir = scope.dir('kfetch-mt-refuse-');
    const { path } = makePayload(dir, 'payload.bin', 5_000, 'mt-refuse');
    const outDir = scope.dir('kfetch-mt-refuse-out-');
    const r = await runCli(['create', path, ...trackers, '-o', join(outDir, 'x.json')]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/KF_E_KASCADE_(TRACKER|SCHEMA)/);
    expect(r.stderr).toMatch(message);
    expect(existsSync(join(outDir, 'x.json'))).toBe(false);
    expect(readdirSync(outDir)).toEqual([]);
  }, 30_000);

  it('--compat-2015 with failover trackers: the original Python downloader still fetches through `tracker`', async () => {
    const dir = scope.dir('kfetch-mt-compat-');
    const size = 50 * 1024 + 77;
    const { path } = makePayload(dir, 'payload.bin', size, 'mt-compat');
    const base = await liveTracker();
    const out = join(dir, 'payload.json');
    const made = await runCli(['create', path, '--tracker', base, '--tracker', `http://127.0.0.1:${await freePort()}`, '--compat-2015', '-o', out]);
    expect(made.code, made.stderr).toBe(0);
    const k = JSON.parse(readFileSync(out, 'utf8')) as KascadeJson;
    expect(typeof k.tracker).toBe('string');
    expect(k.trackers).toHaveLength(1);
    expect(Object.keys(k.blockhashes)).toEqual(expect.arrayContaining(['1024', '4096']));
    const seed = startCli(['seed', out, '--data', dir, '--port', '0']);
    await seed.waitForLine(/^listening on /, 30_000);
    // The original reads only `tracker` (a string, as always) and the block hashes of its size.
    const got = await pythonDownload(k.tracker, k, { port: 7911, blockSize: 4096, waitForFeederMs: 20_000 });
    expect(got.sha256).toBe(k.filehash);
  }, 60_000);
});

describe('kfetch get with a dead tracker first', () => {
  it('finds the seeder through the second tracker within the fast-retry window', async () => {
    const dir = scope.dir('kfetch-mt-get-');
    const { path } = makePayload(dir, 'payload.bin', 300 * 1024 + 5, 'mt-get');
    const base = await liveTracker();
    const dead = `http://127.0.0.1:${await freePort()}`;
    const out = join(dir, 'payload.json');
    const made = await runCli(['create', path, '--tracker', dead, '--tracker', base, '--block-size', '65536', '-o', out]);
    expect(made.code, made.stderr).toBe(0);
    const k = JSON.parse(readFileSync(out, 'utf8')) as KascadeJson;
    const live = k.trackers![0]!;

    // The seeder fails over too: wait until the live tracker has accepted its announce (its debug log says so).
    const seed = startCli(['--log-json', '--verbose', 'seed', out, '--data', dir, '--port', '0']);
    await seed.waitForLine(/^listening on /, 30_000);
    await until(
      () => seed.stderr().split('\n').some((l) => l.includes('"announce: ok"') && l.includes(JSON.stringify(live))),
      30_000,
      'the seeder announced to the second tracker',
    );

    // The fast schedule's first retry is 5 s (±25%); a generous bound for a loaded machine, far below the 60 s a
    // download that never failed over would wait for its next announce to the dead tracker.
    const r = await runCli(['get', out, '--out', join(dir, 'got'), '--json', '--timeout', '40'], { timeoutMs: 45_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(createHash('sha256').update(readFileSync(join(dir, 'got', 'payload.bin'))).digest('hex')).toBe(k.filehash);
    // It did try the dead one first.
    expect(r.stdout).toContain('KF_E_TRACKER_UNREACHABLE');
  }, 90_000);
});

describe('the seeding box with a dead tracker first', () => {
  it('announces to the second tracker, and its API shows that one as the tracker in use', async () => {
    const w = boxWorld(scope);
    const live = scope.keep(await startAdversarialTracker({ kind: 'body', body: '[]' }));
    const dead = `http://127.0.0.1:${await freePort()}/peers/x.json`;
    const good = boxPayload('mt.bin', 'mt-box', 4 * BLOCK - 3);
    writeFileSync(join(w.data, 'mt.bin'), good.bytes);
    const box = await startBox(w);
    const token = readFileSync(join(w.home, 'api-token'), 'utf8').trim();
    const api = async (method: string, path: string, body?: string): Promise<{ status: number; json: any }> => {
      const res = await fetch(`${box.url}/api/v1${path}`, { method, headers: { Authorization: `Bearer ${token}` }, ...(body === undefined ? {} : { body }) });
      const text = await res.text();
      return { status: res.status, json: text === '' ? undefined : JSON.parse(text) };
    };
    const added = await api('POST', '/kascades', JSON.stringify({ ...good.k, tracker: dead, trackers: [live.url] }));
    expect(added.status, JSON.stringify(added.json)).toBeLessThan(300);
    const id = added.json.id as string;
    let record: any;
    await until(
      async () => {
        const r = await api('GET', `/kascades/${id}`);
        record = r.json?.kascade ?? r.json;
        return record?.tracker?.url === live.url && record.tracker.lastAnnounce !== null && record.tracker.lastError === null;
      },
      30_000,
      'the box announced to the second tracker',
    );
    expect(live.requests.length).toBeGreaterThanOrEqual(1);
    expect(record.state).toBe('seeding');
    expect(record.tracker.urls).toEqual([dead, live.url]); // the whole list, in failover order
  }, 60_000);
});
