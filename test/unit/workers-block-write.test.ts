// Invariant (DESIGN.md): a block is written only after its hash matched. The real worker function
// (workers/block-write.ts, as piscina runs it) against a real temp file: on an MD5 mismatch the block's bytes on disk
// are untouched, whatever its neighbours in the same task do. Checked red by making the worker write every block
// before (or regardless of) the comparison (issue 10). Also: a failed write (/dev/full: ENOSPC) is reported, never
// reported as written; the file keeps its fixed mtime; the whole-file SHA-256 task.

import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256File, verifyWrite, verifyWriteBatch, type VerifyWriteTask } from '../../workers/block-write.js';
import { testScope } from '../helpers/test-scope.js';

const scope = testScope();
const fds: number[] = [];
afterEach(() => {
  for (const fd of fds.splice(0)) closeSync(fd);
});

const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');
const BEFORE = 0xee;
const MTIME_SEC = 1_600_000_000;
const OLD_MTIME_SEC = 1_500_000_000;

/** A data file of `size` bytes, all BEFORE, with an old mtime; returns its path and an open read-write fd. */
function dataFile(size: number): { path: string; fd: number } {
  const path = join(scope.dir('kfetch-block-write-'), 'f.bin');
  writeFileSync(path, Buffer.alloc(size, BEFORE));
  utimesSync(path, OLD_MTIME_SEC, OLD_MTIME_SEC);
  const fd = openSync(path, 'r+');
  fds.push(fd);
  return { path, fd };
}

/** Blocks of `lengths` back to back from `byteOffset` of a shared slot, each filled with its own byte (k + 1). */
function slot(lengths: number[], byteOffset = 0): { shared: SharedArrayBuffer; bytes: Buffer[] } {
  const total = lengths.reduce((a, b) => a + b, 0);
  const shared = new SharedArrayBuffer(byteOffset + total + 16);
  const view = Buffer.from(shared);
  view.fill(0x5a); // bytes around the blocks: a worker reading outside its blocks would hash these
  const bytes: Buffer[] = [];
  let at = byteOffset;
  lengths.forEach((len, k) => {
    view.fill(k + 1, at, at + len);
    bytes.push(Buffer.alloc(len, k + 1));
    at += len;
  });
  return { shared, bytes };
}

/** A task writing blocks of `lengths` from file offset `fileOffset` on; `bad` lists the blocks whose expected MD5 is wrong. */
function task(fd: number, lengths: number[], o: { bad?: number[]; fileOffset?: number; byteOffset?: number } = {}): { t: VerifyWriteTask; bytes: Buffer[] } {
  const { shared, bytes } = slot(lengths, o.byteOffset ?? 0);
  let offset = o.fileOffset ?? 0;
  const blocks = lengths.map((length, k) => {
    const b = { offset, length, expectedMd5: (o.bad ?? []).includes(k) ? md5(Buffer.from('something else')) : md5(bytes[k]!) };
    offset += length;
    return b;
  });
  return { t: { kind: 'verify-write', fd, shared, byteOffset: o.byteOffset ?? 0, blocks, mtimeSec: MTIME_SEC }, bytes };
}

