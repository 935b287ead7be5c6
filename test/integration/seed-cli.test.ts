// `kfetch seed` end to end with real child processes: a real `kfetch tracker`, generated data files, plain HTTP
// announces and Range requests checked against the kascade's MD5s, a corrupt copy, SIGTERM, and bad inputs.

import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAllChildren, runCli, startCli, type CliRun } from '../helpers/cli.js';
import { kascadeJsonFor, makePayload, writeKascade } from '../helpers/make-file.js';

const SIZE = 300_000; // 5 blocks of 65536 (the announced size), 74 of 4096
let dir: string;
let dataDir: string;
let kascadePath: string;
let kascade: { filehash: string; blockhashes: Record<string, string[]> };
let tracker: CliRun;
let trackerUrl: string;
let announcePort = 20_000;
const seeds: CliRun[] = [];

interface PeerEntry {
  ip: string;
  port: number;
  progress: number;
  blocks?: string;
  blocksize?: number;
}

/** Announce as a fresh peer with a plain form POST and return the tracker's peer list. */
async function peers(): Promise<PeerEntry[]> {
  const res = await fetch(`${trackerUrl}/peers/${kascade.filehash}.json`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `port=${announcePort++}&progress=0.0`,
  });
  expect(res.status).toBe(200);
  return (await res.json()) as PeerEntry[];
}

