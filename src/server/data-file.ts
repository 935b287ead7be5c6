// The data file a seeder serves: opened once, read-only, never through a symlink, checked to be a regular file of
// the declared size; then only positional reads on the fd. Counts opens and reads so tests can prove a hostile
// request caused no file-system access. Used by `kfetch seed` and block-server.ts.

import { close, constants, fstat, open, read, type Stats } from 'node:fs';
import { promisify } from 'node:util';
import { KfetchError, fromFsError } from '../errors.js';

/** Opens and positional reads done through this module since the process started (tests compare before/after). */
export const dataFileCounters = { opens: 0, reads: 0 };

/** An open data file: fd for positional reads, kept for the seeder's life. */
export interface DataFile {
  readonly path: string;
  readonly fd: number;
  readonly size: number;
  readonly stat: Stats;
  close(): Promise<void>;
}

/**
 * Open `path` read-only with O_NOFOLLOW (a symlink is refused) and O_NONBLOCK (a FIFO cannot hang the open), then
 * check it is a regular file of exactly `expectedSize` bytes. Errors name the path: KF_E_DATA_MISSING for a missing
 * file, a symlink or a non-regular file; KF_E_INPUT for a wrong size.
 */
export async function openDataFile(path: string, opts: { expectedSize: number }): Promise<DataFile> {
  // A raw fd, not a FileHandle: a FileHandle closes its fd when garbage-collected, and servers keep only the number.
  let fd: number;
  try {
    dataFileCounters.opens++;
    fd = await promisify(open)(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') {
      throw new KfetchError('KF_E_DATA_MISSING', 'data file is a symlink; refusing to follow it', { file: path, cause: err });
    }
    throw fromFsError(err, path, 'opening data file');
  }
  try {
    const stat = await promisify(fstat)(fd);
    if (!stat.isFile()) {
      throw new KfetchError('KF_E_DATA_MISSING', 'data file is not a regular file', { file: path });
    }
    if (stat.size !== opts.expectedSize) {
      throw new KfetchError(
        'KF_E_INPUT',
        `data file has ${stat.size} bytes but the kascade says filesize ${opts.expectedSize}`,
        { file: path, detail: { size: stat.size, filesize: opts.expectedSize } },
      );
    }
    return {
      path,
      fd,
      size: stat.size,
      stat,
      close: onceClose(fd),
    };
  } catch (err) {
    await promisify(close)(fd).catch(() => undefined);
    throw err instanceof KfetchError ? err : fromFsError(err, path, 'checking data file');
  }
}

/**
 * Read `length` bytes at `position` of `fd` into `buf` (from offset 0), looping over short reads. Resolves with the
 * bytes read: fewer than `length` only at end of file (a truncated file), which the caller must treat as an error.
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

/** close(fd) at most once: a second close could hit an fd number the process has reused since. */
function onceClose(fd: number): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => (closing ??= promisify(close)(fd));
}

/**
 * The bytes asked for are not held any more: the data file shrank or changed under a read. The block server answers
 * 400 "not held now" (SPEC §3), so a downloader takes the block elsewhere without counting a server error against
 * an honest seeder (issue 10 point 9).
 */
export class NotHeldNowError extends Error {}
