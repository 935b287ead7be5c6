// The process's open-file limit (`ulimit -n`, soft), which Node does not expose: read from /proc/self/limits on
// Linux, else an assumed common default. The block server sizes its connection caps below it (connection-cap.ts).

import { readFileSync } from 'node:fs';

/** Assumed where the limit cannot be read: the usual soft default on Linux and macOS shells is 1024 or lower. */
export const ASSUMED_FD_LIMIT = 1024;

/** The soft "Max open files" of /proc/self/limits text; undefined if absent, unparsable or unlimited. Pure. */
export function parseFdLimit(limitsText: string): number | undefined {
  const m = /^Max open files\s+(\S+)/m.exec(limitsText);
  if (m === null) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** This process's soft open-file limit, or ASSUMED_FD_LIMIT when it cannot be read. */
export function openFileLimit(): number {
  try {
    return parseFdLimit(readFileSync('/proc/self/limits', 'utf8')) ?? ASSUMED_FD_LIMIT;
  } catch {
    return ASSUMED_FD_LIMIT;
  }
}
