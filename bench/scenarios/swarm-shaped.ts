// `swarm-shaped` (issue 11 item 5): a swarm where the network binds, not the CPU. Each seeder's upload is capped on
// loopback with `tc` (an htb qdisc on `lo`, one class per seeder matched by its listening port as the source port;
// the default class is left unlimited, so nothing else on `lo` is slowed): 2 fast and 2 slow seeders. kfetch (its
// tracker + 4 `kfetch seed`) against aria2 BitTorrent (4 aria2c seeders, `--file-allocation=falloc`) under the same
// caps, alternated. Reported: the share of the aggregate cap used, bytes / (sum of caps × seconds from the first
// shaped byte to the download's completion: kfetch's `done` event, aria2c's `Download complete` notice), the steady
// share (the median 1% slice's rate over the caps), and the tail: the time of the last 1% of the bytes against the median 1%,
// from the classes' byte counters polled every 50 ms (the same clock for both tools). Target: kfetch ≥ 90% of the
// aggregate rate. Needs root and `tc` with htb; otherwise (and under --quick) skipped with a note. The qdisc is
// removed in a finally block and, through measure.ts's atCleanup, on SIGINT/SIGTERM and on a crash.

import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { stopChildren, type Child } from '../../src/cli/local-swarm.js';
import { atCleanup, cpuOf, median, type Measured } from '../measure.js';
import { round, type Row, type Target } from '../report.js';
import {
  MiB, kfetchMeasured, makeKascade, rowFrom, servedPerGiB, startKfetch, testFile,
  type KfetchMeasured, type ScenarioContext, type ScenarioResult,
} from './common.js';
import { torrentAnchors, type TorrentAnchor } from './torrent-anchors.js';

/** Each seeder's cap, MiB/s: 2 fast, 2 slow; 80 MiB/s in all, well under what 2 cores move (so the caps bind). */
export const SEEDER_CAPS_MIBPS = [32, 32, 8, 8] as const;
/** The default file size (--size overrides): about 13 s at the aggregate cap, so the ramp and the tail weigh as in a real download. */
const DEFAULT_MIB = 1024;
const POLL_MS = 50;

