// Worker tasks of a download: verify a block's MD5 and write it with positional writes into the session's fd,
// and hash a whole file for the final SHA-256 check. Dispatched by workers/hash.ts; imports nothing from src/.

import { createHash } from 'node:crypto';
import { fstatSync, futimesSync, readSync, writeSync } from 'node:fs';
import { busyNs } from './thread-cpu.js';

export interface VerifyWriteTask {
  kind: 'verify-write';
  fd: number;
  /** The blocks' bytes, back to back from `byteOffset` of this shared memory (a slot the caller holds). */
  shared: SharedArrayBuffer;
  byteOffset: number;
  /** Consecutive blocks of the file, in order: where each goes and the MD5 it must have. */
  blocks: readonly { offset: number; length: number; expectedMd5: string }[];
  /**
   * The mtime (whole seconds) to put back after writing: the data file keeps one known mtime while kfetch owns it,
   * so any outside change (a new mtime) is seen at resume and triggers re-verification.
   */
  mtimeSec: number;
  /** Test-only crash point (`mid-write`): SIGKILL the process between two partial writes. */
  crashMidWrite?: boolean;
}

export type BlockOutcome = { status: 'written' } | { status: 'bad'; actualMd5: string } | { status: 'unwritten' };

export interface VerifyWriteResult {
  kind: 'verify-write';
  /** Per block: written; bad (its MD5 differed, never written); or unwritten because a write failed (see `io`). */
  blocks: BlockOutcome[];
  /** A write failed: blocks `written` before it are on disk, the good ones after it are `unwritten`. */
  io?: { code: string; message: string };
  /** Time this thread spent on the task's MD5s and on its writes (ns, busy time; the CPU account of issue 11). */
  cpuNs: { md5: number; write: number };
}

/** Several runs verified and written in one worker task: fewer tasks and one mtime restore (issue 11). */
export interface VerifyWriteBatchTask {
  kind: 'verify-write-batch';
  fd: number;
  /** Each run: consecutive blocks from its own place in shared memory (`blocks`, `shared`, `byteOffset` as above). */
  runs: readonly Pick<VerifyWriteTask, 'shared' | 'byteOffset' | 'blocks'>[];
  mtimeSec: number;
  /** Test-only crash point (`mid-write`): SIGKILL the process between two partial writes of the first run. */
  crashMidWrite?: boolean;
}

export interface VerifyWriteBatchResult {
  kind: 'verify-write-batch';
  /** Per run, per block: as VerifyWriteResult. After a failed write, every later run's blocks are `unwritten`. */
  runs: BlockOutcome[][];
  io?: { code: string; message: string };
  cpuNs: { md5: number; write: number };
}

export interface Sha256FileTask {
  kind: 'sha256-file';
  fd: number;
  size: number;
}

export interface Sha256FileResult {
  kind: 'sha256-file';
  hex: string;
  /** Bytes actually read; less than `size` means the file is shorter than it should be. */
  read: number;
}

/**
 * Hash every block, compare, and write only blocks that match (a whole matching run in one positional write,
 * short writes looped). Never throws for I/O: a failed write is reported in `io`.
 */
