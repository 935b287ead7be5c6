// The BitTorrent anchors of the `swarm` scenarios: a .torrent per anchor made by mktorrent for a local tracker
// (opentracker, else bittorrent-tracker from the anchors folder), N seeders of the anchor's own kind, and a measured download:
// aria2c (DHT, LPD and PEX off; its write configuration the fastest of calibrate.ts's set, picked by one
// calibration download each on a smaller torrent the same seeders serve) and WebTorrent (the library webtorrent-cli
// runs, driven by bench/webtorrent-peer.ts: TCP only, no DHT/LSD/UPnP/WebRTC; node-datachannel stubbed).
// Missing pieces make a `skip:` note instead.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runMeasured, trackChild, type Measured } from '../measure.js';
import { ARIA2_WRITE_CONFIGS, calibrate, calibrationNote, type AnchorConfig } from './calibrate.js';
import { WEBTORRENT_PEER, freePort, testFile, type ScenarioContext } from './common.js';

export interface TorrentAnchor {
  /** Display name ('aria2 BitTorrent', 'WebTorrent'). */
  name: string;
  /** Short key for paths. */
  key: string;
  /** How the downloader runs (aria2c's flags once `prepare` picked them), for the row. */
  config(): string;
  /** The seeders' listening ports (the shaped swarm caps each one's rate by its port). */
  seederPorts: number[];
  /** The seeders' process ids (for their CPU per GiB served). */
  seederPids(): number[];
  /** Pick the downloader's configuration (aria2c: the calibration); notes what it measured. */
  prepare(): Promise<void>;
  /**
   * Download the torrent into `out`, measured; throws on failure. `onDone` gets the ms from spawn to the moment the
   * anchor says the download is complete (aria2c's `Download complete` notice), where it says so.
   */
  download(out: string, onDone?: (ms: number) => void): Promise<Measured>;
  stop(): Promise<void>;
}

export interface TorrentAnchorOptions {
  /** Which anchors to set up (default both). */
  only?: ('aria2' | 'webtorrent')[];
  /** Calibrate aria2c's write configuration in `prepare` (default true); false: `--file-allocation=falloc`. */
  calibrate?: boolean;
}

/** The calibration torrent is at most this large. */
const CALIBRATION_MAX_MIB = 512;

/** aria2c with everything that would look beyond the tracker off. */
const ARIA2_BT = ['--enable-dht=false', '--enable-dht6=false', '--bt-enable-lpd=false', '--enable-peer-exchange=false', '--summary-interval=0'];

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
 * Start a local BitTorrent tracker for `hashes` on `port`. Debian's opentracker is built with a whitelist: it gets one
 * with the info hashes; it chroots into `dir` and drops to `nobody`, hence the relative path and the modes.
 */
async function startTracker(ctx: ScenarioContext, dir: string, port: number, hashes: string[], procs: ChildProcess[], notes: string[]): Promise<void> {
  if (ctx.anchors.opentracker !== undefined) {
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'whitelist'), hashes.map((h) => `${h}\n`).join(''), { mode: 0o644 });
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

