// A complete download served by the seeding box without holding its file open: the fd comes from the box's FdCache
// on the first read, opened read-only (never through a symlink) and checked against what the last checkpoint
// recorded (size, mtime, device, inode). After every read the fd is checked again, so a file truncated, rewritten,
// replaced or deleted while served is caught before the bytes leave: the read fails, the file stops being served
// (`onChanged`), and the box re-verifies or re-fetches it. Used by seed-box.ts.

import { constants, fstat, open, close, type Stats } from 'node:fs';
import { promisify } from 'node:util';
import type { Kascade } from '../kascade/kascade.js';
import { NotHeldNowError, readAt, dataFileCounters } from '../server/data-file.js';
import { VerifiedServedFile } from '../server/library.js';
import { Bitfield } from '../util/bitfield.js';
import type { FdCache } from './fd-cache.js';

/** What the file must look like to be served: the facts recorded by the checkpoint that completed it. */
export interface ExpectedFile {
  path: string;
  size: number;
  mtimeMs: number | undefined;
  dev: number | undefined;
  ino: number | undefined;
}

/** The data file no longer matches its checkpoint; `reason` says how. */
export class DataChangedError extends NotHeldNowError {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
  }
}

const fstatAsync = promisify(fstat);
const openAsync = promisify(open);
const closeAsync = promisify(close);

/** How `st` differs from `want`, or undefined if it matches. A deleted file (no links left) differs. */
export function fileDifference(st: Pick<Stats, 'size' | 'mtimeMs' | 'dev' | 'ino' | 'nlink' | 'isFile'>, want: ExpectedFile): string | undefined {
  if (!st.isFile()) return 'not a regular file';
  if (st.nlink === 0) return 'deleted';
  if (st.size !== want.size) return `size is ${st.size}, expected ${want.size}`;
  if (want.mtimeMs !== undefined && st.mtimeMs !== want.mtimeMs) return 'modified (mtime changed)';
  if (want.dev !== undefined && want.ino !== undefined && (st.dev !== want.dev || st.ino !== want.ino)) return 'replaced (device/inode changed)';
  return undefined;
}

/** Open `want.path` read-only and check it; rejects with DataChangedError (or the fs error) if it does not match. */
async function openChecked(want: ExpectedFile): Promise<number> {
  let fd: number;
  try {
    dataFileCounters.opens++;
    fd = await openAsync(want.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DataChangedError(want.path, 'deleted');
    if (code === 'ELOOP') throw new DataChangedError(want.path, 'replaced by a symlink');
    throw err;
  }
  try {
    const diff = fileDifference(await fstatAsync(fd), want);
    if (diff !== undefined) throw new DataChangedError(want.path, diff);
    return fd;
  } catch (err) {
    await closeAsync(fd).catch(() => undefined);
    throw err;
  }
}

/**
 * A complete file served through the fd cache. `onChanged` is called (once) when the file is found changed; reads
 * after that fail until the box replaces this object.
 */
export function boxServedFile(
  kascade: Kascade,
  blockSize: number,
  want: ExpectedFile,
  cache: FdCache,
  onChanged: (err: DataChangedError) => void,
): VerifiedServedFile {
  let changed: DataChangedError | undefined;
  const report = (err: DataChangedError): never => {
    if (changed === undefined) {
      changed = err;
      cache.invalidate(want.path);
      onChanged(err);
    }
    throw err;
  };
  const source = {
    read: (buf: Buffer, length: number, position: number): Promise<number> => {
      if (changed !== undefined) return Promise.reject(changed);
      return cache
        .use(want.path, () => openChecked(want), async (fd) => {
          const n = await readAt(fd, buf, length, position);
          // Checked after the read: a change before or during it shows here, and those bytes are not sent.
          const diff = fileDifference(await fstatAsync(fd), want);
          if (diff !== undefined) report(new DataChangedError(want.path, diff));
          if (n < length) report(new DataChangedError(want.path, `short read at ${position + n}`));
          return n;
        })
        .catch((err: unknown) => (err instanceof DataChangedError ? report(err) : Promise.reject(err as Error)));
    },
  };
  return new VerifiedServedFile(kascade, source, Bitfield.full(kascade.geometry(blockSize).count), blockSize);
}