describe('verify-write worker: a block is written only after its MD5 matched', () => {
  it('leaves the bytes of a block whose MD5 did not match untouched, and the mtime too', () => {
    const { path, fd } = dataFile(4096);
    const { t, bytes } = task(fd, [4096], { bad: [0] });
    const r = verifyWrite(t);
    expect(r).toMatchObject({ kind: 'verify-write', blocks: [{ status: 'bad', actualMd5: md5(bytes[0]!) }] });
    expect(r.io).toBeUndefined();
    expect(readFileSync(path).equals(Buffer.alloc(4096, BEFORE))).toBe(true);
    expect(fstatSync(fd).mtimeMs).toBe(OLD_MTIME_SEC * 1000);
  });

  it('writes the good blocks around a bad one and leaves the bad one untouched', () => {
    const { path, fd } = dataFile(5 * 1024);
    const { t, bytes } = task(fd, [1024, 1024, 1024, 1024, 1024], { bad: [1, 3] });
    const r = verifyWrite(t);
    expect(r.io).toBeUndefined();
    expect(r.blocks).toEqual([
      { status: 'written' },
      { status: 'bad', actualMd5: md5(bytes[1]!) },
      { status: 'written' },
      { status: 'bad', actualMd5: md5(bytes[3]!) },
      { status: 'written' },
    ]);
    const disk = readFileSync(path);
    expect(disk.subarray(0, 1024).equals(bytes[0]!)).toBe(true);
    expect(disk.subarray(1024, 2048).equals(Buffer.alloc(1024, BEFORE))).toBe(true);
    expect(disk.subarray(2048, 3072).equals(bytes[2]!)).toBe(true);
    expect(disk.subarray(3072, 4096).equals(Buffer.alloc(1024, BEFORE))).toBe(true);
    expect(disk.subarray(4096).equals(bytes[4]!)).toBe(true);
    expect(Math.floor(fstatSync(fd).mtimeMs / 1000)).toBe(MTIME_SEC);
    // The access time is "now" (only the mtime is pinned).
    expect(Math.abs(fstatSync(fd).atimeMs - Date.now())).toBeLessThan(60_000);
  });

  it('writes a run of good blocks from the slot offset to the file offset, a short last block included', () => {
    const { path, fd } = dataFile(8192 + 4096 + 100);
    const { t, bytes } = task(fd, [4096, 100], { fileOffset: 8192, byteOffset: 333 });
    const r = verifyWrite(t);
    expect(r).toMatchObject({ kind: 'verify-write', blocks: [{ status: 'written' }, { status: 'written' }] });
    expect(r.io).toBeUndefined();
    const disk = readFileSync(path);
    expect(disk.subarray(0, 8192).equals(Buffer.alloc(8192, BEFORE))).toBe(true);
    expect(disk.subarray(8192, 8192 + 4096).equals(bytes[0]!)).toBe(true);
    expect(disk.length).toBe(8192 + 4096 + 100);
    expect(disk.subarray(8192 + 4096).equals(bytes[1]!)).toBe(true);
    expect(Math.floor(fstatSync(fd).mtimeMs / 1000)).toBe(MTIME_SEC);
  });

  it('leaves the whole file and its mtime untouched when every block is bad', () => {
    const { path, fd } = dataFile(3 * 1024);
    const { t } = task(fd, [1024, 1024, 1024], { bad: [0, 1, 2] });
    const r = verifyWrite(t);
    expect(r.blocks.map((b) => b.status)).toEqual(['bad', 'bad', 'bad']);
    expect(readFileSync(path).equals(Buffer.alloc(3 * 1024, BEFORE))).toBe(true);
    expect(fstatSync(fd).mtimeMs).toBe(OLD_MTIME_SEC * 1000);
  });

  it('writes the first and last good runs when only the middle is bad, each to its own place', () => {
    const { path, fd } = dataFile(4 * 512);
    const { t, bytes } = task(fd, [512, 512, 512, 512], { bad: [2] });
    verifyWrite(t);
    const disk = readFileSync(path);
    expect(disk.subarray(0, 512).equals(bytes[0]!)).toBe(true);
    expect(disk.subarray(512, 1024).equals(bytes[1]!)).toBe(true);
    expect(disk.subarray(1024, 1536).equals(Buffer.alloc(512, BEFORE))).toBe(true);
    expect(disk.subarray(1536).equals(bytes[3]!)).toBe(true);
  });

  it.skipIf(!existsSync('/dev/full'))('reports a failed write (ENOSPC on /dev/full) and never calls its blocks written', () => {
    const fd = openSync('/dev/full', 'r+');
    fds.push(fd);
    const { t } = task(fd, [1024, 1024, 1024], { bad: [1] });
    const r = verifyWrite(t);
    expect(r.io?.code).toBe('ENOSPC');
    expect(r.io?.message).toMatch(/ENOSPC/);
    expect(r.blocks.map((b) => b.status)).toEqual(['unwritten', 'bad', 'unwritten']);
  });

  it('reports a failed write on an fd it cannot write (EBADF), with the bad block still bad', () => {
    const { path } = dataFile(2048);
    const fd = openSync(path, 'r');
    fds.push(fd);
    const { t } = task(fd, [1024, 1024], { bad: [0] });
    const r = verifyWrite(t);
    expect(r.io?.code).toBe('EBADF');
    expect(r.blocks.map((b) => b.status)).toEqual(['bad', 'unwritten']);
    expect(readFileSync(path).equals(Buffer.alloc(2048, BEFORE))).toBe(true);
  });
});