/** Why the `webtorrent` library does not load (within 20 s), or undefined if it does. */
function libProblem(pkg: string): string | undefined {
  const url = pathToFileURL(join(pkg, 'index.js')).href;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(url)})`], { encoding: 'utf8', timeout: 20_000 });
  if (r.status === 0) return undefined;
  return `the webtorrent library does not load: ${/Error: .*/.exec(r.stderr)?.[0] ?? r.stderr.slice(0, 200)}`;
}

/** Why a Node CLI from the anchors folder does not start (`--help` within 20 s), or undefined if it does. */
function cliProblem(name: string, path: string): string | undefined {
  const r = spawnSync(process.execPath, [path, '--help'], { encoding: 'utf8', timeout: 20_000 });
  if (r.status === 0) return undefined;
  return `${name} does not start: ${/Error: .*/.exec(r.stderr)?.[0] ?? r.stderr.slice(0, 200)}`;
}

/** A .torrent of `file` (1 MiB pieces, not private: like a typical large-file torrent) for `announce`, tagged `source`. */
function makeTorrent(mktorrent: string, file: string, out: string, announce: string, source: string): string {
  const mk = spawnSync(mktorrent, ['-a', announce, '-l', '20', '-s', `kfetch-bench-${source}`, '-o', out, file], { encoding: 'utf8', timeout: 300_000 });
  if (mk.status !== 0) throw new Error(`mktorrent failed: ${mk.stderr}`);
  return out;
}

/** Start `node webtorrent-peer.js ... seed` and wait (bounded) for its `seeding` line (it verifies the file first). */
function startWebtorrentSeeder(pkg: string, torrent: string, dir: string, port: number, timeoutMs: number): Promise<ChildProcess> {
  const p = trackChild(spawn(process.execPath, [WEBTORRENT_PEER, pkg, 'seed', torrent, dir, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let err = '';
  p.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-2000)));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`WebTorrent seeder not seeding within ${timeoutMs} ms: ${err}`));
    }, timeoutMs);
    p.stdout!.setEncoding('utf8').on('data', (d: string) => {
      if (!d.includes('seeding')) return;
      clearTimeout(t);
      p.stdout!.removeAllListeners('data');
      p.stdout!.resume();
      resolve(p);
    });
    p.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`WebTorrent seeder exited (${code}): ${err}`));
    });
  });
}

/** Set up every installed anchor for `file` with `n` seeders each; what is missing is noted as `skip: name: why`. */
export async function torrentAnchors(ctx: ScenarioContext, file: string, dir: string, n: number, notes: string[], o: TorrentAnchorOptions = {}): Promise<TorrentAnchor[]> {
  mkdirSync(dir, { recursive: true });
  const a = ctx.anchors;
  const only = o.only ?? ['aria2', 'webtorrent'];
  const webtorrentProblem = a.webtorrent === undefined ? 'webtorrent not installed (scripts/install-anchors.sh)' : libProblem(a.webtorrent);
  const wantAria = only.includes('aria2') && a.aria2c !== undefined;
  const wantWeb = only.includes('webtorrent') && webtorrentProblem === undefined;
  if (only.includes('aria2') && !wantAria) notes.push('skip: aria2 BitTorrent: aria2c not installed');
  if (only.includes('webtorrent') && !wantWeb) notes.push(`skip: WebTorrent: ${webtorrentProblem}`);
  if (!wantAria && !wantWeb) return [];
  const btTrackerProblem = a.bittorrentTracker === undefined ? 'not installed' : a.opentracker !== undefined ? undefined : cliProblem('bittorrent-tracker', a.bittorrentTracker);
  if (a.mktorrent === undefined || (a.opentracker === undefined && btTrackerProblem !== undefined)) {
    const why = a.mktorrent === undefined ? 'mktorrent not installed' : `no BitTorrent tracker: opentracker not installed, bittorrent-tracker ${btTrackerProblem}`;
    if (wantAria) notes.push(`skip: aria2 BitTorrent: ${why}`);
    if (wantWeb) notes.push(`skip: WebTorrent: ${why}`);
    return [];
  }
  const port = await freePort();
  const announce = `http://127.0.0.1:${port}/announce`;
  // One torrent per anchor (a source string of its own in the info dict, so another info hash): with one shared
  // tracker, each downloader must find only its own kind of seeders.
  const ariaTorrent = wantAria ? makeTorrent(a.mktorrent, file, join(dir, 'aria2.torrent'), announce, 'aria2') : '';
  const webTorrent = wantWeb ? makeTorrent(a.mktorrent, file, join(dir, 'webtorrent.torrent'), announce, 'webtorrent') : '';
  // aria2c's calibration torrent: a smaller file the same seeders serve as well (the scenario's own when small).
  const sizeMiB = ctx.opts.sizeMiB;
  const calMiB = Math.min(sizeMiB, CALIBRATION_MAX_MIB);
  const calibrating = wantAria && (o.calibrate ?? true);
  const calFile = calibrating && calMiB < sizeMiB ? testFile(ctx, calMiB) : undefined;
  const calTorrent = calFile === undefined ? ariaTorrent : makeTorrent(a.mktorrent, calFile, join(dir, 'aria2-calibration.torrent'), announce, 'aria2');
  // Bounded: a stuck anchor (no peers from its tracker) must not hang the run; 5 s/GiB would be very slow.
  const timeoutMs = 60_000 + sizeMiB * 200;
  const trackerProcs: ChildProcess[] = [];
  const hashes = [...new Set([ariaTorrent, calTorrent, webTorrent])].filter((t) => t !== '').map((t) => infoHash(readFileSync(t)));
  await startTracker(ctx, dir, port, hashes, trackerProcs, notes);
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
    const seederPorts: number[] = [];
    const torrents = calFile === undefined ? [ariaTorrent] : [ariaTorrent, calTorrent];
    for (const d of seedDirs(dir, file, n, 'aria2')) {
      if (calFile !== undefined) linkSync(calFile, join(d, basename(calFile)));
      const port = await freePort();
      seederPorts.push(port);
      seeders.push(
        trackChild(
          spawn(a.aria2c!, [...ARIA2_BT, '--console-log-level=warn', '--file-allocation=none', '-d', d, '--seed-ratio=0.0', '--bt-seed-unverified=true', '--check-integrity=false', `--listen-port=${port}`, ...torrents], { stdio: 'ignore' }),
        ),
      );
    }
    // Let the seeders announce before the first download.
    await new Promise((r) => setTimeout(r, 1500));
    let config: AnchorConfig = { label: '--file-allocation=falloc', args: ['--file-allocation=falloc'] };
    const get = async (t: string, dest: string, c: AnchorConfig, onDone?: (ms: number) => void): Promise<Measured> => {
      const port = await freePort();
      // Notices on: one line `[NOTICE] Download complete: <path>` when the last piece is verified and written.
      const onLine = (line: string, ms: number): void => {
        if (line.includes('Download complete')) onDone?.(ms);
      };
      const m = await runMeasured(a.aria2c!, [...ARIA2_BT, '--console-log-level=notice', ...c.args, '-d', dest, '--seed-time=0', `--listen-port=${port}`, t], { timeoutMs, onLine });
      if (m.code !== 0) throw new Error(`aria2c (BitTorrent) exited ${m.code ?? m.signal}: ${m.stdout.slice(-600)}`);
      return m;
    };
    out.push({
      name: 'aria2 BitTorrent',
      key: 'aria2',
      config: () => config.label,
      seederPorts,
      seederPids: () => seeders.flatMap((p) => (p.pid === undefined ? [] : [p.pid])),
      prepare: async () => {
        if (!calibrating) {
          notes.push(`aria2 BitTorrent: ${config.label} (not calibrated here)`);
          return;
        }
        const cal = await calibrate('swarm: aria2 BitTorrent', ARIA2_WRITE_CONFIGS, calMiB, async (c, i) => {
          const dest = join(dir, `calibration-${i}`);
          try {
            return await get(calTorrent, dest, c);
          } finally {
            rmSync(dest, { recursive: true, force: true });
          }
        }, ctx.log);
        config = cal.best;
        notes.push(calibrationNote('aria2 BitTorrent (aria2c verifies every piece\'s SHA-1)', cal));
      },
      download: (dest, onDone) => get(ariaTorrent, dest, config, onDone),
      stop: async () => {
        await stopAll(seeders);
        await releaseTracker();
      },
    });
  }
  if (wantWeb) {
    shared++;
    const seederPorts: number[] = [];
    const dirs = seedDirs(dir, file, n, 'webtorrent');
    for (let i = 0; i < n; i++) seederPorts.push(await freePort());
    const started = await Promise.allSettled(dirs.map((d, i) => startWebtorrentSeeder(a.webtorrent!, webTorrent, d, seederPorts[i]!, timeoutMs)));
    const seeders = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = started.find((r) => r.status === 'rejected');
    if (failed !== undefined) {
      await stopAll(seeders);
      await releaseTracker();
      notes.push(`skip: WebTorrent: ${String((failed as PromiseRejectedResult).reason).slice(0, 200)}`);
    } else {
      notes.push(
        'WebTorrent over TCP: bench/webtorrent-peer.ts runs the webtorrent library (webtorrent-cli\'s engine; the CLI cannot turn off DHT, LSD, UPnP/NAT-PMP) with DHT, LSD, PEX, uTP and NAT traversal off; node-datachannel stubbed (no native binding here: WebRTC unavailable and never used over TCP)',
      );
      out.push({
        name: 'WebTorrent',
        key: 'webtorrent',
        config: () => 'over TCP; node-datachannel stubbed; no DHT/LSD/uTP/UPnP',
        seederPorts,
        seederPids: () => seeders.flatMap((p) => (p.pid === undefined ? [] : [p.pid])),
        prepare: async () => {},
        download: async (dest) => {
          const m = await runMeasured(process.execPath, [WEBTORRENT_PEER, a.webtorrent!, 'get', webTorrent, dest, String(await freePort())], { timeoutMs });
          if (m.code !== 0) throw new Error(`webtorrent exited ${m.code ?? m.signal}: ${m.stderr.slice(-600)}`);
          return m;
        },
        stop: async () => {
          await stopAll(seeders);
          await releaseTracker();
        },
      });
    }
  }
  return out;
}
