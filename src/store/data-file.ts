// Every data file kfetch opens: created or opened read-write for a download (sized up front, workers write into its
// fd by position), opened read-only for `kfetch seed`, or opened on demand by the seeding box; never through a
// symlink. Bytes are served through here only: after every read the fd is checked against what the file looked like
// when its blocks were verified (size, device, inode, links; and mtime and ctime once nothing of ours writes it), so
// bytes of a file rewritten, truncated or replaced under a seeder never leave (issue 10 point 1). Used by the client
// engine, `kfetch seed`, the block server's library and the box.

import {
  close,
  closeSync,
  constants,
  fdatasync,
  fstat,
  fstatSync,
  ftruncateSync,
  lstatSync,
  open,
  openSync,
  read,
  rmSync,
  type Stats,
} from 'node:fs';
import { promisify } from 'node:util';
import { KfetchError, fromFsError } from '../errors.js';

/** Opens and positional reads done through this module since the process started (tests compare before/after). */
export const dataFileCounters = { opens: 0, reads: 0 };

/** What a data file must still look like for its verified blocks to be served; an undefined field is not checked. */
export interface FileIdentity {
  size: number;
  mtimeMs?: number | undefined;
  /** Catches a rewrite whose mtime was put back (utimes cannot set ctime); known only from an fstat of ours. */
  ctimeMs?: number | undefined;
  dev?: number | undefined;
  ino?: number | undefined;
}

/**
 * The bytes asked for are not held any more: the data file shrank or changed under a read. The block server answers
 * 400 "not held now" (SPEC §3), so a downloader takes the block elsewhere without counting a server error against
 * an honest seeder (issue 10 point 9).
 */
export class NotHeldNowError extends Error {}

/** The data file no longer matches what was verified; `reason` says how. */
export class DataChangedError extends NotHeldNowError {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
  }
}

/** How `st` differs from `want`, or undefined if it matches. A deleted file (no links left) differs. */
export function fileDifference(st: Pick<Stats, 'size' | 'mtimeMs' | 'ctimeMs' | 'dev' | 'ino' | 'nlink' | 'isFile'>, want: FileIdentity): string | undefined {
  if (!st.isFile()) return 'not a regular file';
  if (st.nlink === 0) return 'deleted';
  if (st.size !== want.size) return `size is ${st.size}, expected ${want.size}`;
  if (want.mtimeMs !== undefined && st.mtimeMs !== want.mtimeMs) return 'modified (mtime changed)';
  if (want.dev !== undefined && want.ino !== undefined && (st.dev !== want.dev || st.ino !== want.ino)) return 'replaced (device/inode changed)';
  if (want.ctimeMs !== undefined && st.ctimeMs !== want.ctimeMs) return 'modified (rewritten in place)';
  return undefined;
}

/** The identity of a file as fstat shows it now, every field checked. */
export function identityOf(st: Pick<Stats, 'size' | 'mtimeMs' | 'ctimeMs' | 'dev' | 'ino'>): Required<FileIdentity> {
  return { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, dev: st.dev, ino: st.ino };
}

const fstatAsync = promisify(fstat);
const openAsync = promisify(open);
const closeAsync = promisify(close);
const fdatasyncAsync = promisify(fdatasync);
const RW_NOFOLLOW = constants.O_RDWR | constants.O_NOFOLLOW;
/** O_NONBLOCK: a FIFO put in the data file's place cannot hang the open. */
const RO_NOFOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * Read `length` bytes at `position` of `fd` into `buf` (from offset 0), looping over short reads. Resolves with the
 * bytes read: fewer than `length` only at end of file. Not for serving (see readChecked): for hashing and tests.
 */
export async function readAt(fd: number, buf: Buffer, length: number, position: number): Promise<number> {
  let done = 0;
  while (done < length) {
    dataFileCounters.reads++;
    const n = await new Promise<number>((resolve, reject) => {
      read(fd, buf, done, length - done, position + done, (err, bytesRead) => (err ? reject(err) : resolve(bytesRead)));
    });
    if (n === 0) break;
    done += n;
  }
  return done;
}

