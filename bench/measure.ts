// Runs one child process for a benchmark and measures it: wall time, peak RSS (VmHWM) and CPU seconds
// (utime + stime), polled from /proc every ~50 ms until it exits. Every child is registered so run.ts can kill all,
// and so is every undo of a change outside the processes (atCleanup: the shaped swarm's qdisc).

import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const CLK_TCK = 100;
const live = new Map<ChildProcess, NodeJS.Signals>();

/**
 * Register a child started elsewhere (servers, seeders) so `killAllChildren` reaches it. `signal` is how to end
 * it: SIGKILL, except for a master that must take its workers down (nginx: SIGTERM).
 */
export function trackChild(proc: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): ChildProcess {
  live.set(proc, signal);
  proc.once('exit', () => live.delete(proc));
  return proc;
}

const cleanups = new Set<() => void>();

/**
 * Register a synchronous undo of something outside the processes (the shaped swarm's `tc` qdisc on `lo`), run by
 * `killAllChildren` (after a scenario, on SIGINT/SIGTERM, on a crash) unless the returned function removed it first.
 */
export function atCleanup(undo: () => void): () => void {
  cleanups.add(undo);
  return () => void cleanups.delete(undo);
}

/** Kill every child still running and run the registered undos (on error, SIGINT, and at the end of a run). */
export function killAllChildren(): void {
  for (const [p, signal] of live) {
    if (p.exitCode === null && p.signalCode === null) p.kill(signal);
  }
  live.clear();
  for (const undo of [...cleanups]) {
    cleanups.delete(undo);
    try {
      undo();
    } catch {
      // best effort: the others must still run
    }
  }
}

/** What a measured child did. */
export interface Measured {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** From spawn to exit. */
  seconds: number;
  /** Peak resident set (VmHWM), MiB; 0 if /proc could not be read. */
  peakRssMiB: number;
  /** User + system CPU seconds at the last poll before exit, and the two parts. */
  cpuSeconds: number;
  userSeconds: number;
  sysSeconds: number;
  stdout: string;
  stderr: string;
}

export interface MeasureOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Killed (SIGKILL) after this long; the result then has signal SIGKILL. */
  timeoutMs: number;
  /** Called with each complete stdout line and the ms since spawn; may return true to keep nothing of it. */
  onLine?: (line: string, ms: number, proc: ChildProcess) => void;
  /** Keep at most this many characters of stdout (default 1 MiB). */
  keepStdout?: number;
}

/** Read peak RSS (MiB) and CPU seconds (all, user, system) of `pid` from /proc, or undefined once it is gone. */
export function sampleProc(pid: number): { rssMiB: number; cpu: number; user: number; sys: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    // Fields after the `(comm)` which may contain spaces: state is field 3, utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const user = Number(rest[11]) / CLK_TCK;
    const sys = Number(rest[12]) / CLK_TCK;
    return { rssMiB: hwm === null ? 0 : Number(hwm[1]) / 1024, cpu: user + sys, user, sys };
  } catch {
    return undefined;
  }
}

/** Spawn `cmd args`, poll its /proc entries, and resolve when it exits (or is killed at the timeout). */
export function runMeasured(cmd: string, args: string[], o: MeasureOptions): Promise<Measured> {
  const t0 = performance.now();
  const proc = trackChild(
    spawn(cmd, args, { env: { ...process.env, ...o.env }, cwd: o.cwd, stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  const keep = o.keepStdout ?? 1024 * 1024;
  let stdout = '';
  let stderr = '';
  let partial = '';
  let peak = 0;
  let cpu = 0;
  let user = 0;
  let sys = 0;
  const poll = (): void => {
    if (proc.pid === undefined) return;
    const s = sampleProc(proc.pid);
    if (s === undefined) return;
    peak = Math.max(peak, s.rssMiB);
    if (s.cpu >= cpu) ({ cpu, user, sys } = s);
  };
  const timer = setInterval(poll, 50);
  const killer = setTimeout(() => proc.kill('SIGKILL'), o.timeoutMs);
  killer.unref();
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    if (stdout.length < keep) stdout += d;
    if (o.onLine === undefined) return;
    partial += d;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      o.onLine(line, performance.now() - t0, proc);
    }
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-8000)));
  return new Promise((resolve, reject) => {
    proc.once('error', (err) => {
      clearInterval(timer);
      clearTimeout(killer);
      reject(err);
    });
    proc.once('exit', (code, signal) => {
      const seconds = (performance.now() - t0) / 1000;
      clearInterval(timer);
      clearTimeout(killer);
      // stdout may still hold buffered data: wait for its end (bounded) before resolving.
      const done = (): void => resolve({ code, signal, seconds, peakRssMiB: peak, cpuSeconds: cpu, userSeconds: user, sysSeconds: sys, stdout, stderr });
      if (proc.stdout!.readableEnded) return done();
      const t = setTimeout(done, 2000);
      proc.stdout!.once('end', () => {
        clearTimeout(t);
        done();
      });
    });
    // Poll right away too: short children may exit before the first interval.
    setImmediate(poll);
  });
}

/** Median of a non-empty list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** `pid` and its descendants (nginx's workers under its master), from /proc. */
export function processTree(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parentOf.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) for (const [child, parent] of parentOf) if (parent === tree[i]) tree.push(child);
  return tree;
}

/** User and system CPU seconds of all of `pids` now (processes already gone count 0). */
export function cpuOf(pids: readonly number[]): { user: number; sys: number } {
  let user = 0;
  let sys = 0;
  for (const pid of pids) {
    const s = sampleProc(pid);
    user += s?.user ?? 0;
    sys += s?.sys ?? 0;
  }
  return { user, sys };
}
