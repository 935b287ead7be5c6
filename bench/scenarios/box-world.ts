// The seeding box's world for the `box-scale` and `box-soak` scenarios (bench/scenarios/box.ts): a library of N
// small data files with their kascades (deterministic bytes, hashed here with node:crypto), a real kfetch tracker
// they announce to, the box as a child process (`kfetch seed --watch`), and what we read of it from /proc,
// /status and /metrics. A library is made once per N and run in the run's dir (box-soak reuses box-scale's large
// one and its verified state) and removed by the last scenario that uses it (run.ts removes the dir in any case).

import type { ChildProcess } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Child } from '../../src/cli/local-swarm.js';
import { stopChildren } from '../../src/cli/local-swarm.js';
import { sampleProc } from '../measure.js';
import { KFETCH, MiB, freePort, startKfetch, type ScenarioContext } from './common.js';
import { spawnListening } from './spawn-listening.js';

/** Block size of every library file: small files of 4 to 16 blocks. */
export const BOX_BLOCK = 16 * 1024;
const MIN_SIZE = 4 * BOX_BLOCK;
const MAX_SIZE = 16 * BOX_BLOCK;

/** One data file as the load generator needs it: its id, size and the MD5 of each block. */
export interface LibraryFile {
  filehash: string;
  size: number;
  md5: string[];
}

/** N data files in `data`, their kascades in `watch`, all naming a tracker at 127.0.0.1:`trackerPort`. */
export interface Library {
  n: number;
  dir: string;
  watch: string;
  data: string;
  trackerPort: number;
  files: LibraryFile[];
  MiB: number;
  /** { blockSize, files } as JSON, for the load generator child. */
  manifest: string;
  /** A home whose state already holds every file complete (set once a box has verified the library). */
  verifiedHome?: string;
}

const libraries = new Map<number, Library>();

/** Deterministic, incompressible bytes for file `i`: AES-128-CTR of zeros, the counter block seeded by i. */
function fileBytes(i: number, size: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(i, 0);
  return createCipheriv('aes-128-ctr', Buffer.from('kfetch box bench'), iv).update(Buffer.alloc(size));
}

/** A size in [MIN_SIZE, MAX_SIZE) from i (a multiplicative hash), mostly not a whole number of blocks. */
function fileSize(i: number): number {
  return MIN_SIZE + (Math.imul(i + 1, 2_654_435_761) >>> 0) % (MAX_SIZE - MIN_SIZE);
}

/** The library of `n` files (made on first use in this run, then reused). */
export async function library(ctx: ScenarioContext, n: number): Promise<Library> {
  const have = libraries.get(n);
  if (have !== undefined) return have;
  const dir = join(ctx.dir, `box-${n}`);
  const watch = join(dir, 'watch');
  const data = join(dir, 'data');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(watch, { recursive: true });
  mkdirSync(data, { recursive: true });
  const trackerPort = await freePort();
  const files: LibraryFile[] = [];
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const size = fileSize(i);
    const buf = fileBytes(i, size);
    const md5: string[] = [];
    for (let off = 0; off < size; off += BOX_BLOCK) md5.push(createHash('md5').update(buf.subarray(off, off + BOX_BLOCK)).digest('hex'));
    const filehash = createHash('sha256').update(buf).digest('hex');
    const name = `f-${String(i).padStart(5, '0')}`;
    writeFileSync(join(data, `${name}.bin`), buf);
    const kascade = {
      filename: `${name}.bin`,
      filesize: size,
      filehash,
      tracker: `http://127.0.0.1:${trackerPort}/peers/${filehash}.json`,
      blockhashes: { [String(BOX_BLOCK)]: md5 },
    };
    writeFileSync(join(watch, `${name}.json`), `${JSON.stringify(kascade)}\n`);
    files.push({ filehash, size, md5 });
    bytes += size;
  }
  const manifest = join(dir, 'manifest.json');
  writeFileSync(manifest, JSON.stringify({ blockSize: BOX_BLOCK, files }));
  const lib: Library = { n, dir, watch, data, trackerPort, files, MiB: bytes / MiB, manifest };
  libraries.set(n, lib);
  return lib;
}

/** Remove a library's folder (files, kascades and homes) once no later scenario needs it. */
export function dropLibrary(lib: Library): void {
  libraries.delete(lib.n);
  rmSync(lib.dir, { recursive: true, force: true });
}

/** Start the kfetch tracker the library's kascades name (its port was picked when the library was made). */
export function startTracker(lib: Library): Promise<Child> {
  return startKfetch(['tracker', '--port', String(lib.trackerPort), '--host', '127.0.0.1'], join(lib.dir, 'home-tracker'));
}

/** SIGTERM the tracker (SIGKILL after 3 s). */
export function stopTracker(t: Child | undefined): Promise<void> {
  return t === undefined ? Promise.resolve() : stopChildren([t]);
}

