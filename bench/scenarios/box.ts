// The seeding box (`kfetch seed --watch`, issue 5) under the bench: `box-scale` and `box-soak`. Both use a library
// of small files (box-world.ts) announcing to a real kfetch tracker, and stop all they start (the box with SIGTERM,
// which must exit 0).
//
// box-scale: 10 and 2,000 kascades (quick: 10 and 200). A first start verifies every data file (timed, reported);
//   then, per run, a second start is timed from spawn to /status showing every kascade seeding (and, unpolled, to
//   the box's `box: watching` log line), and after 5 s idle (quick: 2 s) the box's RSS (VmRSS), open fds and open
//   data files are read. Target ("nearly flat from 10 to 2,000"): the large start ≤ the small one + 3 s, and the
//   large idle RSS ≤ the small one + 50 MiB (medians over runs).
// box-soak: the box with 2,000 kascades (quick: 200) and 200 keep-alive clients (box-load.ts, its own process, each
//   from its own loopback address) asking for random single blocks for 3 minutes (quick: 10 s), every body checked
//   against its MD5. The box's RSS, fds and open data files are sampled throughout. Targets: no wrong bytes; RSS
//   after the load ≤ RSS once warm (median 25-50% into the load) + 16 MiB; fds after the load, less the data
//   files the fd cache holds, ≤ those before it + 4 (every client socket closed); open data files never above 256.
//   A quick soak (10 s) is a smoke test: its RSS is still warming up, so the RSS target is not judged (n/a).

import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { median, trackChild } from '../measure.js';
import { round, type Row, type Target } from '../report.js';
import type { Child } from '../../src/cli/local-swarm.js';
import type { LoadArgs, LoadResult } from './box-load.js';
import {
  boxMetrics,
  boxStatus,
  dropLibrary,
  library,
  sampleBox,
  startBox,
  startTracker,
  stopBox,
  stopTracker,
  waitSeeding,
  type Library,
  type ProcSample,
  type RunningBox,
} from './box-world.js';
import { MiB, type ScenarioContext, type ScenarioResult } from './common.js';

const LOAD = fileURLToPath(new URL('./box-load.js', import.meta.url));
/** The box's default --max-open-files (LIMITS.boxMaxOpenFiles). */
const MAX_OPEN_FILES = 256;
/** A first start hashes every file: generous, the machine may be shared. */
const VERIFY_TIMEOUT_MS = 15 * 60_000;
const START_TIMEOUT_MS = 120_000;
/**
 * /status is polled this often while waiting. It lists every kascade: with 2,000 each call costs the box 20-35 ms,
 * which adds about 0.3 s to a 2 s start (hence also the unpolled figure from the box's log line).
 */
const POLL_MS = 100;

/** Kill a box that is still running (after an error); the normal path stops it with SIGTERM. */
function kill(box: RunningBox | undefined): void {
  if (box !== undefined && box.proc.exitCode === null && box.proc.signalCode === null) box.proc.kill('SIGKILL');
}

/** A fresh home for a first start (no state). */
function freshHome(lib: Library): string {
  const home = join(lib.dir, 'home-box');
  rmSync(home, { recursive: true, force: true });
  return home;
}

interface ScaleFigures {
  n: number;
  MiB: number;
  firstStartS: number;
  firstCpuS: number;
  startS: number[];
  /** Spawn to the box's own `box: watching` log line (no polling). */
  watchingS: number[];
  listeningS: number[];
  idle: ProcSample[];
  openDataFiles: number[];
  stopS: number[];
}

/** First start, then `runs` timed second starts of a box with `n` kascades; `keep` leaves the library for box-soak. */
async function scaleOne(ctx: ScenarioContext, n: number, idleMs: number, keep: boolean): Promise<ScaleFigures> {
  const lib = await library(ctx, n);
  let tracker: Child | undefined;
  let box: RunningBox | undefined;
  const f: ScaleFigures = { n, MiB: lib.MiB, firstStartS: NaN, firstCpuS: NaN, startS: [], watchingS: [], listeningS: [], idle: [], openDataFiles: [], stopS: [] };
  try {
    tracker = await startTracker(lib);
    const home = freshHome(lib);
    ctx.log(`box-scale: first start, ${n} kascades (${lib.MiB.toFixed(0)} MiB to verify)`);
    box = await startBox(lib, home);
    f.firstStartS = await waitSeeding(box, n, VERIFY_TIMEOUT_MS, POLL_MS, ctx.signal);
    f.firstCpuS = sampleBox(box).cpuS;
    await stopBox(box);
    lib.verifiedHome = home;
    for (let i = 0; i < ctx.opts.runs; i++) {
      ctx.log(`box-scale: second start ${i + 1}/${ctx.opts.runs}, ${n} kascades`);
      box = await startBox(lib, home);
      f.listeningS.push(box.listeningS);
      f.startS.push(await waitSeeding(box, n, START_TIMEOUT_MS, POLL_MS, ctx.signal));
      // The log line and /status race by a few ms: give the line a moment (bounded) to arrive.
      for (let w = 0; w < 100 && Number.isNaN(box.watchingS()); w++) await sleep(20, undefined, { signal: ctx.signal });
      f.watchingS.push(box.watchingS());
      await sleep(idleMs, undefined, { signal: ctx.signal });
      f.idle.push(sampleBox(box));
      f.openDataFiles.push((await boxStatus(box.url, ctx.signal)).openDataFiles);
      f.stopS.push(await stopBox(box));
    }
    return f;
  } finally {
    kill(box);
    await stopTracker(tracker);
    if (!keep) dropLibrary(lib);
  }
}