/**
 * The read every served byte goes through: `length` bytes at `position`, then the fd is checked against `want`.
 * Checked after the read, so a change before or during it shows, and those bytes are not sent. Rejects with
 * DataChangedError for a changed file or a short read (the file is shorter than verified). One promise per call:
 * the positional reads chain by callback, and the check is an fstat on the loop thread right as the last read
 * completes (an fstat of an open fd never waits for the disk; one more threadpool round trip per served chunk
 * cost more CPU than the syscall itself).
 */
export function readChecked(fd: number, path: string, want: FileIdentity, buf: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let done = 0;
    const step = (): void => {
      dataFileCounters.reads++;
      read(fd, buf, done, length - done, position + done, (err, n) => {
        if (err !== null) return reject(err);
        done += n;
        if (n > 0 && done < length) return step();
        let diff: string | undefined;
        try {
          diff = fileDifference(fstatSync(fd), want);
        } catch (e) {
          return reject(e as Error);
        }
        if (diff !== undefined) return reject(new DataChangedError(path, diff));
        if (done < length) return reject(new DataChangedError(path, `short read at ${position + done}: the file is shorter than expected`));
        resolve(done);
      });
    };
    step();
  });
}

/**
 * Open `path` read-only (never through a symlink) and check it against `want`; the box opens a complete file this
 * way when a request first needs it. Rejects with DataChangedError when it does not match (or is gone).
 */
export async function openMatching(path: string, want: FileIdentity): Promise<{ fd: number; stat: Stats }> {
  let fd: number;
  try {
    dataFileCounters.opens++;
    fd = await openAsync(path, RO_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DataChangedError(path, 'deleted');
    if (code === 'ELOOP') throw new DataChangedError(path, 'replaced by a symlink');
    throw err;
  }
  try {
    const stat = await fstatAsync(fd);
    const diff = fileDifference(stat, want);
    if (diff !== undefined) throw new DataChangedError(path, diff);
    return { fd, stat };
  } catch (err) {
    await closeAsync(fd).catch(() => undefined);
    throw err;
  }
}

export interface DataFile {
  readonly path: string;
  readonly fd: number;
  readonly size: number;
  /** fdatasync: every write that completed before the call is durable when it resolves. */
  sync(): Promise<void>;
  /** Size and mtime now, as a checkpoint records them. */
  stat(): { size: number; mtimeMs: number; dev: number; ino: number };
  /**
   * Positional read for serving, through readChecked: resolves with `length` bytes, or rejects with DataChangedError
   * when the file changed. Rejects once the file is closed, so a response still streaming can
   * never read through an fd number the process has reused since.
   */
  read(buf: Buffer, length: number, position: number): Promise<number>;
  /**
   * Nothing writes the file any more (its download is complete and checked): from now on reads also check mtime
   * and ctime as they are now, so a rewrite in place is caught. Until then they check size, device, inode and
   * links only, which our own writes leave alone. A file opened read-only is sealed from the start.
   */
  seal(): void;
  /** Close the fd; if reads are in flight, once the last of them has finished. */
  close(): void;
}

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
    return sizedDataFile(fd, path, size);
  } catch (err) {
    rmSync(path, { force: true }); // we created it: a failed create leaves nothing behind
    throw err;
  }
}

/**
 * Open a data file read-only to hash it (recheck.ts, the box's claim): never through a symlink, never hanging on a
 * FIFO put in its place (O_NONBLOCK), a regular file or KF_E_DATA_MISSING naming the path. Returns the fd.
 */
