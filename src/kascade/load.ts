// Reads a .kascade from disk with a hard size cap, then hands the bytes to the pure parser.
// Used by `kfetch get`, `seed`, `verify` and `add`.

import { open, stat } from 'node:fs/promises';
import { KfetchError, fromFsError } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { Kascade } from './kascade.js';
import { parseKascade, type ParseKascadeOptions } from './parse.js';

/** Options for loadKascade: the byte cap, parser bounds, and cancellation. */
export interface LoadKascadeOptions extends ParseKascadeOptions {
  /** Refuse files larger than this many bytes (default LIMITS.kascadeMaxBytes). */
  maxBytes?: number;
  signal?: AbortSignal;
}

const READ_CHUNK = 1024 * 1024;

function inputError(err: unknown, path: string): KfetchError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return new KfetchError('KF_E_INPUT', `${path}: no such file`, { file: path, cause: err });
  if (code === 'EACCES' || code === 'EPERM') return new KfetchError('KF_E_INPUT', `${path}: permission denied`, { file: path, cause: err });
  if (code === 'EISDIR') return new KfetchError('KF_E_INPUT', `${path}: is a directory, not a .kascade file`, { file: path, cause: err });
  return fromFsError(err, path, `reading ${path}`);
}

function tooLarge(path: string, size: number | string, cap: number): KfetchError {
  return new KfetchError('KF_E_KASCADE_TOO_LARGE', `${path} is ${size} bytes, more than the ${cap}-byte limit for a .kascade`, {
    file: path,
    detail: { limit: cap },
  });
}

/**
 * Load and validate the .kascade at `path`.
 * The size is checked with stat (and again with fstat on the opened file) BEFORE anything is read, and the read
 * itself stops at the cap even if the file grows meanwhile. Only regular files are read (a FIFO could block).
 * Errors: KF_E_INPUT (missing, a directory, not a regular file, unreadable), KF_E_KASCADE_TOO_LARGE, the parser's
 * codes; every one has `file` = path.
 */
export async function loadKascade(path: string, opts: LoadKascadeOptions = {}): Promise<Kascade> {
  const cap = opts.maxBytes ?? LIMITS.kascadeMaxBytes;
  opts.signal?.throwIfAborted();
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    throw inputError(err, path);
  }
  if (st.isDirectory()) throw new KfetchError('KF_E_INPUT', `${path}: is a directory, not a .kascade file`, { file: path });
  if (!st.isFile()) throw new KfetchError('KF_E_INPUT', `${path}: not a regular file`, { file: path });
  if (st.size > cap) throw tooLarge(path, st.size, cap);

  const bytes = await readCapped(path, cap, st.size, opts.signal);
  const { maxBytes: _maxBytes, signal: _signal, ...parseOpts } = opts;
  return parseKascade(bytes, path, parseOpts);
}

/** Read at most `cap` bytes of `path`; a file found to hold more is refused without reading the rest. */
async function readCapped(path: string, cap: number, sizeHint: number, signal: AbortSignal | undefined): Promise<Uint8Array> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw inputError(err, path);
  }
  try {
    // The file may have been swapped between stat and open: check what we actually opened.
    const st = await fh.stat();
    if (!st.isFile()) throw new KfetchError('KF_E_INPUT', `${path}: not a regular file`, { file: path });
    if (st.size > cap) throw tooLarge(path, st.size, cap);
    // One spare byte beyond the cap tells "exactly at the cap" from "more than the cap".
    let buf = Buffer.allocUnsafe(Math.min(Math.max(st.size, sizeHint), cap) + 1);
    let len = 0;
    for (;;) {
      signal?.throwIfAborted();
      if (len === buf.length) {
        if (len > cap) throw tooLarge(path, `more than ${cap}`, cap);
        const bigger = Buffer.allocUnsafe(Math.min(buf.length * 2, cap + 1));
        buf.copy(bigger, 0, 0, len);
        buf = bigger;
      }
      const { bytesRead } = await fh.read(buf, len, Math.min(READ_CHUNK, buf.length - len), len);
      if (bytesRead === 0) break;
      len += bytesRead;
    }
    if (len > cap) throw tooLarge(path, `more than ${cap}`, cap);
    return buf.subarray(0, len);
  } catch (err) {
    if (err instanceof KfetchError) throw err;
    if ((err as { name?: string } | undefined)?.name === 'AbortError') throw err;
    throw inputError(err, path);
  } finally {
    await fh.close();
  }
}