/** Run `tc args`; throws with its stderr when it fails. */
function tc(args: string[]): void {
  const r = spawnSync('tc', args, { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`tc ${args.join(' ')}: ${(r.error?.message ?? r.stderr).trim()}`);
}

/** Why shaping cannot be set up here, or undefined. */
function tcProblem(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (tc qdisc on lo)';
  const r = spawnSync('tc', ['-V'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error !== undefined || r.status !== 0) return 'tc (iproute2) not installed';
  return undefined;
}

/**
 * The htb qdisc on `lo` with one capped class per port (class 1:<16 + i>); the default class 1:1 does not exist, so
 * all other traffic goes out unshaped. Returns the teardown (idempotent; also registered with atCleanup).
 */
function shape(caps: { port: number; MiBps: number }[]): () => void {
  tc(['qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb', 'default', '1', 'r2q', '1000']);
  let up = true;
  const unregister = atCleanup(() => teardown());
  function teardown(): void {
    if (!up) return;
    up = false;
    unregister();
    spawnSync('tc', ['qdisc', 'del', 'dev', 'lo', 'root'], { timeout: 10_000 });
  }
  try {
    caps.forEach((c, i) => {
      const bits = String(Math.round(c.MiBps * MiB * 8));
      const id = `1:${(16 + i).toString(16)}`;
      // Loopback sends up to 64 KiB segments: a burst of a few of them keeps the rate smooth.
      tc(['class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', id, 'htb', 'rate', `${bits}bit`, 'ceil', `${bits}bit`, 'burst', '256k', 'cburst', '256k', 'quantum', '65536']);
      tc(['filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', 'sport', String(c.port), '0xffff', 'flowid', id]);
    });
  } catch (err) {
    teardown();
    throw err;
  }
  return teardown;
}

/** Bytes sent so far by each class of the qdisc on `lo` (class minor number → bytes). */
function classBytes(): Promise<Map<number, number>> {
  return new Promise((resolve) => {
    execFile('tc', ['-s', 'class', 'show', 'dev', 'lo'], { timeout: 5_000 }, (err, stdout) => {
      const m = new Map<number, number>();
      if (err === null) for (const x of stdout.matchAll(/class htb 1:([0-9a-f]+) [\s\S]*?Sent (\d+) bytes/g)) m.set(parseInt(x[1]!, 16), Number(x[2]));
      resolve(m);
    });
  });
}

/** One shaped download: the measured process and what the classes carried meanwhile. */
interface ShapedRun {
  m: Measured;
  /** Seconds from the first shaped byte to the download's completion (its done event or notice, else exit). */
  window: number;
  /** Bytes the classes of this swarm carried, and those of the slow seeders. */
  bytes: number;
  slowBytes: number;
  /** ms of the last 1% of the file's bytes and of the median 1%. */
  lastMs: number;
  medianMs: number;
}

/**
 * Run `download` while polling the byte counters of `classes` (this swarm's, the slow ones marked), and work out
 * the transfer window and the tail from them.
 */
async function shapedRun(download: (onDone: (ms: number) => void) => Promise<Measured>, classes: { minor: number; slow: boolean }[], size: number): Promise<ShapedRun> {
  const sum = (m: Map<number, number>, f: (c: { slow: boolean }) => boolean): number => classes.filter(f).reduce((a, c) => a + (m.get(c.minor) ?? 0), 0);
  const base = await classBytes();
  const samples: { t: number; bytes: number }[] = [];
  let stop = false;
  const poller = (async (): Promise<void> => {
    while (!stop) {
      const t = performance.now();
      const now = await classBytes();
      samples.push({ t: (t + performance.now()) / 2, bytes: sum(now, () => true) - sum(base, () => true) });
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  })();
  let doneMs: number | undefined;
  const m = await download((ms) => (doneMs ??= ms));
  const exit = performance.now();
  // The download ends when the downloader says it is complete (kfetch's `done` event, aria2c's notice), else at exit.
  const end = doneMs === undefined ? exit : exit - m.seconds * 1000 + doneMs;
  stop = true;
  await poller;
  const after = await classBytes();
  const bytes = sum(after, () => true) - sum(base, () => true);
  const slowBytes = sum(after, (c) => c.slow) - sum(base, (c) => c.slow);
  // The time the counters first passed `b` bytes, interpolated between polls.
  const when = (b: number): number => {
    let prev = { t: exit - m.seconds * 1000, bytes: 0 };
    for (const s of samples) {
      if (s.bytes >= b) return s.bytes === prev.bytes ? s.t : prev.t + ((b - prev.bytes) / (s.bytes - prev.bytes)) * (s.t - prev.t);
      prev = s;
    }
    return end;
  };
  const first = when(1);
  const marks = Array.from({ length: 100 }, (_, q) => when((size * q) / 100)).concat([end]);
  const slices = marks.slice(1).map((t, i) => t - marks[i]!);
  return { m, window: (end - first) / 1000, bytes, slowBytes, lastMs: Math.max(0, slices[99]!), medianMs: median(slices.slice(1, 99)) };
}

export async function swarmShaped(ctx: ScenarioContext): Promise<ScenarioResult> {
  const name = 'swarm-shaped';
  const caps = SEEDER_CAPS_MIBPS;
  const aggregate = caps.reduce((a, b) => a + b, 0);
  const capsText = `2 × ${caps[0]} + 2 × ${caps[2]} MiB/s`;
  const skip = (why: string): ScenarioResult => ({
    rows: [{ scenario: name, tool: '-', sizeMiB: ctx.opts.sizeExplicit ? ctx.opts.sizeMiB : DEFAULT_MIB, skipped: why }],
    targets: [{ scenario: name, text: `kfetch ≥ 90% of the aggregate seeder rate (${capsText})`, value: 'skipped', met: null }],
    notes: [`${name}: skipped: ${why}`],
  });
  if (ctx.opts.quick) return skip('not under --quick (needs root and tc; seconds at capped rates)');
  const problem = tcProblem();
  if (problem !== undefined) return skip(problem);
  const sizeMiB = ctx.opts.sizeExplicit ? ctx.opts.sizeMiB : DEFAULT_MIB;
  const size = sizeMiB * MiB;
  const runs = ctx.opts.runs;
  const dir = join(ctx.dir, name);
  mkdirSync(dir, { recursive: true });
  const file = testFile(ctx, sizeMiB);
  const notes: string[] = [];
  const children: Child[] = [];
  const anchors: TorrentAnchor[] = [];
  let teardown: (() => void) | undefined;
  const kf: { run: ShapedRun; m: KfetchMeasured }[] = [];
  /** The kfetch seeders' CPU during each kfetch run. */
  const seederCpu: { user: number; sys: number }[] = [];
  const seederPids: number[] = [];
  const ar: ShapedRun[] = [];
  const arSeederCpu: { user: number; sys: number }[] = [];
  let aria2Problem: string | undefined;
  try {
    const tracker = await startKfetch(['tracker', '--port', '0', '--host', '127.0.0.1'], join(dir, 'home-tracker'));
    children.push(tracker);
    const k = makeKascade(file, join(dir, 'shaped.json'), tracker.url);
    // aria2's seeders first: their seed dirs hard-link the file, which must not change under a running kfetch seeder.
    const sub = { ...ctx, opts: { ...ctx.opts, sizeMiB } };
    anchors.push(...(await torrentAnchors(sub, file, join(dir, 'bt'), caps.length, notes, { only: ['aria2'], calibrate: false })));
    for (const n of notes.filter((x) => x.startsWith('skip:'))) aria2Problem = n.split(':').slice(2).join(':').trim();
    const kPorts: number[] = [];
    for (let i = 0; i < caps.length; i++) {
      const seeder = await startKfetch(['seed', k.path, '--data', dirname(file), '--port', '0', '--trust'], join(dir, `home-seed-${i}`));
      children.push(seeder);
      if (seeder.proc.pid !== undefined) seederPids.push(seeder.proc.pid);
      kPorts.push(Number(new URL(seeder.url).port));
    }
    const aria2 = anchors[0];
    const classes = [...kPorts.map((port, i) => ({ port, MiBps: caps[i]! })), ...(aria2?.seederPorts ?? []).map((port, i) => ({ port, MiBps: caps[i]! }))];
    try {
      teardown = shape(classes);
    } catch (err) {
      return skip(`tc could not shape lo: ${(err instanceof Error ? err.message : String(err)).slice(0, 200)}`);
    }
    const kClasses = kPorts.map((_, i) => ({ minor: 16 + i, slow: caps[i]! < caps[0]! }));
    const aClasses = (aria2?.seederPorts ?? []).map((_, i) => ({ minor: 16 + kPorts.length + i, slow: caps[i]! < caps[0]! }));
    for (let i = 0; i < runs; i++) {
      const out = join(dir, 'out');
      const home = join(dir, `home-get-${i}`);
      ctx.log(`${name}: kfetch run ${i + 1}/${runs}`);
      let km: KfetchMeasured | undefined;
      const before = cpuOf(seederPids);
      const get = async (onDone: (ms: number) => void): Promise<Measured> =>
        (km = await kfetchMeasured(['get', k.path, '--out', out, '--json', '--timeout', '60'], home, 600_000, (line, ms) => {
          if (line.includes('"event":"done"')) onDone(ms);
        }));
      const run = await shapedRun(get, kClasses, size);
      const after = cpuOf(seederPids);
      seederCpu.push({ user: after.user - before.user, sys: after.sys - before.sys });
      kf.push({ run, m: km! });
      rmSync(out, { recursive: true, force: true });
      rmSync(home, { recursive: true, force: true });
      if (aria2 !== undefined && aria2Problem === undefined) {
        ctx.log(`${name}: aria2 BitTorrent run ${i + 1}/${runs}`);
        const dest = join(dir, `out-aria2-${i}`);
        try {
          const before = cpuOf(aria2.seederPids());
          ar.push(await shapedRun((onDone) => aria2.download(dest, onDone), aClasses, size));
          const after = cpuOf(aria2.seederPids());
          arSeederCpu.push({ user: after.user - before.user, sys: after.sys - before.sys });
        } catch (err) {
          aria2Problem = `FAILED: ${(err instanceof Error ? err.message : String(err)).slice(0, 200)}`;
        }
        rmSync(dest, { recursive: true, force: true });
      }
    }
  } finally {
    teardown?.();
    for (const a of anchors) await a.stop();
    await stopChildren(children);
  }
  const shares = (rs: ShapedRun[]): Record<string, number> => {
    const share = median(rs.map((r) => size / (aggregate * MiB * r.window)));
    return {
      'share of aggregate %': round(share * 100, 1),
      // The rate of the median 1% slice against the caps: the share once running, without start and tail.
      'steady share %': round(median(rs.map((r) => (100 * (size / 100)) / (aggregate * MiB * (r.medianMs / 1000)))), 1),
      'window s': round(median(rs.map((r) => r.window)), 2),
      'last 1% ms': round(median(rs.map((r) => r.lastMs)), 0),
      'median 1% ms': round(median(rs.map((r) => r.medianMs)), 0),
      'slow seeders bytes %': round(median(rs.map((r) => (100 * r.slowBytes) / Math.max(1, r.bytes))), 1),
      'shaped bytes / file %': round(median(rs.map((r) => (100 * r.bytes) / size)), 1),
    };
  };
  const rows: Row[] = [];
  const targets: Target[] = [];
  const kRow = rowFrom(name, `kfetch get (4 kfetch seeders, ${capsText})`, sizeMiB, kf.map((x) => x.m));
  kRow.extra = { ...kRow.extra, ...shares(kf.map((x) => x.run)) };
  const served = servedPerGiB('4 kfetch seed', seederCpu, sizeMiB);
  if (kRow.cpu !== undefined && served !== undefined) kRow.cpu.served = served;
  rows.push(kRow);
  const kShare = Number(kRow.extra['share of aggregate %']);
  targets.push({
    scenario: name,
    text: `kfetch ≥ 90% of the aggregate seeder rate (${capsText} = ${aggregate} MiB/s; ${sizeMiB} MiB)`,
    value: `${kShare.toFixed(1)}%; last 1% ${kRow.extra['last 1% ms']} ms vs median 1% ${kRow.extra['median 1% ms']} ms`,
    met: kShare >= 90,
  });
  if (ar.length > 0 && aria2Problem === undefined) {
    const aRow = rowFrom(name, `aria2 BitTorrent (4 aria2c seeders, ${capsText}; ${anchors[0]!.config()})`, sizeMiB, ar.map((r) => r.m));
    aRow.extra = { ...aRow.extra, ...shares(ar) };
    const aServed = servedPerGiB('4 aria2c seeders', arSeederCpu, sizeMiB);
    if (aRow.cpu !== undefined && aServed !== undefined) aRow.cpu.served = aServed;
    rows.push(aRow);
    kRow.ratios = { 'aria2 BitTorrent speed': round(aRow.seconds! / kRow.seconds!, 2) };
    targets.push({ scenario: name, text: 'aria2 BitTorrent under the same caps (no target: for comparison)', value: `${Number(aRow.extra['share of aggregate %']).toFixed(1)}%`, met: null });
  } else {
    rows.push({ scenario: name, tool: 'aria2 BitTorrent', sizeMiB, skipped: aria2Problem ?? 'aria2c not installed' });
  }
  notes.push(
    `${name}: caps by tc htb on lo per seeder port (${capsText}; default class unlimited); share = file bytes / (${aggregate} MiB/s × seconds from the first shaped byte to completion: kfetch's done event, aria2c's Download complete notice); tail and bytes from the classes' counters polled every ${POLL_MS} ms`,
  );
  return { rows, targets, notes: notes.filter((n) => !n.startsWith('skip:')) };
}
