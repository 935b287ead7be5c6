// The calling thread's own CPU time, for the download's CPU account (issue 11): Linux's per-thread schedstat
// (`/proc/thread-self/schedstat`, the nanoseconds the thread has run) where the md5x addon's exact clock is not built.
// The kernel brings a running thread's figure up to date only at scheduler ticks and switches, so it is right
// over a whole run (to a tick) but not for a task of a millisecond: per-task parts are timed with `busyNs`, the
// addon's exact thread clock where it is built.
// Used by the worker threads (workers/block-write.ts, workers/sha256-stream.ts) and the main thread.

import { readFileSync } from 'node:fs';
import { addonThreadCpuClock } from './md5-multi.js';

const exact = addonThreadCpuClock();

/** Nanoseconds of CPU this thread has used (the addon's exact clock, else schedstat), or 0 where neither says. */
export function threadCpuNs(): number {
  if (exact !== undefined) return exact();
  try {
    // Read whole each time (an fd kept per thread would leak as piscina retires idle workers).
    const text = readFileSync('/proc/thread-self/schedstat', 'latin1');
    return Number(text.slice(0, text.indexOf(' '))) || 0;
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
