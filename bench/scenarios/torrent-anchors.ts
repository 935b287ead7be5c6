// The BitTorrent anchors of the `swarm` scenario: a .torrent made by mktorrent for a local tracker (opentracker,
// else bittorrent-tracker from the anchors folder), N seeders of the anchor's own kind, and a measured download:
// aria2c (DHT, LPD and PEX off) and WebTorrent (webtorrent-cli). Missing pieces make a `skip:` note instead.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { runMeasured, trackChild, type Measured } from '../measure.js';
import { freePort, type ScenarioContext } from './common.js';

export interface TorrentAnchor {
  /** Display name ('aria2 BitTorrent', 'WebTorrent'). */
  name: string;
  /** Short key for paths. */
  key: string;
  /** Download the torrent into `out`, measured; throws on failure. */
  download(out: string): Promise<Measured>;
  stop(): Promise<void>;
}

const ARIA2_BT = ['--enable-dht=false', '--enable-dht6=false', '--bt-enable-lpd=false', '--enable-peer-exchange=false', '--file-allocation=none', '--summary-interval=0', '--console-log-level=warn'];

function stopAll(procs: ChildProcess[]): Promise<void> {
  return Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          const t = setTimeout(() => p.kill('SIGKILL'), 3000);
          p.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          p.kill('SIGTERM');
        }),
    ),
  ).then(() => undefined);
}

/** Seed dirs holding a hard link of `file` each (cheap, same page cache). */
function seedDirs(dir: string, file: string, n: number, key: string): string[] {
  const dirs: string[] = [];
  for (let i = 0; i < n; i++) {
    const d = join(dir, `${key}-seed-${i}`);
    mkdirSync(d, { recursive: true });
    linkSync(file, join(d, basename(file)));
    dirs.push(d);
  }
  return dirs;
}

/** End (exclusive) of the bencoded value starting at `i`. */
function bencodeEnd(b: Buffer, i: number): number {
  const c = b[i];
  if (c === 0x69) return b.indexOf(0x65, i) + 1; // i<n>e
  if (c === 0x6c || c === 0x64) {
    // l...e / d...e
    let j = i + 1;
    while (b[j] !== 0x65) j = bencodeEnd(b, j);
    return j + 1;
  }
  const colon = b.indexOf(0x3a, i); // <len>:<bytes>
  return colon + 1 + Number(b.subarray(i, colon).toString('latin1'));
}

/** The BitTorrent info hash (hex SHA-1 of the bencoded `info` dict) of a .torrent. */
export function infoHash(torrent: Buffer): string {
  let i = 1;
  while (torrent[i] !== 0x65) {
    const keyEnd = bencodeEnd(torrent, i);
    const key = torrent.subarray(torrent.indexOf(0x3a, i) + 1, keyEnd).toString('latin1');
    const valueEnd = bencodeEnd(torrent, keyEnd);
    if (key === 'info') return createHash('sha1').update(torrent.subarray(keyEnd, valueEnd)).digest('hex');
    i = valueEnd;
  }
  throw new Error('no info dict in the .torrent');
}

/**
 * Start a local BitTorrent tracker for `hash` on `port`. Debian's opentracker is built with a whitelist: it gets one
 * with the info hash; it chroots into `dir` and drops to `nobody`, hence the relative path and the modes.
 */
async function startTracker(ctx: ScenarioContext, dir: string, port: number, hash: string, procs: ChildProcess[], notes: string[]): Promise<void> {
  if (ctx.anchors.opentracker !== undefined) {
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'whitelist'), `${hash}\n`, { mode: 0o644 });
    const p = trackChild(
      spawn(ctx.anchors.opentracker, ['-i', '127.0.0.1', '-p', String(port), '-P', String(port), '-w', 'whitelist', '-d', dir], { cwd: dir, stdio: 'ignore' }),
    );
    procs.push(p);
    notes.push(`swarm: BitTorrent tracker opentracker on 127.0.0.1:${port}`);
  } else {
    const p = trackChild(spawn(process.execPath, [ctx.anchors.bittorrentTracker!, '--port', String(port), '--http', '--quiet'], { stdio: 'ignore' }));
    procs.push(p);
    notes.push(`swarm: BitTorrent tracker bittorrent-tracker (npm) on 127.0.0.1:${port}`);
  }
  await new Promise((r) => setTimeout(r, 300));
}

/** Why a Node CLI from the anchors folder does not start (`--help` within 20 s), or undefined if it does. */
function cliProblem(name: string, path: string): string | undefined {
  const r = spawnSync(process.execPath, [path, '--help'], { encoding: 'utf8', timeout: 20_000 });
  if (r.status === 0) return undefined;
  return `${name} does not start: ${/Error: .*/.exec(r.stderr)?.[0] ?? r.stderr.slice(0, 200)}`;
}