export async function boxScale(ctx: ScenarioContext): Promise<ScenarioResult> {
  const idleMs = ctx.opts.quick ? 2_000 : 5_000;
  const small = await scaleOne(ctx, 10, idleMs, false);
  // The large library stays for box-soak (its state is verified already).
  const large = await scaleOne(ctx, ctx.opts.quick ? 200 : 2_000, idleMs, true);
  const start = (f: ScaleFigures): number => median(f.startS);
  const rss = (f: ScaleFigures): number => median(f.idle.map((s) => s.rssMiB));
  const fds = (f: ScaleFigures): number => median(f.idle.map((s) => s.fds));
  const L = large.n;
  const row: Row = {
    scenario: 'box-scale',
    tool: `kfetch seed --watch, 10 vs ${L} kascades, second start`,
    sizeMiB: round(large.MiB, 1),
    seconds: round(start(large), 3),
    allSeconds: large.startS.map((s) => round(s, 3)),
    peakRssMiB: round(Math.max(...large.idle.map((s) => s.hwmMiB)), 1),
    cpuSeconds: round(median(large.idle.map((s) => s.cpuS))),
    ratios: { [`start ${L}/10`]: round(start(large) / start(small), 2), [`idle RSS ${L}/10`]: round(rss(large) / rss(small), 2) },
    extra: {
      'start s @10': round(start(small), 2),
      [`start s @${L}`]: round(start(large), 2),
      [`listening s @${L}`]: round(median(large.listeningS), 2),
      'start s (box log, unpolled) @10': round(median(small.watchingS), 2),
      [`start s (box log, unpolled) @${L}`]: round(median(large.watchingS), 2),
      'idle RSS MiB @10': round(rss(small), 1),
      [`idle RSS MiB @${L}`]: round(rss(large), 1),
      'fds @10': fds(small),
      [`fds @${L}`]: fds(large),
      [`open data files @${L}`]: Math.max(...large.openDataFiles),
      'first start (verify) s @10': round(small.firstStartS, 2),
      [`first start (verify) s @${L}`]: round(large.firstStartS, 2),
      [`stop s @${L}`]: round(median(large.stopS), 2),
    },
  };
  const dStart = start(large) - start(small);
  const dRss = rss(large) - rss(small);
  const targets: Target[] = [
    {
      scenario: 'box-scale',
      text: `startup nearly flat: ${L} kascades ≤ 10 kascades + 3 s (second start, spawn to all seeding)`,
      value: `${start(large).toFixed(2)} s vs ${start(small).toFixed(2)} s (+${dStart.toFixed(2)} s, ${(start(large) / start(small)).toFixed(2)}×)`,
      met: dStart <= 3,
    },
    {
      scenario: 'box-scale',
      text: `idle RSS nearly flat: ${L} kascades ≤ 10 kascades + 50 MiB (after ${idleMs / 1000} s idle)`,
      value: `${rss(large).toFixed(1)} vs ${rss(small).toFixed(1)} MiB (+${dRss.toFixed(1)} MiB, ${(rss(large) / rss(small)).toFixed(2)}×)`,
      met: dRss <= 50,
    },
  ];
  const notes = [
    `box-scale: ${L} files ${large.MiB.toFixed(0)} MiB, 16 KiB blocks; first start (verify every file) ${large.firstStartS.toFixed(2)} s, ${large.firstCpuS.toFixed(1)} CPU s; second starts ${large.startS.map((s) => s.toFixed(2)).join(', ')} s (10 kascades: ${small.startS.map((s) => s.toFixed(2)).join(', ')} s)`,
  ];
  return { rows: [row], targets, notes };
}

