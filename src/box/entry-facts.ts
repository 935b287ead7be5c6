// Small facts the seeding box asks about an entry's files and errors. Used by seed-box.ts.

import { lstatSync, statSync } from 'node:fs';
import { isKfetchError } from '../errors.js';
import { Kascade } from '../kascade/kascade.js';
import type { DownloadRow } from '../store/state-db.js';
import { fileDifference } from './box-file.js';

/** An error as the box reports it: `code: message`. */
export function errorText(err: unknown): string {
  return isKfetchError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
}

/** The same kascade without its block hashes: a seeding entry needs only sizes and ids (2,000 entries stay small). */
export function thin(k: Kascade): Kascade {
  return new Kascade({ ...k, blockhashes: new Map([...k.blockhashes.keys()].map((s) => [s, []])) });
}

/** Complete in the state and the data file still matches the last checkpoint (size, mtime, device, inode). */
export function unchanged(row: DownloadRow): boolean {
  try {
    const st = lstatSync(row.dataPath);
    return fileDifference(st, { path: row.dataPath, size: row.filesize, mtimeMs: row.dataMtimeMs, dev: row.dataDev, ino: row.dataIno }) === undefined;
  } catch {
    return false;
  }
}

export function existsFile(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Bytes of the blocks set in `held` for kascade `k` at `blockSize` (the last block may be short). */
export function heldBytes(k: Kascade, blockSize: number, held: { count: number; has(i: number): boolean }): number {
  const g = k.geometry(blockSize);
  if (held.count === 0 || g.count === 0) return 0;
  return held.count * blockSize - (held.has(g.count - 1) ? blockSize - g.size(g.count - 1) : 0);
}