/** Set up every installed anchor for `file` with `n` seeders each; what is missing is noted as `skip: name: why`. */
export async function torrentAnchors(ctx: ScenarioContext, file: string, dir: string, n: number, notes: string[]): Promise<TorrentAnchor[]> {
  mkdirSync(dir, { recursive: true });
  const a = ctx.anchors;
  const webtorrentProblem = a.webtorrent === undefined ? 'webtorrent-cli not installed (scripts/install-anchors.sh)' : cliProblem('webtorrent-cli', a.webtorrent);
  const btTrackerProblem = a.bittorrentTracker === undefined ? 'not installed' : cliProblem('bittorrent-tracker', a.bittorrentTracker);
  const haveTracker = a.opentracker !== undefined || btTrackerProblem === undefined;
  const wantAria = a.aria2c !== undefined;
  const wantWeb = webtorrentProblem === undefined;
  if (!wantAria) notes.push('skip: aria2 BitTorrent: aria2c not installed');
  if (!wantWeb) notes.push(`skip: WebTorrent: ${webtorrentProblem}`);
  if (!wantAria && !wantWeb) return [];
  if (a.mktorrent === undefined) {
    if (wantAria) notes.push('skip: aria2 BitTorrent: mktorrent not installed');
    if (wantWeb) notes.push('skip: WebTorrent: mktorrent not installed');
    return [];
  }
  if (!haveTracker) {
    const why = `no BitTorrent tracker: opentracker not installed, bittorrent-tracker ${btTrackerProblem}`;
    if (wantAria) notes.push(`skip: aria2 BitTorrent: ${why}`);
    if (wantWeb) notes.push(`skip: WebTorrent: ${why}`);
    return [];
  }
  const port = await freePort();
  const torrent = join(dir, 'bench.torrent');
  // 1 MiB pieces (2^20), not private: like a typical large-file torrent.
  const mk = spawnSync(a.mktorrent, ['-a', `http://127.0.0.1:${port}/announce`, '-l', '20', '-o', torrent, file], { encoding: 'utf8', timeout: 300_000 });
  if (mk.status !== 0) throw new Error(`mktorrent failed: ${mk.stderr}`);
  // Bounded: a stuck anchor (no peers from its tracker) must not hang the run; 5 s/GiB would be very slow.
  const timeoutMs = 60_000 + ctx.opts.sizeMiB * 200;
  const trackerProcs: ChildProcess[] = [];
  await startTracker(ctx, dir, port, infoHash(readFileSync(torrent)), trackerProcs, notes);
  const out: TorrentAnchor[] = [];
  // The tracker stops when the last anchor using it stops.
  let shared = 0;
  const releaseTracker = async (): Promise<void> => {
    shared--;
    if (shared <= 0) await stopAll(trackerProcs);
  };
  if (wantAria) {
    shared++;
    const seeders: ChildProcess[] = [];
    for (const d of seedDirs(dir, file, n, 'aria2')) {
      const port = await freePort();
      seeders.push(
        trackChild(
          spawn(a.aria2c!, [...ARIA2_BT, '-d', d, '--seed-ratio=0.0', '--bt-seed-unverified=true', '--check-integrity=false', `--listen-port=${port}`, torrent], { stdio: 'ignore' }),
        ),
      );
    }
    // Let the seeders announce before the first download.
    await new Promise((r) => setTimeout(r, 1500));
    out.push({
      name: 'aria2 BitTorrent',
      key: 'aria2',
      download: async (dest) => {
        const port = await freePort();
        const m = await runMeasured(a.aria2c!, [...ARIA2_BT, '-d', dest, '--seed-time=0', `--listen-port=${port}`, torrent], { timeoutMs });
        if (m.code !== 0) throw new Error(`aria2c (BitTorrent) exited ${m.code ?? m.signal}: ${m.stdout.slice(-600)}`);
        return m;
      },
      stop: async () => {
        await stopAll(seeders);
        await releaseTracker();
      },
    });
  }
  if (wantWeb) {
    shared++;
    const seeders: ChildProcess[] = [];
    for (const d of seedDirs(dir, file, n, 'webtorrent')) {
      const port = await freePort();
      seeders.push(
        trackChild(spawn(process.execPath, [a.webtorrent!, 'download', torrent, '-o', d, '--keep-seeding', '-q', '--torrent-port', String(port)], { stdio: 'ignore' })),
      );
    }
    await new Promise((r) => setTimeout(r, 3000));
    out.push({
      name: 'WebTorrent',
      key: 'webtorrent',
      download: async (dest) => {
        const m = await runMeasured(process.execPath, [a.webtorrent!, 'download', torrent, '-o', dest, '-q'], { timeoutMs });
        if (m.code !== 0) throw new Error(`webtorrent exited ${m.code ?? m.signal}: ${m.stderr.slice(-600)}`);
        return m;
      },
      stop: async () => {
        await stopAll(seeders);
        await releaseTracker();
      },
    });
  }
  return out;
}
