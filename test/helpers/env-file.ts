// Reads what a hook wrote with `env -0`: NUL-separated NAME=value entries, as a map. Used by the hook tests.

import { readFileSync } from 'node:fs';

export function readEnv(path: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const entry of readFileSync(path, 'utf8').split('\0')) {
    const i = entry.indexOf('=');
    if (i > 0) m.set(entry.slice(0, i), entry.slice(i + 1));
  }
  return m;
}
