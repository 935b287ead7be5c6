// The calling thread's own CPU time, for the download's CPU account (issue 11): Linux's per-thread schedstat
// (`/proc/thread-self/schedstat`, the nanoseconds the thread has run), read through one fd kept per thread.
// The kernel brings a running thread's figure up to date only at scheduler ticks and switches, so it is right
// over a whole run (to a tick) but not for a task of a millisecond: per-task parts are timed with `busyNs`, the
// addon's exact thread clock where it is built.
// Used by the worker threads (workers/block-write.ts, workers/sha256-stream.ts) and the main thread.

import { openSync, readSync } from 'node:fs';
import { addonThreadCpuClock } from './md5-multi.js';

const exact = addonThreadCpuClock();
let fd: number | undefined;
const buf = Buffer.alloc(64);

/** Nanoseconds of CPU this thread has used (the addon's exact clock, else schedstat), or 0 where neither says. */
export function threadCpuNs(): number {
  if (exact !== undefined) return exact();
  if (fd === undefined) {
    try {
      fd = openSync('/proc/thread-self/schedstat', 'r');
    } catch {
      fd = -1;
    }
  }
  if (fd < 0) return 0;
  try {
    const n = readSync(fd, buf, 0, buf.length, 0);
    const space = buf.indexOf(0x20);
    return Number(buf.toString('latin1', 0, space < 0 || space > n ? n : space)) || 0;
  } catch {
    return 0;
  }
}

/**
 * A clock for timing a part of a thread's work (hashing, page-cache writes, a commit), in ns: the thread's own CPU
 * clock where the md5x addon is built (CLOCK_THREAD_CPUTIME_ID, exact), else the monotonic clock (busy time: CPU
 * while the thread is not preempted, so it reads high on a loaded machine).
 */
export const busyNs: () => number = exact ?? ((): number => Number(process.hrtime.bigint()));

/** Whether `busyNs` is the thread's CPU clock (true) or wall time (false). */
export const busyIsCpu = exact !== undefined;
