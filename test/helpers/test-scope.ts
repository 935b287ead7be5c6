// Per-test resources of one test file, released after each test: temp dirs, servers and peers (anything with
// close()), and every CLI child. Call testScope() once at the top of a test file.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { killAllChildren } from './cli.js';

export interface TestScope {
  /** A fresh temp dir named `<prefix>XXXXXX`, removed after the test. */
  dir(prefix: string): string;
  /** Close `c` after the test (children are killed first); returns it. */
  keep<T extends { close(): Promise<void> }>(c: T): T;
}

export function testScope(): TestScope {
  const dirs: string[] = [];
  const closers: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    killAllChildren();
    for (const c of closers.splice(0)) await c.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  return {
    dir(prefix) {
      const d = mkdtempSync(join(tmpdir(), prefix));
      dirs.push(d);
      return d;
    },
    keep(c) {
      closers.push(c);
      return c;
    },
  };
}
