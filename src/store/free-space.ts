// The disk preflight of a new download (RELIABILITY.md "free-space preflight"): say early when the file system
// cannot hold the file, with the margin kept for the state database and its WAL named in the message.
// Used by the engine before it records a download.

import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { KfetchError } from '../errors.js';

/** Room left beyond the data itself: the state database, its WAL and logs must still be writable. */
export const FREE_SPACE_MARGIN_BYTES = 16 * 1024 * 1024;

/** `1234567 bytes (1.2 MiB)`: exact for scripts, readable for people. */
function bytesText(n: number): string {
  return `${n} bytes (${(n / 1024 / 1024).toFixed(1)} MiB)`;
}

/**
 * Throw KF_E_DISK_FULL when the file system holding `path` has less than `bytesNeeded` + the margin free
 * (a hint, not a promise: sparse files and other writers mean ENOSPC is still handled at write time).
 * A file system without statfs passes.
 */
export function checkFreeSpace(path: string, bytesNeeded: number, marginBytes = FREE_SPACE_MARGIN_BYTES): void {
  let free: number;
  try {
    const s = statfsSync(dirname(path));
    free = s.bavail * s.bsize;
  } catch {
    return; // no statfs here: the write path reports ENOSPC
  }
  if (free < bytesNeeded + marginBytes) {
    const margin = marginBytes % (1024 * 1024) === 0 ? `${marginBytes / 1024 / 1024} MiB` : `${marginBytes} bytes`;
    throw new KfetchError('KF_E_DISK_FULL', `not enough space for ${path}: needs ${bytesText(bytesNeeded)} + ${margin} margin, ${bytesText(free)} free`, {
      file: path,
      detail: { needed: bytesNeeded, margin: marginBytes, free },
    });
  }
}