export function openToVerify(path: string): number {
  let fd: number;
  try {
    fd = openSync(path, RO_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new KfetchError('KF_E_DATA_MISSING', `the data file ${path} is gone (restore it, or forget the download with \`kfetch remove\` and get it again)`, {
        file: path,
        cause: err,
      });
    }
    if (code === 'ELOOP') throw new KfetchError('KF_E_DATA_MISSING', `the data file ${path} was replaced by a symlink`, { file: path });
    throw fromFsError(err, path, 'cannot open the data file');
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    throw new KfetchError('KF_E_DATA_MISSING', `the data file ${path} is not a regular file`, { file: path });
  }
  return fd;
}

/**
 * Open an existing data file of a download being resumed; a missing file, a symlink or a non-file is refused. With
 * `expect` (the file recheck.ts checked), a different file found at the path is refused before it is sized.
 */
export function openDataFile(path: string, size: number, expect?: { dev: number; ino: number }): DataFile {
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
  if (expect !== undefined) {
    const now = fstatSync(fd);
    if (now.dev !== expect.dev || now.ino !== expect.ino) {
      closeSync(fd);
      throw new KfetchError('KF_E_IO', `the data file ${path} was replaced while it was verified; nothing was recorded: run the command again`, { file: path });
    }
  }
  return sizedDataFile(fd, path, size);
}

/**
 * Open a data file to seed as it is: read-only, never through a symlink, a regular file of exactly `expectedSize`
 * bytes (it is never resized). Errors name the path: KF_E_DATA_MISSING for a missing file, a symlink or a
 * non-regular file; KF_E_INPUT for a wrong size.
 */
export async function openDataFileToSeed(path: string, expectedSize: number): Promise<DataFile> {
  let fd: number;
  try {
    dataFileCounters.opens++;
    fd = await openAsync(path, RO_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') {
      throw new KfetchError('KF_E_DATA_MISSING', 'data file is a symlink; refusing to follow it', { file: path, cause: err });
    }
    throw fromFsError(err, path, 'opening data file');
  }
  try {
    const st = await fstatAsync(fd);
    if (!st.isFile()) throw new KfetchError('KF_E_DATA_MISSING', 'data file is not a regular file', { file: path });
    if (st.size !== expectedSize) {
      throw new KfetchError('KF_E_INPUT', `data file has ${st.size} bytes but the kascade says filesize ${expectedSize}`, {
        file: path,
        detail: { size: st.size, filesize: expectedSize },
      });
    }
    const f = dataFileOn(fd, path, st);
    f.seal();
    return f;
  } catch (err) {
    await closeAsync(fd).catch(() => undefined);
    throw err instanceof KfetchError ? err : fromFsError(err, path, 'checking data file');
  }
}

function sizedDataFile(fd: number, path: string, size: number): DataFile {
  let st: Stats;
  try {
    // Sized up front: blocks are written by position in any order, and a truncated file shows up as a size change.
    if (fstatSync(fd).size !== size) ftruncateSync(fd, size);
    st = fstatSync(fd);
  } catch (err) {
    closeSync(fd);
    throw fromFsError(err, path, `cannot size the data file to ${size} bytes`);
  }
  return dataFileOn(fd, path, st);
}

/** The DataFile on an open fd whose stat at open was `opened`. */
function dataFileOn(fd: number, path: string, opened: Stats): DataFile {
  let want: FileIdentity = { size: opened.size, dev: opened.dev, ino: opened.ino };
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
    size: opened.size,
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
      // Not a read error of the peer's asking: a response that outlived its file (a box download handed over to
      // the seeding fd, a removed kascade) answers 400 "not held now" and is fetched elsewhere, never a 500.
      if (closed) throw new NotHeldNowError(`the data file ${path} was closed`);
      reading++;
      try {
        return await readChecked(fd, path, want, buf, length, position);
      } finally {
        reading--;
        if (closed && reading === 0) closeFd();
      }
    },
    seal(): void {
      if (closed) return;
      const st = fstatSync(fd);
      // A change since the open (size, device, inode) is not adopted as the new normal: reads keep failing on it.
      if (fileDifference(st, want) === undefined) want = identityOf(st);
    },
    close(): void {
      if (closed) return;
      closed = true;
      if (reading === 0) closeFd();
    },
  };
}
