// The prefix hasher (issue 4): the whole-file SHA-256 kept over the verified prefix while downloading. It advances
// only over contiguous verified blocks, never reads past them, gives the file's SHA-256, restarts from 0, and gives
// up (undefined, so the session hashes the whole file) whenever its result could be wrong. Real files in a temp dir.

import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrefixHasher } from '../../src/client/prefix-hasher.js';
import { Sha256Thread } from '../../src/client/sha256-thread.js';
import { Bitfield } from '../../src/util/bitfield.js';

const BLOCK = 1000;
let dir: string;
const fds: number[] = [];
const threads: Sha256Thread[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kfetch-prefix-'));
});
afterAll(async () => {
  for (const t of threads) await t.close();
  for (const fd of fds) closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
});

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A file of `size` random bytes, its verified-block bitfield, and a hasher over it whose reads are logged. */
function world(name: string, size: number, o: { readBytes?: number; failAt?: number } = {}) {
  const data = randomBytes(size);
  const path = join(dir, name);
  writeFileSync(path, data);
  const fd = openSync(path, 'r');
  fds.push(fd);
  const n = Math.ceil(size / BLOCK);
  const verified = new Bitfield(n);
  const reads: { position: number; length: number; edge: number }[] = [];
  const make = (): PrefixHasher => {
    // The real hashing thread over the file; its file reads are logged (and made to fail at `failAt`).
    const thread = new Sha256Thread(fd);
    threads.push(thread);
    return new PrefixHasher({
      size,
      blockSize: BLOCK,
      isVerified: (i) => verified.has(i),
      backend: {
        hashFile: async (position, length) => {
          // Where the verified prefix ends at the time of the read: no read may go past it.
          let edge = 0;
          while (edge < n && verified.has(edge)) edge++;
          reads.push({ position, length, edge: Math.min(size, edge * BLOCK) });
          if (o.failAt !== undefined && position >= o.failAt) throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
          return thread.hashFile(position, length);
        },
        hashMemory: (shared, byteOffset, length) => thread.hashMemory(shared, byteOffset, length),
        digest: () => thread.digest(),
        close: () => thread.close(),
      },
      ...(o.readBytes === undefined ? {} : { readBytes: o.readBytes }),
    });
  };
  return { data, path, n, verified, reads, make, threads };
}

describe('prefix hasher', () => {
  it('advances only over contiguous verified blocks and never reads past them', async () => {
    const w = world('contiguous', 9500, { readBytes: 700 });
    const h = w.make();
    for (const i of [1, 3, 4]) w.verified.set(i);
    h.advance();
    await h.idle();
    expect(h.hashed).toBe(0); // block 0 missing: nothing to hash
    w.verified.set(0);
    h.advance();
    await h.idle();
    expect(h.hashed).toBe(2 * BLOCK); // 0 and 1; block 2 missing
    w.verified.set(2);
    h.advance();
    await h.idle();
    expect(h.hashed).toBe(5 * BLOCK);
    for (const r of w.reads) expect(r.position + r.length).toBeLessThanOrEqual(r.edge);
    // Reads are sequential and cover [0, hashed) once.
    let at = 0;
    for (const r of w.reads) {
      expect(r.position).toBe(at);
      at += r.length;
    }
    expect(at).toBe(5 * BLOCK);
  });

  it('gives the SHA-256 of the file, blocks verified in random order, reads not aligned to blocks', async () => {
    const w = world('random-order', 10 * BLOCK + 321, { readBytes: 777 });
    const h = w.make();
    const order = [...Array(w.n).keys()].sort(() => Math.random() - 0.5);
    for (const i of order) {
      w.verified.set(i);
      h.advance();
      if (i % 3 === 0) await h.idle();
    }
    const r = await h.finish();
    expect(r).toEqual({ hex: sha(w.data), read: w.data.length });
    for (const x of w.reads) expect(x.position + x.length).toBeLessThanOrEqual(x.edge);
  });

  it('hashes what is left at finish, including a short last block and an empty file', async () => {
    const w = world('finish', 3 * BLOCK + 1);
    for (let i = 0; i < w.n; i++) w.verified.set(i);
    expect(await w.make().finish()).toEqual({ hex: sha(w.data), read: w.data.length });
    const e = world('empty', 0);
    expect(await e.make().finish()).toEqual({ hex: sha(Buffer.alloc(0)), read: 0 });
  });

  it('restarts from 0: a new hasher (a resumed session) hashes the already complete prefix again', async () => {
    const w = world('restart', 8 * BLOCK);
    for (let i = 0; i < 5; i++) w.verified.set(i);
    const first = w.make();
    first.advance();
    await first.idle();
    expect(first.hashed).toBe(5 * BLOCK);
    await first.stop(); // the session ended (crash or stop): its state is gone
    const before = w.reads.length;
    const second = w.make();
    expect(second.hashed).toBe(0);
    second.advance();
    await second.idle();
    expect(second.hashed).toBe(5 * BLOCK);
    expect(w.reads[before]!.position).toBe(0);
    for (let i = 5; i < w.n; i++) w.verified.set(i);
    expect((await second.finish())?.hex).toBe(sha(w.data));
    expect(await first.finish()).toBeUndefined(); // a stopped hasher gives no digest
  });

  it('is worth finishing only once half the file is hashed, and while usable', async () => {
    const w = world('worth', 10 * BLOCK);
    const h = w.make();
    for (let i = 0; i < 4; i++) w.verified.set(i);
    h.advance();
    await h.idle();
    expect(h.worthFinishing).toBe(false); // 40 %: a full pass in a worker is faster
    w.verified.set(4);
    h.advance();
    await h.idle();
    expect(h.worthFinishing).toBe(true);
    await h.invalidate();
    expect(h.worthFinishing).toBe(false);
  });

  it('gives no digest when a block is not verified, after invalidate, or twice', async () => {
    const w = world('uncertain', 4 * BLOCK);
    for (const i of [0, 1, 3]) w.verified.set(i);
    const h = w.make();
    expect(await h.finish()).toBeUndefined();
    w.verified.set(2);
    const inv = w.make();
    inv.advance();
    await inv.invalidate();
    expect(inv.usable).toBe(false);
    expect(await inv.finish()).toBeUndefined();
    const once = w.make();
    expect((await once.finish())?.hex).toBe(sha(w.data));
    expect(await once.finish()).toBeUndefined();
  });

  it('gives no digest after a failed read or a file shorter than its verified blocks', async () => {
    const failing = world('eio', 5 * BLOCK, { readBytes: BLOCK, failAt: 2 * BLOCK });
    for (let i = 0; i < failing.n; i++) failing.verified.set(i);
    const h = failing.make();
    expect(await h.finish()).toBeUndefined();
    expect(h.usable).toBe(false);
    const short = world('short', 5 * BLOCK);
    for (let i = 0; i < short.n; i++) short.verified.set(i);
    truncateSync(short.path, 4 * BLOCK + 10);
    expect(await short.make().finish()).toBeUndefined();
  });

  it('rejects with the reason when aborted during finish', async () => {
    const w = world('abort', 20 * BLOCK, { readBytes: 100 });
    for (let i = 0; i < w.n; i++) w.verified.set(i);
    const ac = new AbortController();
    const h = w.make();
    const p = h.finish(ac.signal);
    ac.abort(new Error('stop now'));
    await expect(p).rejects.toThrow('stop now');
    expect(h.hashed).toBeLessThan(w.data.length);
    await expect(w.make().finish(ac.signal)).rejects.toThrow('stop now');
  });
});

