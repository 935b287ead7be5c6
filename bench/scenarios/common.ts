// What every scenario gets: the run's options and temp dir, the measured ceilings, where the anchors are, and
// helpers to make test files and kascades, start kfetch children, and summarise measured runs into a table row.

import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startKfetchChild, type Child } from '../../src/cli/local-swarm.js';
import { bindingCeiling, ceilingsFor, type Ceilings } from '../ceilings.js';
import { median, runMeasured, trackChild, type Measured } from '../measure.js';
import { round, type CpuParts, type Row, type Target } from '../report.js';

export const MiB = 1024 * 1024;
/** The built CLI. */
// The bin itself (run as users run it: its shebang carries kfetch's V8 flags).
export const KFETCH = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** The static server as a process (used when nginx is missing). */
export const STATIC_SERVER = fileURLToPath(new URL('../static-server.js', import.meta.url));

export interface BenchOptions {
  sizeMiB: number;
  /** --size was given (scenarios with their own default size, like swarm-shaped, then take it). */
  sizeExplicit: boolean;
  peers: number;
  runs: number;
  quick: boolean;
}

export interface ScenarioContext {
  opts: BenchOptions;
  /** Temp dir of this run (removed at the end). */
  dir: string;
  ceilings: Ceilings;
  anchors: Anchors;
  signal: AbortSignal;
  log(msg: string): void;
}

export interface ScenarioResult {
  rows: Row[];
  targets: Target[];
  notes?: string[];
}

export type Scenario = (ctx: ScenarioContext) => Promise<ScenarioResult>;

/** Paths of the anchor programs, or undefined when not installed. */
export interface Anchors {
  aria2c?: string;
  nginx?: string;
  mktorrent?: string;
  opentracker?: string;
  /** The `webtorrent` package folder (the library webtorrent-cli runs; bench/webtorrent-peer.ts drives it). */
  webtorrent?: string;
  bittorrentTracker?: string;
}

function which(cmd: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = join(d, cmd);
    if (d !== '' && existsSync(p)) return p;
  }
  return undefined;
}

/**
 * Find the anchors on PATH and in the anchors folder of scripts/install-anchors.sh ($KFETCH_ANCHORS or
 * ~/.cache/kfetch-anchors). `without` names anchors to treat as missing (`--without nginx,aria2c`).
 */
export function findAnchors(without: string[] = []): Anchors {
  const folder = process.env.KFETCH_ANCHORS ?? join(homedir(), '.cache', 'kfetch-anchors');
  const npmBin = (name: string): string | undefined => {
    const p = join(folder, 'node_modules', '.bin', name);
    return existsSync(p) ? p : which(name);
  };
  const a: Anchors = {};
  const set = (k: keyof Anchors, v: string | undefined): void => {
    if (v !== undefined && !without.includes(k)) a[k] = v;
  };
  set('aria2c', which('aria2c'));
  set('nginx', which('nginx'));
  set('mktorrent', which('mktorrent'));
  set('opentracker', which('opentracker'));
  const wt = join(folder, 'node_modules', 'webtorrent');
  set('webtorrent', existsSync(join(wt, 'index.js')) ? wt : undefined);
  set('bittorrentTracker', npmBin('bittorrent-tracker'));
  return a;
}

const files = new Map<number, string>();

/** A random file of `sizeMiB` in the run's dir (made once per size), its page cache warm. */
export function testFile(ctx: ScenarioContext, sizeMiB: number): string {
  const have = files.get(sizeMiB);
  if (have !== undefined) return have;
  const path = join(ctx.dir, `data-${sizeMiB}.bin`);
  const fd = openSync(path, 'w');
  const chunk = Buffer.allocUnsafe(8 * MiB);
  for (let done = 0; done < sizeMiB * MiB; done += chunk.length) {
    randomFillSync(chunk);
    writeSync(fd, chunk, 0, Math.min(chunk.length, sizeMiB * MiB - done));
  }
  closeSync(fd);
  files.set(sizeMiB, path);
  return path;
}

