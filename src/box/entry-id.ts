// The id the control API and the hooks give a box entry: stable across restarts because it depends only on the
// kascade file's name in the watch folder. Used by box-run.ts (hook facts) and the API.

import { createHash } from 'node:crypto';
import { basename } from 'node:path';

/** 16 hex digits of the SHA-256 of the kascade file's basename (`path` may be the full path or the name). */
export function entryId(path: string): string {
  return createHash('sha256').update(basename(path), 'utf8').digest('hex').slice(0, 16);
}
