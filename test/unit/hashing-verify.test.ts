// verifyFile: re-hashing a data file through an fd finds exactly the damaged blocks.

import { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKascade } from '../../src/hashing/create-kascade.js';
import { createHashPool, type HashPool } from '../../src/hashing/pool.js';
import { verifyFile } from '../../src/hashing/verify-file.js';
import type { Kascade } from '../../src/kascade/kascade.js';

let pool: HashPool;
let dir: string;
const fds: number[] = [];

beforeAll(() => {
  pool = createHashPool({ threads: 2 });
  dir = mkdtempSync(join(tmpdir(), 'kfetch-verify-'));
});
afterAll(async () => {
  for (const fd of fds) closeSync(fd);
  await pool.destroy();
  rmSync(dir, { recursive: true, force: true });
});

async function setup(name: string, size: number, blockSizes: number[]): Promise<{ path: string; k: Kascade; data: Buffer }> {
  const data = randomBytes(size);
  const path = join(dir, name);
  writeFileSync(path, data);
  const k = await createKascade({ path, tracker: 'http://127.0.0.1:7000', blockSizes, pool });
  return { path, k, data };
}

function openFd(path: string, flags = 'r'): number {
  const fd = openSync(path, flags);
  fds.push(fd);
  return fd;
}

const held = (bits: { length: number; has(i: number): boolean }): number[] =>
  Array.from({ length: bits.length }, (_, i) => i).filter((i) => bits.has(i));

describe('verifyFile', () => {
  it('finds every block of an intact file', async () => {
    const { path, k } = await setup('ok.bin', 100_000 + 5, [1024, 4096]);
    const bits = await verifyFile({ kascade: k, blockSize: 1024, fd: openFd(path), pool, limits: { hashChunkBytes: 8192 } });
    expect(bits.length).toBe(98);
    expect(bits.complete).toBe(true);
  });

  it('finds a flipped byte in exactly one block', async () => {
    const { path, k, data } = await setup('flip.bin', 64 * 1024 + 300, [4096]);
    const at = 5 * 4096 + 1234;
    const fd = openFd(path, 'r+');
    writeSync(fd, Buffer.from([data[at]! ^ 0x01]), 0, 1, at);
    const progress: number[] = [];
    const bits = await verifyFile({ kascade: k, blockSize: 4096, fd, pool, limits: { hashChunkBytes: 8192 }, onProgress: (d) => progress.push(d) });
    expect(bits.count).toBe(bits.length - 1);
    expect(bits.has(5)).toBe(false);
    expect(progress.at(-1)).toBe(k.filesize);
  });

  it('misses blocks past the end of a truncated file, and the cut one', async () => {
    const { path, k } = await setup('trunc.bin', 10 * 1024, [1024]);
    truncateSync(path, 6 * 1024 + 10);
    const bits = await verifyFile({ kascade: k, blockSize: 1024, fd: openFd(path), pool });
    expect(held(bits)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('verifies an empty file as complete', async () => {
    const { path, k } = await setup('empty.bin', 0, [1024]);
    const bits = await verifyFile({ kascade: k, blockSize: 1024, fd: openFd(path), pool });
    expect(bits.length).toBe(0);
    expect(bits.complete).toBe(true);
  });

  it('refuses a block size the kascade does not offer', async () => {
    const { path, k } = await setup('size.bin', 3000, [1024]);
    await expect(verifyFile({ kascade: k, blockSize: 2048, fd: openFd(path), pool })).rejects.toMatchObject({ code: 'KF_E_INPUT' });
  });

  it('reports a read error as KF_E_IO', async () => {
    const { k } = await setup('badfd.bin', 3000, [1024]);
    await expect(verifyFile({ kascade: k, blockSize: 1024, fd: 987_654, pool })).rejects.toMatchObject({ code: 'KF_E_IO' });
  });
});
