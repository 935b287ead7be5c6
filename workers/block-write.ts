// Worker tasks of a download: verify a block's MD5 and write it with positional writes into the session's fd,
// and hash a whole file for the final SHA-256 check. Dispatched by workers/hash.ts; imports nothing from src/.

import { createHash } from 'node:crypto';
import { fstatSync, futimesSync, readSync, writeSync } from 'node:fs';
import { verifyMany } from './md5-multi.js';
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
  /** Per run, per block: as VerifyWriteResult. After a failed write, the good blocks of every later run are `unwritten`. */
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

/** Per-thread scratch for one task's digests (expected and actual, 16 bytes a block) and flags, grown on demand. */
let scratch: { expected: Buffer; actual: Buffer; matched: Uint8Array; valid: Uint8Array } | undefined;
function digestScratch(n: number): NonNullable<typeof scratch> {
  if (scratch === undefined || scratch.matched.length < n) {
    const cap = Math.max(n, 64);
    scratch = { expected: Buffer.alloc(16 * cap), actual: Buffer.alloc(16 * cap), matched: new Uint8Array(cap), valid: new Uint8Array(cap) };
  }
  return scratch;
}

type Run = Pick<VerifyWriteTask, 'shared' | 'byteOffset' | 'blocks'>;

/**
 * MD5 of every block of every run in one call (one block per SIMD lane with the md5x addon), compared as bytes
 * with its expected digest. Per run, per block: `written` (matched: to be written) or `bad`.
 */
function check(runs: readonly Run[]): BlockOutcome[][] {
  let n = 0;
  for (const r of runs) n += r.blocks.length;
  const d = digestScratch(n);
  const views: Buffer[] = new Array<Buffer>(n);
  let k = 0;
  for (const r of runs) {
    let at = r.byteOffset;
    for (const b of r.blocks) {
      views[k] = Buffer.from(r.shared, at, b.length);
      // An expected hash that is not 32 hex digits never matches, whatever bytes its slot of `expected` holds.
      d.valid[k] = b.expectedMd5.length === 32 && d.expected.write(b.expectedMd5, 16 * k, 16, 'hex') === 16 ? 1 : 0;
      at += b.length;
      k++;
    }
  }
  verifyMany(views, d.expected, d.actual, d.matched);
  k = 0;
  return runs.map((r) =>
    r.blocks.map((): BlockOutcome => {
      const o: BlockOutcome = d.matched[k] === 1 && d.valid[k] === 1 ? { status: 'written' } : { status: 'bad', actualMd5: d.actual.toString('hex', 16 * k, 16 * k + 16) };
      k++;
      return o;
    }),
  );
}

/**
 * Write the blocks of `run` that matched (`out`, changed in place): each stretch of consecutive good blocks in one
 * positional write, short writes looped. On a failed write, that stretch and every later good block become
 * `unwritten` and the error is returned.
 */
function writeGood(fd: number, run: Run, out: BlockOutcome[], crashMidWrite: boolean): { code: string; message: string } | undefined {
  const stretches: { first: number; last: number }[] = [];
  for (let k = 0; k < out.length; k++) {
    if (out[k]!.status !== 'written') continue;
    const prev = stretches[stretches.length - 1];
    if (prev !== undefined && prev.last === k - 1) prev.last = k;
    else stretches.push({ first: k, last: k });
  }
  const slotStart: number[] = [];
  let slotAt = run.byteOffset;
  for (const b of run.blocks) {
    slotStart.push(slotAt);
    slotAt += b.length;
  }
  for (const r of stretches) {
    const first = run.blocks[r.first]!;
    const last = run.blocks[r.last]!;
    const length = last.offset + last.length - first.offset;
    const buf = Buffer.from(run.shared, slotStart[r.first]!, length);
    let done = 0;
    try {
      while (done < length) {
        const len = crashMidWrite && done === 0 ? Math.max(1, length >> 1) : length - done;
        const n = writeSync(fd, buf, done, len, first.offset + done);
        if (n <= 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
        done += n;
        if (crashMidWrite && done < length) process.kill(process.pid, 'SIGKILL');
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // This stretch and every later one are not (wholly) on disk: report them as not written.
      for (let k = r.first; k < out.length; k++) if (out[k]!.status === 'written') out[k] = { status: 'unwritten' };
      return { code: e.code ?? 'EIO', message: e.message };
    }
  }
  return undefined;
}

/**
 * Hash every block, compare, and write only blocks that match (a whole matching run in one positional write,
 * short writes looped), then put the file's mtime back (unless `pinMtime` is false). Never throws for I/O: a
 * failed write is reported in `io`. One run: `verifyWriteBatch` with one run.
 */
export function verifyWrite(t: VerifyWriteTask, pinMtime = true): VerifyWriteResult {
  const r = batch({ kind: 'verify-write-batch', fd: t.fd, mtimeSec: t.mtimeSec, runs: [t], ...(t.crashMidWrite === true ? { crashMidWrite: true } : {}) }, pinMtime);
  return { kind: 'verify-write', blocks: r.runs[0]!, ...(r.io === undefined ? {} : { io: r.io }), cpuNs: r.cpuNs };
}

/**
 * Verify every block of every run (one multi-buffer MD5 call for the whole task), write the good ones run by run,
 * then put the file's mtime back once. A failed write ends the task: the good blocks of the runs after it are not
 * written (`unwritten`, fetched again).
 */
export function verifyWriteBatch(t: VerifyWriteBatchTask): VerifyWriteBatchResult {
  return batch(t, true);
}

function batch(t: VerifyWriteBatchTask, pinMtime: boolean): VerifyWriteBatchResult {
  const c0 = busyNs();
  const out = check(t.runs);
  const c1 = busyNs();
  let io: VerifyWriteBatchResult['io'];
  let wrote = false;
  t.runs.forEach((run, k) => {
    const blocks = out[k]!;
    if (io !== undefined) {
      for (let j = 0; j < blocks.length; j++) if (blocks[j]!.status === 'written') blocks[j] = { status: 'unwritten' };
      return;
    }
    io = writeGood(t.fd, run, blocks, k === 0 && t.crashMidWrite === true);
    if (blocks.some((b) => b.status === 'written')) wrote = true;
  });
  if (wrote && pinMtime) {
    try {
      futimesSync(t.fd, Date.now() / 1000, t.mtimeSec);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      io ??= { code: e.code ?? 'EIO', message: e.message };
    }
  }
  return { kind: 'verify-write-batch', runs: out, ...(io === undefined ? {} : { io }), cpuNs: { md5: c1 - c0, write: busyNs() - c1 } };
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
