// Worker tasks of a download: verify a block's MD5 and write it with positional writes into the session's fd,
// and hash a whole file for the final SHA-256 check. Dispatched by workers/hash.ts; imports nothing from src/.

import { createHash } from 'node:crypto';
import { fstatSync, futimesSync, readSync, writeSync } from 'node:fs';
import { verifyMany } from './md5-multi.js';

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

/**
 * Hash every block, compare, and write only blocks that match (a whole matching run in one positional write,
 * short writes looped). Never throws for I/O: a failed write is reported in `io`.
 */
export function verifyWrite(t: VerifyWriteTask): VerifyWriteResult {
  const out: VerifyWriteResult['blocks'] = [];
  // All the task's blocks hashed in one call (one per SIMD lane with the md5x addon), then compared as bytes.
  const n = t.blocks.length;
  const d = digestScratch(n);
  const views: Buffer[] = new Array<Buffer>(n);
  let at = t.byteOffset;
  for (let k = 0; k < n; k++) {
    const b = t.blocks[k]!;
    views[k] = Buffer.from(t.shared, at, b.length);
    // An expected hash that is not 32 hex digits never matches, whatever bytes its slot of `expected` holds.
    d.valid[k] = b.expectedMd5.length === 32 && d.expected.write(b.expectedMd5, 16 * k, 16, 'hex') === 16 ? 1 : 0;
    at += b.length;
  }
  verifyMany(views, d.expected, d.actual, d.matched);
  let allOk = true;
  for (let k = 0; k < n; k++) {
    if (d.matched[k] === 1 && d.valid[k] === 1) out.push({ status: 'written' });
    else {
      out.push({ status: 'bad', actualMd5: d.actual.toString('hex', 16 * k, 16 * k + 16) });
      allOk = false;
    }
  }
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
      return { kind: 'verify-write', blocks: out, io: { code: e.code ?? 'EIO', message: e.message } };
    }
  }
  if (runs.length > 0) futimesSync(t.fd, Date.now() / 1000, t.mtimeSec);
  return { kind: 'verify-write', blocks: out };
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