/** A box child process being measured. */
export interface RunningBox {
  proc: ChildProcess;
  pid: number;
  url: string;
  /** performance.now() just before the spawn. */
  t0: number;
  /** Seconds from spawn to the `listening on` line. */
  listeningS: number;
  /** Resolves with the exit (code, signal) whenever the child ends. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last few KiB of its stderr (for error messages). */
  stderr(): string;
  /**
   * Seconds from spawn to the box's `box: watching` log line (its first scan done: on a restart every complete
   * kascade is seeding by then), NaN until seen. Unlike polling /status, which costs the box tens of ms a call
   * with 2,000 kascades, it asks nothing of the box.
   */
  watchingS(): number;
}

/** Start `kfetch seed --watch <lib.watch> --data <lib.data> --port 0 --home <home> ...extra`; resolves once listening. */
export async function startBox(lib: Library, home: string, extra: string[] = []): Promise<RunningBox> {
  const args = ['seed', '--watch', lib.watch, '--data', lib.data, '--port', '0', '--home', home, ...extra];
  const t0 = performance.now();
  const { proc, url } = await spawnListening(KFETCH, args, { KFETCH_HOME: home }, 120_000);
  const listeningS = (performance.now() - t0) / 1000;
  let err = '';
  let watchingS = NaN;
  proc.stderr!.on('data', (d: string) => {
    err = (err + d).slice(-4000);
    if (Number.isNaN(watchingS) && err.includes('box: watching')) watchingS = (performance.now() - t0) / 1000;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve({ code: proc.exitCode, signal: proc.signalCode });
    proc.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return { proc, pid: proc.pid!, url, t0, listeningS, exited, stderr: () => err, watchingS: () => watchingS };
}

/** SIGTERM the box and wait (at most `timeoutMs`, then SIGKILL); throws unless it exits 0. Returns seconds taken. */
export async function stopBox(box: RunningBox, timeoutMs = 20_000): Promise<number> {
  const t0 = performance.now();
  box.proc.kill('SIGTERM');
  const timer = setTimeout(() => box.proc.kill('SIGKILL'), timeoutMs);
  timer.unref();
  try {
    const { code, signal } = await box.exited;
    if (code !== 0) throw new Error(`the box exited ${code ?? signal} after SIGTERM, not 0: ${box.stderr().trim().slice(-600)}`);
    return (performance.now() - t0) / 1000;
  } finally {
    clearTimeout(timer);
  }
}

/** What GET /status says (the fields the scenarios read). */
export interface BoxStatus {
  kascades: Record<string, number>;
  openDataFiles: number;
  files: { path: string; state: string; error?: string }[];
}

export async function boxStatus(url: string, signal: AbortSignal): Promise<BoxStatus> {
  const res = await fetch(`${url}/status`, { signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]) });
  if (res.status !== 200) throw new Error(`GET /status: ${res.status}`);
  return (await res.json()) as BoxStatus;
}

/**
 * Poll /status every `everyMs` until all `n` kascades are seeding; resolves with the seconds since the box's
 * spawn. Throws at once if any is rejected or failed, or after `timeoutMs`.
 */
export async function waitSeeding(box: RunningBox, n: number, timeoutMs: number, everyMs: number, signal: AbortSignal): Promise<number> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const s = await boxStatus(box.url, signal);
    const t = (performance.now() - box.t0) / 1000;
    if ((s.kascades.seeding ?? 0) === n) return t;
    const bad = s.files.find((f) => f.state === 'rejected' || f.state === 'failed');
    if (bad !== undefined) throw new Error(`box: ${bad.path} is ${bad.state}: ${bad.error ?? ''}`);
    if (box.proc.exitCode !== null || box.proc.signalCode !== null) throw new Error(`the box exited: ${box.stderr().trim().slice(-600)}`);
    if (performance.now() > until) throw new Error(`box: ${s.kascades.seeding ?? 0} of ${n} seeding after ${timeoutMs / 1000} s (${JSON.stringify(s.kascades)})`);
    await sleep(everyMs, undefined, { signal });
  }
}

/** The box process as /proc shows it now. */
export interface ProcSample {
  /** Seconds since the box's spawn. */
  t: number;
  rssMiB: number;
  /** Peak RSS so far (VmHWM). */
  hwmMiB: number;
  fds: number;
  cpuS: number;
}

export function sampleBox(box: RunningBox): ProcSample {
  let rss = NaN;
  let fds = NaN;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${box.pid}/status`, 'utf8'));
    if (m !== null) rss = Number(m[1]) / 1024;
    fds = readdirSync(`/proc/${box.pid}/fd`).length;
  } catch {
    // gone: NaN figures
  }
  const p = sampleProc(box.pid);
  return { t: (performance.now() - box.t0) / 1000, rssMiB: rss, hwmMiB: p?.rssMiB ?? NaN, fds, cpuS: p?.cpu ?? NaN };
}

/** GET /metrics as a map: `name` → the value summed over its label sets, and `name{labels}` → that one value. */
export async function boxMetrics(url: string, signal: AbortSignal): Promise<Map<string, number>> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]) });
  if (res.status !== 200) throw new Error(`GET /metrics: ${res.status}`);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})? ([-+0-9.eE]+|NaN)$/.exec(line);
    if (m === null) continue;
    const v = Number(m[3]);
    out.set(m[1]!, (out.get(m[1]!) ?? 0) + v);
    if (m[2] !== undefined) out.set(`${m[1]!}${m[2]}`, v);
  }
  return out;
}