describe('prefix hasher: bytes still in a slot (issue 11)', () => {
  /** `data[from, to)` in shared memory at an odd offset, as a block slot holds it. */
  function inSlot(data: Buffer, from: number, to: number): { shared: SharedArrayBuffer; at: number } {
    const shared = new SharedArrayBuffer(to - from + 13);
    Buffer.from(shared).set(data.subarray(from, to), 13);
    return { shared, at: 13 };
  }

  it('hashes a run at the edge from memory, reads back blocks written ahead, and gives the file hash', async () => {
    const w = world('offer', 8 * BLOCK + 5);
    const h = w.make();
    // Blocks 3 and 4 arrive first (ahead of the edge): not hashable yet, and not taken from memory.
    w.verified.set(3);
    w.verified.set(4);
    const ahead = inSlot(w.data, 3 * BLOCK, 5 * BLOCK);
    expect(h.offer(3 * BLOCK, ahead.shared, ahead.at, 2 * BLOCK)).toBeUndefined();
    // Then 0..2 at the edge: taken from memory; 3 and 4 are read back from the file after them.
    for (let i = 0; i < 3; i++) w.verified.set(i);
    const edge = inSlot(w.data, 0, 3 * BLOCK);
    const p = h.offer(0, edge.shared, edge.at, 3 * BLOCK);
    expect(p).toBeDefined();
    await p;
    await h.idle();
    expect(h.hashed).toBe(5 * BLOCK);
    expect(w.reads.map((r) => [r.position, r.length])).toEqual([[3 * BLOCK, 2 * BLOCK]]);
    for (let i = 5; i < w.n; i++) w.verified.set(i);
    const tail = inSlot(w.data, 5 * BLOCK, w.data.length);
    await h.offer(5 * BLOCK, tail.shared, tail.at, w.data.length - 5 * BLOCK);
    expect(await h.finish()).toEqual({ hex: sha(w.data), read: w.data.length });
    expect(w.threads.at(-1)!.bytes).toEqual({ memory: w.data.length - 2 * BLOCK, file: 2 * BLOCK });
  });

  it('never takes memory that is not the next bytes: a run behind, ahead or while a read is in flight', async () => {
    const w = world('offer-not', 6 * BLOCK);
    const h = w.make();
    for (let i = 0; i < 4; i++) w.verified.set(i);
    h.advance(); // a read-back of 0..3 is in flight
    const wrong = inSlot(Buffer.alloc(6 * BLOCK, 0xee), 0, 2 * BLOCK); // bytes that are not the file's
    expect(h.offer(0, wrong.shared, wrong.at, 2 * BLOCK)).toBeUndefined();
    await h.idle();
    expect(h.offer(0, wrong.shared, wrong.at, 2 * BLOCK)).toBeUndefined(); // behind the hash
    expect(h.offer(5 * BLOCK, wrong.shared, wrong.at, BLOCK)).toBeUndefined(); // beyond the verified edge
    for (let i = 4; i < w.n; i++) w.verified.set(i);
    expect(await h.finish()).toEqual({ hex: sha(w.data), read: w.data.length });
  });
});
