// The CPU account of one download (issue 11): where the CPU of a `kfetch get` went, for the `done` event and the
// benchmark. Whole threads' CPU comes from the kernel (workers/thread-cpu.ts): the main thread is read here, the
// SHA-256 thread reports its own. Parts of a thread (a task's MD5 and writes in the workers, a commit) are busy
// time, CPU while the thread is not preempted: on a loaded machine they read high. Used by download-session.ts.

import { busyNs, threadCpuNs } from '../../workers/thread-cpu.js';

/** CPU seconds by part. `user`/`sys` are the whole process's; the parts are thread CPU; the rest is `other`. */
export interface CpuAccount {
  user: number;
  sys: number;
  /** The main thread before the session started: module loading, the state database, the data file's open. */
  startup: number;
  /** The main thread while downloading, less checkpoints: sockets, the response parser, scheduling, task dispatch, events. */
  receive: number;
  md5: number;
  sha256: number;
  /** Positional writes (and the mtime kept on the file) in the workers. */
  write: number;
  /** The checkpoints' SQLite commits on the main thread (their fdatasync runs in libuv's pool: in `other`). */
  checkpoint: number;
  /** Everything else: worker task overhead, the fdatasyncs, garbage collection and compiler threads. */
  other: number;
}

export class CpuMeter {
  private readonly mainAtStart = threadCpuNs();
  private md5Ns = 0;
  private writeNs = 0;
  private commitNs = 0;

  /** A worker task's CPU (VerifyWriteResult.cpuNs). */
  task(cpuNs: { md5: number; write: number }): void {
    this.md5Ns += cpuNs.md5;
    this.writeNs += cpuNs.write;
  }

  /** Time a synchronous part of the main thread that is not receiving (a checkpoint's commit). */
  commit<T>(fn: () => T): T {
    const t = busyNs();
    try {
      return fn();
    } finally {
      this.commitNs += busyNs() - t;
    }
  }

  /** The account now, with the SHA-256 thread's CPU seconds. */
  report(sha256Seconds: number): CpuAccount {
    const { user, system } = process.cpuUsage();
    const main = threadCpuNs();
    const s = (ns: number): number => Math.round(ns / 1e6) / 1e3;
    const parts = {
      startup: s(this.mainAtStart),
      receive: s(Math.max(0, main - this.mainAtStart - this.commitNs)),
      md5: s(this.md5Ns),
      sha256: Math.round(sha256Seconds * 1e3) / 1e3,
      write: s(this.writeNs),
      checkpoint: s(this.commitNs),
    };
    const total = (user + system) / 1e6;
    const attributed = parts.startup + parts.receive + parts.md5 + parts.sha256 + parts.write + parts.checkpoint;
    return { user: s(user * 1e3), sys: s(system * 1e3), ...parts, other: Math.round(Math.max(0, total - attributed) * 1e3) / 1e3 };
  }
}
