// The one data-file module against real file-system objects: the seeder's opener (a good file, a missing one, a
// symlink, a directory, a FIFO that must not hang, a wrong size), positional reads that stop short at the end of a
// truncated file, and the re-check after every served read (issue 10 point 1): a rewrite in place with the mtime
// put back, a truncation, a rename over the file; a download's file ignores its own writes until it is sealed.

import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KfetchError } from '../../src/errors.js';
import { DataChangedError, NotHeldNowError, createDataFile, dataFileCounters, openDataFile, openDataFileToSeed, readAt, type DataFile } from '../../src/store/data-file.js';

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
    const f = await openDataFileToSeed(join(dir, name), size);
    f.close();
    return 'ok';
  } catch (err) {
    expect(err).toBeInstanceOf(KfetchError);
    expect((err as KfetchError).file).toBe(join(dir, name));
    return (err as KfetchError).code;
  }
}

describe('openDataFileToSeed', () => {
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
    const f = await openDataFileToSeed(join(dir, 'good.bin'), 10);
    try {
      const buf = Buffer.alloc(4);
      expect(await readAt(f.fd, buf, 4, 3)).toBe(4);
      expect(buf.toString()).toBe('3456');
      truncateSync(join(dir, 'good.bin'), 5);
      expect(await readAt(f.fd, buf, 4, 3)).toBe(2);
      expect(dataFileCounters.opens).toBe(before.opens + 1);
      expect(dataFileCounters.reads).toBeGreaterThan(before.reads);
    } finally {
      f.close();
      f.close(); // idempotent
      writeFileSync(join(dir, 'good.bin'), Buffer.from('0123456789'));
    }
  });
});

/** Rewrite `bytes` at `at` in place, then put the old times back (what a careful tamperer or bit rot leaves). */
function rewriteKeepingTimes(path: string, bytes: string, at: number): void {
  const before = statSync(path);
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.from(bytes), 0, bytes.length, at);
  closeSync(fd);
  utimesSync(path, before.atimeMs / 1000, before.mtimeMs / 1000); // exact: the files here have whole-second times
  expect(statSync(path).mtimeMs).toBe(before.mtimeMs);
}

async function readReason(f: DataFile, length = 4, at = 0): Promise<string> {
  try {
    await f.read(Buffer.alloc(length), length, at);
    return 'ok';
  } catch (err) {
    expect(err).toBeInstanceOf(DataChangedError);
    expect((err as DataChangedError).path).toBe(f.path);
    return (err as DataChangedError).reason;
  }
}

describe('the re-check after every served read (issue 10 point 1)', () => {
  const fresh = (name: string): string => {
    const path = join(dir, name);
    writeFileSync(path, Buffer.from('0123456789'));
    utimesSync(path, 1_700_000_000, 1_700_000_000);
    return path;
  };

  it('a file opened to seed: a rewrite in place with the mtime put back, a truncation, a rename over it', async () => {
    const a = await openDataFileToSeed(fresh('a.bin'), 10);
    const b = await openDataFileToSeed(fresh('b.bin'), 10);
    const c = await openDataFileToSeed(fresh('c.bin'), 10);
    try {
      expect(await readReason(a)).toBe('ok');
      rewriteKeepingTimes(a.path, 'XY', 1);
      expect(await readReason(a)).toBe('modified (rewritten in place)');
      truncateSync(b.path, 8);
      expect(await readReason(b, 2, 8)).toBe('size is 8, expected 10');
      writeFileSync(join(dir, 'c.new'), Buffer.from('abcdefghij'));
      renameSync(join(dir, 'c.new'), c.path);
      expect(await readReason(c)).toBe('deleted'); // the fd still reads the old inode, which no name holds any more
    } finally {
      for (const f of [a, b, c]) f.close();
    }
  });

  it('a download\'s file: its own writes (new times) are not a change until it is sealed; a shrink is, and sealing does not adopt it', async () => {
    const path = join(dir, 'dl.bin');
    const f = createDataFile(path, 10);
    try {
      const fd = openSync(path, 'r+');
      writeSync(fd, Buffer.from('0123456789'), 0, 10, 0); // as a worker writes a block, then puts kfetch's mtime back
      closeSync(fd);
      utimesSync(path, 1_700_000_000, 1_700_000_000);
      expect(await readReason(f)).toBe('ok');
      f.seal();
      expect(await readReason(f)).toBe('ok');
      rewriteKeepingTimes(path, 'Z', 0);
      expect(await readReason(f)).toBe('modified (rewritten in place)');
    } finally {
      f.close();
    }
    const g = createDataFile(join(dir, 'dl2.bin'), 10);
    try {
      truncateSync(g.path, 4);
      g.seal();
      expect(await readReason(g)).toBe('size is 4, expected 10');
    } finally {
      g.close();
    }
  });

  it('a short read is a change too (never a partial block)', async () => {
    const f = await openDataFileToSeed(fresh('s.bin'), 10);
    try {
      expect(await readReason(f, 4, 8)).toMatch(/^short read at 10/);
    } finally {
      f.close();
    }
  });
});

describe('openDataFile with the identity of the file recheck checked', () => {
  it('refuses a file swapped in at the path since, before sizing it; opens the same file', () => {
    const d = mkdtempSync(join(tmpdir(), 'kfetch-df-id-'));
    try {
      const path = join(d, 'f.bin');
      writeFileSync(path, 'checked');
      const checked = statSync(path);
      // Replaced by another file (a new inode) while the check ran: its blocks were never hashed.
      writeFileSync(join(d, 'other'), 'other');
      renameSync(join(d, 'other'), path);
      expect(() => openDataFile(path, 100, { dev: checked.dev, ino: checked.ino })).toThrow(/was replaced while it was verified/);
      expect(statSync(path).size).toBe(5); // not sized
      const now = statSync(path);
      const f = openDataFile(path, 100, { dev: now.dev, ino: now.ino });
      expect(f.size).toBe(100);
      f.close();
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('a data file read after close', () => {
  it('rejects with NotHeldNowError (answered 400 not held now), not an I/O error counted against the server', async () => {
    const d = mkdtempSync(join(tmpdir(), 'kfetch-df-closed-'));
    try {
      const f = createDataFile(join(d, 'c.bin'), 16);
      f.close();
      await expect(f.read(Buffer.alloc(4), 4, 0)).rejects.toBeInstanceOf(NotHeldNowError);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
