// The id of a box entry in the control API, hooks and `kfetch box`: 16 hex digits of the SHA-256 of the kascade
// file's name in the watch folder. Stable across restarts, opaque, and safe in a URL.

import { createHash } from 'node:crypto';
import { basename } from 'node:path';

export function entryId(path: string): string {
  return createHash('sha256').update(basename(path)).digest('hex').slice(0, 16);
}
