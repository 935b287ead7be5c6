// Worker tasks of a download: verify a block's MD5 and write it with positional writes into the session's fd,
// and hash a whole file for the final SHA-256 check. Dispatched by workers/hash.ts; imports nothing from src/.

import { createHash } from 'node:crypto';
import { fstatSync, futimesSync, readSync, writeSync } from 'node:fs';

export interface VerifyWriteTask {
  kind: 'verify-write';
  fd: number;
  /** The block's bytes: `length` bytes at `byteOffset` of this shared memory (a slot the caller holds). */
  shared: SharedArrayBuffer;
  byteOffset: number;
  length: number;
  offset: number;
  expectedMd5: string;
  /**
   * The mtime (whole seconds) to put back after writing: the data file keeps one known mtime while kfetch owns it,
   * so any outside change (a new mtime) is seen at resume and triggers re-verification.
   */
  mtimeSec: number;
  /** Test-only crash point (`mid-write`): SIGKILL the process between two partial writes. */
  crashMidWrite?: boolean;
}

export type VerifyWriteResult =
  | { kind: 'verify-write'; ok: true }
  | { kind: 'verify-write'; ok: false; reason: 'hash'; actualMd5: string }
  | { kind: 'verify-write'; ok: false; reason: 'io'; code: string; message: string; written: number };

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

/** Hash, compare, and only on a match write every byte (looping over short writes). Never throws for I/O. */
export function verifyWrite(t: VerifyWriteTask): VerifyWriteResult {
  const buf = Buffer.from(t.shared, t.byteOffset, t.length);
  const actual = createHash('md5').update(buf).digest('hex');
  if (actual !== t.expectedMd5) return { kind: 'verify-write', ok: false, reason: 'hash', actualMd5: actual };
  let done = 0;
  try {
    while (done < t.length) {
      const len = t.crashMidWrite === true && done === 0 ? Math.max(1, t.length >> 1) : t.length - done;
      const n = writeSync(t.fd, buf, done, len, t.offset + done);
      if (n <= 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
      done += n;
      if (t.crashMidWrite === true && done < t.length) process.kill(process.pid, 'SIGKILL');
    }
    futimesSync(t.fd, Date.now() / 1000, t.mtimeSec);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { kind: 'verify-write', ok: false, reason: 'io', code: e.code ?? 'EIO', message: e.message, written: done };
  }
  return { kind: 'verify-write', ok: true };
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
