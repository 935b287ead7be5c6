// The box's fd cache with real files: opens once per file, bounded by LRU eviction, idle close, never closes an fd
// while a read through it is in flight, and invalidate() forces a fresh open. The cache's counters change at once;
// only the close(2) behind them is asynchronous, so the tests wait for an fd to be really closed, never sleep.

import { fstatSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FdCache } from '../../src/box/fd-cache.js';
import { until } from '../helpers/wait.js';

const dirs: string[] = [];
const caches: FdCache[] = [];
afterEach(() => {
  for (const c of caches.splice(0)) c.closeAll();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function files(n: number): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'kfetch-fdc-'));
  dirs.push(dir);
  return Array.from({ length: n }, (_, i) => {
    const p = join(dir, `f${i}`);
    writeFileSync(p, `file ${i}`);
    return p;
  });
}

function cache(max: number, idleMs = 60_000): FdCache {
  const c = new FdCache(max, idleMs);
  caches.push(c);
  return c;
}

const isOpen = (fd: number): boolean => {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
};

const read = (fd: number): string => {
  const b = Buffer.alloc(16);
  return b.subarray(0, readSync(fd, b, 0, 16, 0)).toString();
};

/** A read of `path` through `c` that holds its fd until `release()`; resolves once it holds it. */
async function holdRead(c: FdCache, path: string): Promise<{ fd: number; release: () => void; first: Promise<string> }> {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let fd = -1;
  const first = c.use(path, async () => openSync(path, 'r'), async (f) => {
    fd = f;
    await held;
    return read(f);
  });
  await until(() => fd !== -1, 10_000, 'the first read holding its fd');
  return { fd, release, first };
}

describe('FdCache', () => {
  it('opens a file once for many uses and reads through it', async () => {
    const [p] = files(1);
    const c = cache(4);
    let opens = 0;
    const open = async (): Promise<number> => (opens++, openSync(p!, 'r'));
    const got = await Promise.all(Array.from({ length: 10 }, () => c.use(p!, open, async (fd) => read(fd))));
    expect(new Set(got)).toEqual(new Set(['file 0']));
    expect(opens).toBe(1);
    expect(c.stats()).toMatchObject({ open: 1, opens: 1 });
  });

  it('keeps at most maxOpen fds, evicting the least recently used', async () => {
    const ps = files(5);
    const c = cache(2);
    const fds: number[] = [];
    for (const p of ps) fds.push(await c.use(p, async () => openSync(p, 'r'), async (fd) => fd));
    expect(c.stats().open).toBe(2);
    expect(c.stats().evictions).toBe(3);
    expect(await c.use(ps[4]!, async () => openSync(ps[4]!, 'r'), async (fd) => read(fd))).toBe('file 4');
    expect(c.stats().opens).toBe(5); // the most recent stayed open
  });

  it('never closes an fd while a read holds it, even when evicted or invalidated', async () => {
    const ps = files(3);
    const c = cache(1);
    const { fd: heldFd, release, first } = await holdRead(c, ps[0]!);
    let idleFd = -1;
    await c.use(ps[1]!, async () => (idleFd = openSync(ps[1]!, 'r')), async () => 0);
    c.invalidate(ps[0]!);
    expect(c.stats().closes).toBe(1); // only the idle one went
    // Its close(2) has completed; one of the held fd, had it been issued with it, would be done by now too.
    await until(() => !isOpen(idleFd), 10_000, 'the idle fd closed');
    expect(isOpen(heldFd)).toBe(true);
    release();
    expect(await first).toBe('file 0');
    expect(c.stats().closes).toBe(2); // closed as soon as its read ended
  });

  it('a file opened while the cache is full of busy fds is read through its own fd, then closed', async () => {
    const ps = files(2);
    const c = cache(1);
    const { fd: heldFd, release, first } = await holdRead(c, ps[0]!);
    let newFd = -1;
    expect(await c.use(ps[1]!, async () => (newFd = openSync(ps[1]!, 'r')), async (fd) => read(fd))).toBe('file 1');
    // Over the bound once its read ended: the idle one goes, the busy one stays.
    await until(() => !isOpen(newFd), 10_000, 'the new fd closed after its read');
    expect(c.stats()).toMatchObject({ open: 1, evictions: 1 });
    release();
    expect(await first).toBe('file 0');
  });

  it('closes fds idle for idleMs, and invalidate() makes the next use open again', async () => {
    const [p] = files(1);
    const c = cache(4, 100);
    await c.use(p!, async () => openSync(p!, 'r'), async () => 0);
    c.invalidate(p!);
    await c.use(p!, async () => openSync(p!, 'r'), async () => 0);
    expect(c.stats().opens).toBe(2);
    await until(() => c.stats().open === 0, 10_000, 'the idle fd swept');
  });

  it('a failed open is reported to every waiter and not cached', async () => {
    const c = cache(4);
    const open = async (): Promise<number> => {
      throw new Error('nope');
    };
    await expect(Promise.all([c.use('x', open, async () => 0), c.use('x', open, async () => 0)])).rejects.toThrow('nope');
    expect(c.stats().open).toBe(0);
    const fd = openSync(files(1)[0]!, 'r');
    expect(await c.use('x', async () => fd, async (f) => f)).toBe(fd);
  });
});
