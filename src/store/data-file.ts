// The data file a download writes into: created exclusively (never clobbering, never following a symlink),
// sized to its final length up front, opened once per session; workers write into its fd by position.

import { constants, closeSync, fdatasync, fstatSync, ftruncateSync, lstatSync, openSync, rmSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { KfetchError, fromFsError } from '../errors.js';
import { readAt } from '../server/data-file.js';

export interface DataFile {
  readonly path: string;
  readonly fd: number;
  readonly size: number;
  /** fdatasync: every write that completed before the call is durable when it resolves. */
  sync(): Promise<void>;
  /** Size and mtime now, as a checkpoint records them. */
  stat(): { size: number; mtimeMs: number; dev: number; ino: number };
  /**
   * Positional read for serving (bytes read; fewer only at end of file). Rejects once the file is closed, so a
   * response still streaming can never read through an fd number the process has reused since.
   */
  read(buf: Buffer, length: number, position: number): Promise<number>;
  /** Close the fd; if reads are in flight, once the last of them has finished. */
  close(): void;
}

const fdatasyncAsync = promisify(fdatasync);
const RW_NOFOLLOW = constants.O_RDWR | constants.O_NOFOLLOW;

/** Create `path` (must not exist) and size it to `size` bytes. */
export function createDataFile(path: string, size: number, opts: { overwrite?: boolean } = {}): DataFile {
  let fd: number;
  try {
    const flags = RW_NOFOLLOW | constants.O_CREAT | (opts.overwrite === true ? constants.O_TRUNC : constants.O_EXCL);
    fd = openSync(path, flags, 0o644);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      throw new KfetchError('KF_E_OUTPUT_EXISTS', `${path} already exists (use --overwrite, or kfetch resume)`, { file: path });
    }
    if (code === 'ELOOP') throw new KfetchError('KF_E_OUTPUT_EXISTS', `${path} is a symlink; refusing to follow it`, { file: path });
    throw fromFsError(err, path, 'cannot create the output file');
  }
  try {
    return finishOpen(fd, path, size);
  } catch (err) {
    rmSync(path, { force: true }); // we created it: a failed create leaves nothing behind
    throw err;
  }
}

/** Open an existing data file of a download being resumed; a missing file, a symlink or a non-file is refused. */
export function openDataFile(path: string, size: number): DataFile {
  let st;
  try {
    st = lstatSync(path);
  } catch (err) {
    throw new KfetchError('KF_E_DATA_MISSING', `the data file ${path} is gone (restore it, or forget the download with \`kfetch remove\` and get it again)`, {
      file: path,
      cause: err,
    });
  }
  if (st.isSymbolicLink()) throw new KfetchError('KF_E_DATA_MISSING', `the data file ${path} was replaced by a symlink`, { file: path });
  if (!st.isFile()) throw new KfetchError('KF_E_DATA_MISSING', `the data file ${path} is not a regular file`, { file: path });
  let fd: number;
  try {
    fd = openSync(path, RW_NOFOLLOW);
  } catch (err) {
    throw fromFsError(err, path, 'cannot open the data file');
  }
  return finishOpen(fd, path, size);
}

function finishOpen(fd: number, path: string, size: number): DataFile {
  try {
    // Sized up front: blocks are written by position in any order, and a truncated file shows up as a size change.
    if (fstatSync(fd).size !== size) ftruncateSync(fd, size);
  } catch (err) {
    closeSync(fd);
    throw fromFsError(err, path, `cannot size the data file to ${size} bytes`);
  }
  let closed = false;
  let reading = 0;
  let fdOpen = true;
  const closeFd = (): void => {
    if (!fdOpen) return;
    fdOpen = false;
    closeSync(fd);
  };
  return {
    path,
    fd,
    size,
    async sync(): Promise<void> {
      try {
        await fdatasyncAsync(fd);
      } catch (err) {
        throw fromFsError(err, path, 'fdatasync failed');
      }
    },
    stat() {
      const st = fstatSync(fd);
      return { size: st.size, mtimeMs: st.mtimeMs, dev: st.dev, ino: st.ino };
    },
    async read(buf: Buffer, length: number, position: number): Promise<number> {
      if (closed) throw new KfetchError('KF_E_IO', `the data file ${path} was closed`, { file: path });
      reading++;
      try {
        return await readAt(fd, buf, length, position);
      } finally {
        reading--;
        if (closed && reading === 0) closeFd();
      }
    },
    close(): void {
      if (closed) return;
      closed = true;
      if (reading === 0) closeFd();
    },
  };
}

/**
 * Say early when the disk cannot hold the rest of the download (still handled at write time: sparse files and
 * other writers make this a hint, not a promise).
 */
export function checkFreeSpace(path: string, bytesNeeded: number, marginBytes = 16 * 1024 * 1024): void {
  let free: number;
  try {
    const s = statfsSync(dirname(path));
    free = s.bavail * s.bsize;
  } catch {
    return; // no statfs here: the write path reports ENOSPC
  }
  if (free < bytesNeeded + marginBytes) {
    throw new KfetchError(
      'KF_E_DISK_FULL',
      `not enough space for ${path}: ${bytesNeeded} bytes still needed, ${free} free`,
      { file: path, detail: { needed: bytesNeeded, free } },
    );
  }
}
