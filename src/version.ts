// kfetch's version, read once from package.json; used in `--version` and the `Server: kfetch/<version>` header.

import { readFileSync } from 'node:fs';

function readVersion(): string {
  // dist/src/version.js -> ../../package.json; src/version.ts under vitest -> ../package.json
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'kfetch' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return '0.0.0';
}

export const VERSION = readVersion();