/** Poll the tracker until `pred` holds for the seeder on `port` (bounded). */
async function waitForPeer(port: number, pred: (p: PeerEntry | undefined) => boolean, timeoutMs = 10_000): Promise<PeerEntry | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = (await peers()).find((x) => x.port === port);
    if (pred(p)) return p;
    if (Date.now() > deadline) throw new Error(`tracker state for port ${port} not reached: ${JSON.stringify(p)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function range(base: string, first: number, last: number): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(`${base}/${kascade.filehash}`, { headers: { Range: `bytes=${first}-${last}` } });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

async function startSeed(args: string[]): Promise<{ run: CliRun; url: string; port: number }> {
  const run = startCli(['seed', ...args]);
  seeds.push(run);
  const m = await run.waitForLine(/^listening on (http:\/\/127\.0\.0\.1:(\d+))$/, 20_000);
  return { run, url: m[1]!, port: Number(m[2]) };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kfetch-seed-'));
  dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  tracker = startCli(['tracker', '--port', '0', '--min-interval', '0.01']);
  trackerUrl = (await tracker.waitForLine(/^listening on (http:\/\/\S+)$/))[1]!;
  const p = makePayload(dataDir, 'payload.bin', SIZE, 'seed-cli');
  const json = kascadeJsonFor(p.bytes!, { filename: 'payload.bin', tracker: 'http://placeholder/', blockSizes: [4096, 65536] });
  json.tracker = `${trackerUrl}/peers/${String(json.filehash)}.json`;
  kascade = json as unknown as typeof kascade;
  kascadePath = writeKascade(join(dir, 'payload.json'), json);
});

afterEach(() => {
  // Seeders are per test (the tracker lives for the file): stop any a failed test left running.
  for (const run of seeds.splice(0)) if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
});

afterAll(() => {
  killAllChildren();
  rmSync(dir, { recursive: true, force: true });
});

describe('kfetch seed', () => {
  it('serves verified blocks, announces progress 1 with the blocks extension, and leaves the tracker on SIGTERM', async () => {
    const seed = await startSeed([kascadePath, '--data', dataDir, '--port', '0', '--threads', '2']);
    expect(seed.run.stdout().split('\n')[0]).toBe(`listening on ${seed.url}`);

    const me = await waitForPeer(seed.port, (p) => p !== undefined);
    expect(me).toMatchObject({ ip: '127.0.0.1', port: seed.port, progress: 1, blocks: 'f8', blocksize: 65536 });

    for (const size of [65536, 4096]) {
      const hashes = kascade.blockhashes[String(size)]!;
      for (let i = 0; i < hashes.length; i++) {
        const first = i * size;
        const last = Math.min(first + size, SIZE) - 1;
        const r = await range(seed.url, first, last);
        expect(r.status, `block ${i} at ${size}`).toBe(206);
        expect(md5(r.body), `block ${i} at ${size}`).toBe(hashes[i]);
      }
    }
    const whole = await fetch(`${seed.url}/${kascade.filehash}`);
    expect(whole.status).toBe(200);
    expect(createHash('sha256').update(Buffer.from(await whole.arrayBuffer())).digest('hex')).toBe(kascade.filehash);

    seed.run.child.kill('SIGTERM');
    expect(await seed.run.exited(10_000)).toBe(0);
    // event=stopped removed it at once (no waiting for expiry).
    expect((await peers()).find((p) => p.port === seed.port)).toBeUndefined();
  });

  it('without --trust refuses a corrupt block (400) and serves the others', async () => {
    const bad = join(dir, 'bad');
    mkdirSync(bad);
    copyFileSync(join(dataDir, 'payload.bin'), join(bad, 'payload.bin'));
    const fd = openSync(join(bad, 'payload.bin'), 'r+');
    writeSync(fd, Buffer.from([0xff, 0x00, 0xff]), 0, 3, 2 * 65536 + 1000); // inside block 2 at 65536
    closeSync(fd);

    const seed = await startSeed([kascadePath, '--data', bad, '--port', '0']);
    expect(seed.run.stderr()).toMatch(/1 of 5 blocks do not match/);
    const h64 = kascade.blockhashes['65536']!;
    for (let i = 0; i < 5; i++) {
      const first = i * 65536;
      const r = await range(seed.url, first, Math.min(first + 65536, SIZE) - 1);
      if (i === 2) {
        expect(r.status).toBe(400);
        expect(JSON.parse(r.body.toString())).toEqual({ error: 'block not held (yet)' });
      } else {
        expect(r.status).toBe(206);
        expect(md5(r.body)).toBe(h64[i]);
      }
    }
    // The small blocks inside the bad one are refused too; those outside are served.
    expect((await range(seed.url, 2 * 65536, 2 * 65536 + 4095)).status).toBe(400);
    expect((await range(seed.url, 4096, 8191)).status).toBe(206);
    expect((await fetch(`${seed.url}/${kascade.filehash}`)).status).toBe(416);

    const me = await waitForPeer(seed.port, (p) => p !== undefined);
    expect(me).toMatchObject({ progress: 0.8, blocks: 'd8', blocksize: 65536 });
    seed.run.child.kill('SIGTERM');
    expect(await seed.run.exited(10_000)).toBe(0);
  });

  it('with --trust serves without verifying', async () => {
    const seed = await startSeed([kascadePath, '--data', dataDir, '--port', '0', '--trust', '--json']);
    // The seeding event follows the listening line; it may not have arrived with it (seen in CI).
    await seed.run.waitForLine(/"event":"seeding"/, 10_000);
    const r = await range(seed.url, 0, 4095);
    expect(md5(r.body)).toBe(kascade.blockhashes['4096']![0]);
    seed.run.child.kill('SIGINT');
    expect(await seed.run.exited(10_000)).toBe(0);
  });

  it('names the path of a missing, symlinked or wrong-size data file, and a bad kascade', async () => {
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    const linked = join(dir, 'linked');
    mkdirSync(linked);
    symlinkSync(join(dataDir, 'payload.bin'), join(linked, 'payload.bin'));
    const short = join(dir, 'short');
    mkdirSync(short);
    writeFileSync(join(short, 'payload.bin'), 'too short');
    const asDir = join(dir, 'asdir');
    mkdirSync(join(asDir, 'payload.bin'), { recursive: true });
    const badK = join(dir, 'bad.json');
    writeFileSync(badK, '{"filename": "x"');
    const seed = (k: string, data: string) => runCli(['seed', k, '--data', data, '--port', '0'], { timeoutMs: 20_000 });
    const [missing, sym, wrong, d, k] = await Promise.all([
      seed(kascadePath, empty),
      seed(kascadePath, linked),
      seed(kascadePath, short),
      seed(kascadePath, asDir),
      seed(badK, dataDir),
    ]);

    expect(missing.code).toBe(5);
    expect(missing.stderr).toContain(join(empty, 'payload.bin'));
    expect(missing.stderr).toContain('KF_E_DATA_MISSING');
    expect(missing.stdout).toBe('');

    expect(sym.code).toBe(5);
    expect(sym.stderr).toMatch(/symlink/);

    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toContain(join(short, 'payload.bin'));
    expect(wrong.stderr).toContain('KF_E_INPUT');

    expect(d.code).toBe(5);
    expect(d.stderr).toMatch(/not a regular file/);

    expect(k.code).toBe(3);
    expect(k.stderr).toContain(badK);
  });
});
