// The calling thread's own CPU time, for the download's CPU account (issue 11): Linux's per-thread schedstat
// (`/proc/thread-self/schedstat`, the nanoseconds the thread has run), read through one fd kept per thread.
// The kernel brings a running thread's figure up to date only at scheduler ticks and switches, so it is right
// over a whole run (to a tick) but not for a task of a millisecond: per-task parts are timed with `busyNs`.
// Used by the worker threads (workers/block-write.ts, workers/sha256-stream.ts) and the main thread.

import { openSync, readSync } from 'node:fs';

let fd: number | undefined;
const buf = Buffer.alloc(64);

/** Nanoseconds of CPU this thread has used, or 0 where the kernel does not say (not Linux, no schedstat). */
export function threadCpuNs(): number {
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

/** A monotonic clock in ns, for timing a part of a thread's work that does not block (hashing, page-cache writes). */
export function busyNs(): number {
  return Number(process.hrtime.bigint());
}