/** Write a kascade for `file` with `kfetch create`; returns its path and the filehash. */
export function makeKascade(file: string, out: string, tracker: string, blockSize?: number): { path: string; filehash: string } {
  const args = ['create', file, '--tracker', tracker, '-o', out, '--force'];
  if (blockSize !== undefined) args.push('--block-size', String(blockSize));
  const r = spawnSync(KFETCH, args, { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`kfetch create failed (${r.status}): ${r.stderr}`);
  const k = JSON.parse(readFileSync(out, 'utf8')) as { filehash: string };
  return { path: out, filehash: k.filehash };
}

/** Start a kfetch tracker/seeder child and register it for the final kill. */
export async function startKfetch(args: string[], home: string): Promise<Child> {
  const c = await startKfetchChild([...args, '--home', home], { KFETCH_HOME: home }, 60_000);
  trackChild(c.proc);
  return c;
}

/** bench/webtorrent-peer.js, built. */
export const WEBTORRENT_PEER = fileURLToPath(new URL('../webtorrent-peer.js', import.meta.url));

/** A free TCP port on 127.0.0.1 (for programs that need a port given up front). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/**
 * kfetch's in-process CPU seconds, the `cpu` field of its `--json` `done` event: user and sys of the process, main-
 * thread time in the socket read path (receive), worker-thread busy seconds hashing MD5 / SHA-256 and writing, and
 * the checkpoints' fdatasync + commit.
 */
export interface DoneCpu {
  user: number;
  sys: number;
  receive: number;
  md5: number;
  sha256: number;
  write: number;
  checkpoint: number;
  /** The main thread before the session started (module loading, the state database), where reported. */
  startup?: number;
  /** The worker threads' CPU beyond their MD5s and writes (task messages, wake-ups), where reported. */
  dispatch?: number;
}

/** A measured kfetch download, with the `done` event's `cpu` when it has one. */
export type KfetchMeasured = Measured & { doneCpu?: DoneCpu };

const CPU_KEYS = ['user', 'sys', 'receive', 'md5', 'sha256', 'write', 'checkpoint'] as const;

/** The `cpu` of a `--json` line if it is a `done` event carrying one (every field a finite number), else undefined. */
export function doneCpuOf(line: string): DoneCpu | undefined {
  if (!line.startsWith('{') || !line.includes('"done"')) return undefined;
  try {
    const e = JSON.parse(line) as { event?: unknown; cpu?: Record<string, unknown> };
    if (e.event !== 'done' || typeof e.cpu !== 'object' || e.cpu === null) return undefined;
    const cpu = e.cpu;
    if (!CPU_KEYS.every((k) => typeof cpu[k] === 'number' && Number.isFinite(cpu[k]))) return undefined;
    const out = Object.fromEntries(CPU_KEYS.map((k) => [k, cpu[k] as number])) as unknown as DoneCpu;
    if (typeof cpu.startup === 'number' && Number.isFinite(cpu.startup)) out.startup = cpu.startup;
    if (typeof cpu.dispatch === 'number' && Number.isFinite(cpu.dispatch)) out.dispatch = cpu.dispatch;
    return out;
  } catch {
    return undefined;
  }
}

/** Run `kfetch <args> --json --home <home>` measured; throws if it does not exit 0. Keeps the `done` event's `cpu`. */
export async function kfetchMeasured(args: string[], home: string, timeoutMs: number, onLine?: (line: string, ms: number) => void): Promise<KfetchMeasured> {
  let doneCpu: DoneCpu | undefined;
  const o = {
    env: { KFETCH_HOME: home },
    timeoutMs,
    onLine: (line: string, ms: number): void => {
      doneCpu = doneCpuOf(line) ?? doneCpu;
      onLine?.(line, ms);
    },
  };
  const m = await runMeasured(KFETCH, [...args, '--home', home], o);
  if (m.code !== 0) throw new Error(`kfetch ${args[0]} exited ${m.code ?? m.signal}: ${m.stderr.trim().slice(-600)}`);
  return doneCpu === undefined ? m : { ...m, doneCpu };
}

/** The in-process breakdown per GiB (medians), when every run has one. */
function partsPerGiB(runs: KfetchMeasured[], gib: number): CpuParts | undefined {
  const all = runs.map((r) => r.doneCpu);
  if (all.length === 0 || all.some((c) => c === undefined)) return undefined;
  const cs = all as DoneCpu[];
  const per = (f: (c: DoneCpu) => number): number => round(median(cs.map(f)) / gib, 2);
  const withStartup = cs.every((c) => c.startup !== undefined);
  const withDispatch = cs.every((c) => c.dispatch !== undefined);
  return {
    receive: per((c) => c.receive),
    md5: per((c) => c.md5),
    sha256: per((c) => c.sha256),
    write: per((c) => c.write),
    checkpoint: per((c) => c.checkpoint),
    ...(withStartup ? { startup: per((c) => c.startup!) } : {}),
    ...(withDispatch ? { dispatch: per((c) => c.dispatch!) } : {}),
    // Not clamped at 0: a negative rest says the thread clocks and rusage disagree (a loaded machine).
    other: per((c) => c.user + c.sys - c.receive - c.md5 - c.sha256 - c.write - c.checkpoint - (withStartup ? c.startup! : 0) - (withDispatch ? c.dispatch! : 0)),
  };
}

/** The serving processes' CPU per GiB served, medians over the runs (`runs`: their CPU during each download). */
export function servedPerGiB(by: string, runs: { user: number; sys: number }[], sizeMiB: number): { by: string; user: number; sys: number } | undefined {
  if (runs.length === 0) return undefined;
  const gib = sizeMiB / 1024;
  return { by, user: round(median(runs.map((c) => c.user)) / gib, 2), sys: round(median(runs.map((c) => c.sys)) / gib, 2) };
}

/** A table row from several measured runs of one tool: medians (peak RSS: the largest). */
export function rowFrom(scenario: string, tool: string, sizeMiB: number, runs: KfetchMeasured[], ceilings?: Record<string, number>): Row {
  const seconds = median(runs.map((r) => r.seconds));
  const MiBps = sizeMiB / seconds;
  const row: Row = {
    scenario,
    tool,
    sizeMiB,
    seconds: round(seconds, 3),
    allSeconds: runs.map((r) => round(r.seconds, 3)),
    MiBps: round(MiBps, 1),
    peakRssMiB: round(Math.max(...runs.map((r) => r.peakRssMiB)), 1),
    cpuSeconds: round(median(runs.map((r) => r.cpuSeconds))),
  };
  // The CPU account (issue 11): CPU-s per GiB moved, user and system apart, and kfetch's own breakdown. Below
  // 64 MiB the process's start-up (about a CPU-second of Node and module loading) is most of it, and a per-GiB
  // figure would mislead.
  if (sizeMiB >= 64) {
    const gib = sizeMiB / 1024;
    const parts = partsPerGiB(runs, gib);
    row.cpu = {
      user: round(median(runs.map((r) => r.userSeconds)) / gib, 2),
      sys: round(median(runs.map((r) => r.sysSeconds)) / gib, 2),
      ...(parts === undefined ? {} : { parts }),
    };
  }
  if (ceilings !== undefined) {
    const b = bindingCeiling(ceilings);
    row.ceiling = { name: b.name, MiBps: round(b.MiBps, 0), ratio: round(MiBps / b.MiBps, 3) };
  }
  return row;
}

/** CPU-s per GiB of the downloader of `row` (user + sys), or undefined (small file: no account). */
export function downloaderPerGiB(row: Row): number | undefined {
  return row.cpu === undefined ? undefined : round(row.cpu.user + row.cpu.sys, 2);
}

export { ceilingsFor };
