// A complete download served by the seeding box without holding its file open: the fd comes from the box's FdCache
// on the first read, opened read-only (never through a symlink) and checked against what the last checkpoint
// recorded (size, mtime, device, inode). Every read goes through store/data-file.ts's readChecked, the one re-check
// every served file uses, against the checkpoint's facts plus the ctime seen at the first open, so a file truncated,
// rewritten (even with its mtime put back), replaced or deleted while served is caught before the bytes leave: the
// read fails, the file stops being served (`onChanged`), and the box re-verifies or re-fetches it. Used by seed-box.ts.

import type { Kascade } from '../kascade/kascade.js';
import { VerifiedServedFile } from '../server/library.js';
import { DataChangedError, fileDifference as differenceFrom, openMatching, readChecked, type FileIdentity } from '../store/data-file.js';
import { Bitfield } from '../util/bitfield.js';
import type { FdCache } from './fd-cache.js';

export { DataChangedError } from '../store/data-file.js';

/** What the file must look like to be served: the facts recorded by the checkpoint that completed it. */
export interface ExpectedFile extends FileIdentity {
  path: string;
}

/** How `st` differs from the checkpoint's facts, or undefined if it matches (store/data-file.ts's one rule). */
export const fileDifference: (st: Parameters<typeof differenceFrom>[0], want: ExpectedFile) => string | undefined = differenceFrom;

/**
 * A complete file served through the fd cache. `onChanged` is called (once) when the file is found changed; reads
 * after that fail (VerifiedServedFile) until the box replaces this object.
 */
export function boxServedFile(
  kascade: Kascade,
  blockSize: number,
  recorded: ExpectedFile,
  cache: FdCache,
  onChanged: (err: DataChangedError) => void,
): VerifiedServedFile {
  const { path } = recorded;
  // The checkpoint has no ctime: the first open supplies it, and later opens (after the cache closed an idle fd)
  // and reads are held to it.
  const want: FileIdentity = { ...recorded };
  const open = async (): Promise<number> => {
    const { fd, stat } = await openMatching(path, want);
    want.ctimeMs ??= stat.ctimeMs;
    return fd;
  };
  const source = {
    read: (buf: Buffer, length: number, position: number): Promise<number> =>
      cache.use(path, open, (fd) => readChecked(fd, path, want, buf, length, position)).catch((err: unknown) => {
        if (err instanceof DataChangedError) cache.invalidate(path); // the next object opens it afresh
        throw err;
      }),
  };
  return new VerifiedServedFile(kascade, source, Bitfield.full(kascade.geometry(blockSize).count), blockSize, onChanged);
}