export function verifyWrite(t: VerifyWriteTask, pinMtime = true): VerifyWriteResult {
  const c0 = busyNs();
  const out: VerifyWriteResult['blocks'] = [];
  let at = t.byteOffset;
  let allOk = true;
  for (const b of t.blocks) {
    const actual = createHash('md5').update(Buffer.from(t.shared, at, b.length)).digest('hex');
    if (actual === b.expectedMd5) out.push({ status: 'written' });
    else {
      out.push({ status: 'bad', actualMd5: actual });
      allOk = false;
    }
    at += b.length;
  }
  const c1 = busyNs();
  const cpuNs = (): { md5: number; write: number } => ({ md5: c1 - c0, write: busyNs() - c1 });
  // Runs of consecutive good blocks, each written with one positional write.
  const runs: { first: number; last: number }[] = [];
  if (allOk) runs.push({ first: 0, last: t.blocks.length - 1 });
  else {
    for (let k = 0; k < out.length; k++) {
      if (out[k]!.status !== 'written') continue;
      const prev = runs[runs.length - 1];
      if (prev !== undefined && prev.last === k - 1) prev.last = k;
      else runs.push({ first: k, last: k });
    }
  }
  let slotAt = t.byteOffset;
  const slotStart: number[] = [];
  for (const b of t.blocks) {
    slotStart.push(slotAt);
    slotAt += b.length;
  }
  for (const r of runs) {
    const first = t.blocks[r.first]!;
    const last = t.blocks[r.last]!;
    const length = last.offset + last.length - first.offset;
    const buf = Buffer.from(t.shared, slotStart[r.first]!, length);
    let done = 0;
    try {
      while (done < length) {
        const len = t.crashMidWrite === true && done === 0 ? Math.max(1, length >> 1) : length - done;
        const n = writeSync(t.fd, buf, done, len, first.offset + done);
        if (n <= 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
        done += n;
        if (t.crashMidWrite === true && done < length) process.kill(process.pid, 'SIGKILL');
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // This run and every later one are not (wholly) on disk: report them as not written.
      for (let k = r.first; k < out.length; k++) if (out[k]!.status === 'written') out[k] = { status: 'unwritten' };
      return { kind: 'verify-write', blocks: out, io: { code: e.code ?? 'EIO', message: e.message }, cpuNs: cpuNs() };
    }
  }
  if (runs.length > 0 && pinMtime) futimesSync(t.fd, Date.now() / 1000, t.mtimeSec);
  return { kind: 'verify-write', blocks: out, cpuNs: cpuNs() };
}

/**
 * Verify and write each run as `verifyWrite` does, then put the file's mtime back once. A failed write ends the
 * task: the runs after it are neither hashed nor written (`unwritten`, fetched again).
 */
export function verifyWriteBatch(t: VerifyWriteBatchTask): VerifyWriteBatchResult {
  const out: BlockOutcome[][] = [];
  const cpuNs = { md5: 0, write: 0 };
  let io: VerifyWriteBatchResult['io'];
  let wrote = false;
  t.runs.forEach((run, k) => {
    if (io !== undefined) {
      out.push(run.blocks.map(() => ({ status: 'unwritten' })));
      return;
    }
    const r = verifyWrite(
      { kind: 'verify-write', fd: t.fd, mtimeSec: t.mtimeSec, ...run, ...(k === 0 && t.crashMidWrite === true ? { crashMidWrite: true } : {}) },
      false,
    );
    out.push(r.blocks);
    io = r.io;
    cpuNs.md5 += r.cpuNs.md5;
    cpuNs.write += r.cpuNs.write;
    if (r.blocks.some((b) => b.status === 'written')) wrote = true;
  });
  if (wrote) {
    const t0 = busyNs();
    try {
      futimesSync(t.fd, Date.now() / 1000, t.mtimeSec);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      io ??= { code: e.code ?? 'EIO', message: e.message };
    }
    cpuNs.write += busyNs() - t0;
  }
  return { kind: 'verify-write-batch', runs: out, ...(io === undefined ? {} : { io }), cpuNs };
}

/** SHA-256 of the first `size` bytes of an open file, read with positional reads in 4 MiB steps. */
export function sha256File(t: Sha256FileTask): Sha256FileResult {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(Math.min(4 * 1024 * 1024, Math.max(t.size, 1)));
  let pos = 0;
  while (pos < t.size) {
    const n = readSync(t.fd, buf, 0, Math.min(buf.length, t.size - pos), pos);
    if (n === 0) break;
    h.update(buf.subarray(0, n));
    pos += n;
  }
  // fstat keeps the worker honest if the file shrank while hashing.
  if (fstatSync(t.fd).size < t.size) pos = Math.min(pos, fstatSync(t.fd).size);
  return { kind: 'sha256-file', hex: h.digest('hex'), read: pos };
}