interface SoakSample extends ProcSample {
  openDataFiles: number;
  /** V8 heap total and memory outside it (Buffers), MiB, as the box reports them: where its RSS goes. */
  heapMiB: number;
  externalMiB: number;
}

/**
 * Read the box's /proc figures, and from /metrics its open data files (the same count /status gives as
 * openDataFiles; /metrics is far smaller than /status with 2,000 kascades) and heap sizes.
 */
async function soakSample(box: RunningBox, signal: AbortSignal): Promise<SoakSample> {
  const m = await boxMetrics(box.url, signal);
  return {
    ...sampleBox(box),
    openDataFiles: m.get('kfetch_open_data_files') ?? NaN,
    heapMiB: (m.get('kfetch_nodejs_heap_size_total_bytes') ?? NaN) / MiB,
    externalMiB: (m.get('kfetch_nodejs_external_memory_bytes') ?? NaN) / MiB,
  };
}

/** Run box-load.js as a child and resolve with its result line. */
function runLoad(args: LoadArgs, timeoutMs: number): Promise<LoadResult> {
  const proc = trackChild(spawn(process.execPath, [LOAD, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4000)));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  timer.unref();
  return new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`box-load exited ${code ?? signal}: ${err.trim().slice(-600)}`));
      try {
        resolve(JSON.parse(out) as LoadResult);
      } catch {
        reject(new Error(`box-load printed no result: ${out.slice(0, 200)} ${err.trim().slice(-400)}`));
      }
    });
  });
}

