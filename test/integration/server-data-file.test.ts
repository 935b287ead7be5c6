// The seeder's data-file opener against real file-system objects: a good file, a missing one, a symlink, a directory,
// a FIFO (must not hang), a wrong size; and positional reads that stop short at the end of a truncated file.

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KfetchError } from '../../src/errors.js';
import { dataFileCounters, openDataFile, readAt } from '../../src/server/data-file.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kfetch-datafile-'));
  writeFileSync(join(dir, 'good.bin'), Buffer.from('0123456789'));
  symlinkSync(join(dir, 'good.bin'), join(dir, 'link.bin'));
  mkdirSync(join(dir, 'dir.bin'));
  execFileSync('mkfifo', [join(dir, 'fifo.bin')]);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function code(name: string, size = 10): Promise<string> {
  try {
    const f = await openDataFile(join(dir, name), { expectedSize: size });
    await f.close();
    return 'ok';
  } catch (err) {
    expect(err).toBeInstanceOf(KfetchError);
    expect((err as KfetchError).file).toBe(join(dir, name));
    return (err as KfetchError).code;
  }
}

describe('openDataFile', () => {
  it.each([
    ['good.bin', 10, 'ok'],
    ['missing.bin', 10, 'KF_E_DATA_MISSING'],
    ['link.bin', 10, 'KF_E_DATA_MISSING'],
    ['dir.bin', 10, 'KF_E_DATA_MISSING'],
    ['fifo.bin', 10, 'KF_E_DATA_MISSING'],
    ['good.bin', 11, 'KF_E_INPUT'],
    ['good.bin', 9, 'KF_E_INPUT'],
  ])('%s (filesize %i) -> %s', async (name, size, want) => {
    expect(await code(name, size)).toBe(want);
  });

  it('reads by position, counts opens and reads, and reports a short read at the end of a truncated file', async () => {
    const before = { ...dataFileCounters };
    const f = await openDataFile(join(dir, 'good.bin'), { expectedSize: 10 });
    try {
      const buf = Buffer.alloc(4);
      expect(await readAt(f.fd, buf, 4, 3)).toBe(4);
      expect(buf.toString()).toBe('3456');
      truncateSync(join(dir, 'good.bin'), 5);
      expect(await readAt(f.fd, buf, 4, 3)).toBe(2);
      expect(dataFileCounters.opens).toBe(before.opens + 1);
      expect(dataFileCounters.reads).toBeGreaterThan(before.reads);
    } finally {
      await f.close();
      await f.close(); // idempotent
      writeFileSync(join(dir, 'good.bin'), Buffer.from('0123456789'));
    }
  });
});