describe('verify-write-batch worker task (issue 11)', () => {
  it('verifies and writes several runs from their own slots, restores the mtime once, and keeps bad blocks out', () => {
    const { path, fd } = dataFile(6 * 1024);
    const a = task(fd, [1024, 1024], { byteOffset: 7 });
    const b = task(fd, [1024, 1024], { fileOffset: 4096, bad: [0] });
    const r = verifyWriteBatch({ kind: 'verify-write-batch', fd, mtimeSec: MTIME_SEC, runs: [a.t, b.t] });
    expect(r.io).toBeUndefined();
    expect(r.runs).toEqual([[{ status: 'written' }, { status: 'written' }], [{ status: 'bad', actualMd5: md5(b.bytes[0]!) }, { status: 'written' }]]);
    const disk = readFileSync(path);
    expect(disk.subarray(0, 2048).equals(Buffer.concat(a.bytes))).toBe(true);
    expect(disk.subarray(2048, 5120).equals(Buffer.alloc(3072, BEFORE))).toBe(true); // the gap, and the bad block
    expect(disk.subarray(5120).equals(b.bytes[1]!)).toBe(true);
    expect(Math.floor(fstatSync(fd).mtimeMs / 1000)).toBe(MTIME_SEC);
  });

  it.skipIf(!existsSync('/dev/full'))('after a failed write, later runs are neither written nor called written', () => {
    const fd = openSync('/dev/full', 'r+');
    fds.push(fd);
    const a = task(fd, [1024]);
    const b = task(fd, [1024], { fileOffset: 1024 });
    const r = verifyWriteBatch({ kind: 'verify-write-batch', fd, mtimeSec: MTIME_SEC, runs: [a.t, b.t] });
    expect(r.io?.code).toBe('ENOSPC');
    expect(r.runs).toEqual([[{ status: 'unwritten' }], [{ status: 'unwritten' }]]);
  });
});

describe('sha256-file worker task', () => {
  it('hashes the first `size` bytes and says how many it read', () => {
    const { fd } = dataFile(0);
    const content = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
    writeFileSync(fd, content);
    expect(sha256File({ kind: 'sha256-file', fd, size: 5000 })).toEqual({
      kind: 'sha256-file',
      hex: createHash('sha256').update(content).digest('hex'),
      read: 5000,
    });
    expect(sha256File({ kind: 'sha256-file', fd, size: 100 }).hex).toBe(createHash('sha256').update(content.subarray(0, 100)).digest('hex'));
  });

  it('reports fewer bytes read when the file is shorter than it should be', () => {
    const { fd } = dataFile(700);
    const r = sha256File({ kind: 'sha256-file', fd, size: 1000 });
    expect(r.read).toBe(700);
    expect(r.hex).toBe(createHash('sha256').update(Buffer.alloc(700, BEFORE)).digest('hex'));
  });

  it('hashes a file larger than its 4 MiB read step', () => {
    const { fd } = dataFile(0);
    const content = Buffer.alloc(4 * 1024 * 1024 + 3000);
    for (let i = 0; i < content.length; i += 4096) content[i] = (i >> 12) & 0xff;
    writeFileSync(fd, content);
    expect(sha256File({ kind: 'sha256-file', fd, size: content.length })).toEqual({ kind: 'sha256-file', hex: createHash('sha256').update(content).digest('hex'), read: content.length });
  });

  it('reads no further than `size` in a file that is longer, past its first 4 MiB step', () => {
    const { fd } = dataFile(0);
    const content = Buffer.alloc(9 * 1024 * 1024, 3);
    writeFileSync(fd, content);
    const size = 4 * 1024 * 1024 + 10;
    expect(sha256File({ kind: 'sha256-file', fd, size })).toEqual({ kind: 'sha256-file', hex: createHash('sha256').update(content.subarray(0, size)).digest('hex'), read: size });
  });

  it('hashes an empty file', () => {
    const { fd } = dataFile(0);
    expect(sha256File({ kind: 'sha256-file', fd, size: 0 })).toEqual({ kind: 'sha256-file', hex: createHash('sha256').digest('hex'), read: 0 });
  });
});