export async function boxSoak(ctx: ScenarioContext): Promise<ScenarioResult> {
  const n = ctx.opts.quick ? 200 : 2_000;
  // KFETCH_BENCH_SOAK_SECONDS lengthens (or shortens) the full soak, e.g. 1800 for a half-hour memory check.
  const asked = Number(process.env.KFETCH_BENCH_SOAK_SECONDS ?? '');
  const seconds = ctx.opts.quick ? 10 : Number.isInteger(asked) && asked > 0 ? asked : 180;
  const clients = 200;
  const everyMs = ctx.opts.quick ? 1_000 : 3_000;
  const settleMs = ctx.opts.quick ? 1_000 : 5_000;
  const lib = await library(ctx, n);
  let tracker: Child | undefined;
  let box: RunningBox | undefined;
  try {
    tracker = await startTracker(lib);
    const verified = lib.verifiedHome !== undefined;
    const home = lib.verifiedHome ?? freshHome(lib);
    ctx.log(`box-soak: starting the box with ${n} kascades${verified ? '' : ' (verifying them first)'}`);
    box = await startBox(lib, home);
    await waitSeeding(box, n, verified ? START_TIMEOUT_MS : VERIFY_TIMEOUT_MS, POLL_MS, ctx.signal);
    lib.verifiedHome = home;
    await sleep(settleMs, undefined, { signal: ctx.signal });
    const m0 = await boxMetrics(box.url, ctx.signal);
    const before = await soakSample(box, ctx.signal);
    ctx.log(`box-soak: ${clients} clients for ${seconds} s`);
    const t0 = before.t;
    const samples: SoakSample[] = [];
    let loading = true;
    const load = runLoad({ url: box.url, manifest: lib.manifest, clients, seconds, seed: 1 }, (seconds + 120) * 1000).finally(() => (loading = false));
    // Sample until the load ends; a failed sample (the box gone) ends the loop, and the load's result tells why.
    let samplingError: unknown;
    const sampling = (async () => {
      const b = box!;
      while (loading) {
        await sleep(everyMs);
        if (!loading) break;
        samples.push(await soakSample(b, ctx.signal));
      }
    })().catch((err: unknown) => void (samplingError = err));
    const res = await load;
    await sampling;
    if (samplingError !== undefined) throw samplingError;
    await sleep(settleMs, undefined, { signal: ctx.signal });
    const after = await soakSample(box, ctx.signal);
    const m1 = await boxMetrics(box.url, ctx.signal);
    await stopBox(box);
    // RSS climbs for the first seconds of load (V8 grows its heap), so growth is judged against the warm level: the
    // median of the samples from 25% to 50% into the load (from 5 s at least). A median, because the heap spikes
    // now and then for a few seconds and one sample could land on a spike.
    const from = Math.max(5, seconds * 0.25);
    const window = samples.filter((s) => s.t - t0 >= from && s.t - t0 <= from + seconds * 0.25);
    const warmOf = (pick: (s: SoakSample) => number): number => (window.length === 0 ? pick(samples[0] ?? before) : median(window.map(pick)));
    const warm = { rssMiB: warmOf((s) => s.rssMiB), heapMiB: warmOf((s) => s.heapMiB) };
    const all = [before, ...samples, after];
    const maxRss = Math.max(...all.map((s) => s.rssMiB));
    const maxFds = Math.max(...all.map((s) => s.fds));
    const peakOpen = Math.max(...all.map((s) => s.openDataFiles));
    const delta = (name: string): number => (m1.get(name) ?? 0) - (m0.get(name) ?? 0);
    const errors = Object.values(res.errors).reduce((a, b) => a + b, 0) + Object.values(res.otherStatus).reduce((a, b) => a + b, 0);
    const MiBps = res.bytes / MiB / res.seconds;
    const row: Row = {
      scenario: 'box-soak',
      tool: `kfetch seed --watch, ${n} kascades, ${clients} clients`,
      sizeMiB: round(res.bytes / MiB, 1),
      seconds: round(res.seconds, 1),
      MiBps: round(MiBps, 1),
      peakRssMiB: round(maxRss, 1),
      cpuSeconds: round(after.cpuS - before.cpuS),
      extra: {
        'req/s': round(res.requests / res.seconds, 0),
        'p50 ms': round(res.p50Ms, 1),
        'p99 ms': round(res.p99Ms, 1),
        '503s': res.status503,
        'wrong bytes': res.wrongBytes,
        'other errors': errors,
        'RSS MiB idle/warm/after': `${before.rssMiB.toFixed(0)}/${warm.rssMiB.toFixed(0)}/${after.rssMiB.toFixed(0)}`,
        'fds idle/after/max': `${before.fds}/${after.fds}/${maxFds}`,
        'open data files peak': peakOpen,
        'data file opens': delta('kfetch_data_file_opens_total'),
      },
    };
    const fdsBase = before.fds - before.openDataFiles;
    const fdsAfter = after.fds - after.openDataFiles;
    const targets: Target[] = [
      { scenario: 'box-soak', text: 'every block body matches its MD5', value: `${res.wrongBytes} wrong of ${res.ok}`, met: res.wrongBytes === 0 && res.ok > 0 },
      {
        scenario: 'box-soak',
        text: `no RSS growth: after the load ≤ warm (median ${Math.round(from)}-${Math.round(from + seconds * 0.25)} s into it) + 16 MiB`,
        value:
          `${after.rssMiB.toFixed(1)} vs ${warm.rssMiB.toFixed(1)} MiB (idle before ${before.rssMiB.toFixed(1)}, max ${maxRss.toFixed(1)}; ` +
          `V8 heap ${after.heapMiB.toFixed(0)} vs ${warm.heapMiB.toFixed(0)} MiB)${ctx.opts.quick ? '; not judged on a quick soak' : ''}`,
        met: ctx.opts.quick ? null : after.rssMiB <= warm.rssMiB + 16,
      },
      {
        scenario: 'box-soak',
        text: 'no fd growth: fds after the load, less open data files, ≤ before + 4',
        value: `${after.fds} - ${after.openDataFiles} = ${fdsAfter} vs ${before.fds} - ${before.openDataFiles} = ${fdsBase} (max ${maxFds})`,
        met: fdsAfter <= fdsBase + 4,
      },
      { scenario: 'box-soak', text: `open data files ≤ --max-open-files ${MAX_OPEN_FILES} (peak of samples)`, value: String(peakOpen), met: peakOpen <= MAX_OPEN_FILES },
    ];
    const notes = [
      `box-soak: ${res.requests} requests (${res.ok} × 206, ${res.status503} × 503, other ${JSON.stringify({ ...res.otherStatus, ...res.errors })}), ${(res.bytes / MiB).toFixed(0)} MiB in ${res.seconds.toFixed(1)} s; latency p50 ${res.p50Ms.toFixed(1)} p90 ${res.p90Ms.toFixed(1)} p99 ${res.p99Ms.toFixed(1)} max ${res.maxMs.toFixed(1)} ms; box says 206 × ${delta('kfetch_http_requests_total{status="206"}')}, 503 × ${delta('kfetch_http_rejected_total')}`,
      `box-soak samples (s: RSS MiB/heap MiB/external MiB/fds/open data files): ${all.map((s) => `${(s.t - t0).toFixed(0)}: ${s.rssMiB.toFixed(0)}/${s.heapMiB.toFixed(0)}/${s.externalMiB.toFixed(0)}/${s.fds}/${s.openDataFiles}`).join(', ')}`,
    ];
    return { rows: [row], targets, notes };
  } finally {
    kill(box);
    await stopTracker(tracker);
    dropLibrary(lib);
  }
}
