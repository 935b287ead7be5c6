// recheck: the one re-check of a data file (resume, adopt, repair, the box's scrub). It finds exactly the blocks
// that match, trusts a checkpoint only while the file is the one it described, and never resizes or writes the
// file (issue 10: the scrub must never resize a file).

import { mkdtempSync, rmSync, statSync, symlinkSync, truncateSync, utimesSync, writeFileSync, mkdirSync, openSync, writeSync, closeSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recheck, type RecordedFacts } from '../../src/client/recheck.js';
import { createKascade } from '../../src/hashing/create-kascade.js';
import { createHashPool, type HashPool } from '../../src/hashing/pool.js';
import type { Kascade } from '../../src/kascade/kascade.js';
import { Bitfield } from '../../src/util/bitfield.js';

const B = 4096;
let pool: HashPool;
let dir: string;

beforeAll(() => {
  pool = createHashPool({ threads: 2 });
  dir = mkdtempSync(join(tmpdir(), 'kfetch-recheck-'));
});
afterAll(async () => {
  await pool.destroy();
  rmSync(dir, { recursive: true, force: true });
});

async function setup(name: string, blocks = 16): Promise<{ path: string; k: Kascade; data: Buffer }> {
  const data = randomBytes(blocks * B - 7);
  const path = join(dir, name);
  writeFileSync(path, data);
  const k = await createKascade({ path, tracker: 'http://127.0.0.1:7000', blockSizes: [B], pool });
  return { path, k, data };
}

const indices = (bf: Bitfield): number[] => Array.from({ length: bf.length }, (_, i) => i).filter((i) => bf.has(i));
const facts = (path: string): RecordedFacts => {
  const st = statSync(path);
  return { size: st.size, mtimeMs: st.mtimeMs, dev: st.dev, ino: st.ino };
};

describe('recheck', () => {
  it('trusting nothing, finds exactly the blocks that match', async () => {
    const { path, k } = await setup('flip');
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from([0]), 0, 1, 5 * B + 3);
    writeSync(fd, Buffer.from([1]), 0, 1, 5 * B + 4);
    closeSync(fd);
    const progress: number[] = [];
    const r = await recheck({ path, kascade: k, blockSize: B, pool, trust: { kind: 'nothing' }, onProgress: (d) => progress.push(d) });
    expect(r.hashed).toBe(true);
    expect(indices(r.durable)).toEqual([...Array(16).keys()].filter((i) => i !== 5));
    expect(progress[0]).toBe(0);
    expect(progress.at(-1)).toBe(k.filesize);
  });

  it('trusts the recorded blocks without hashing while the file is as recorded, and hashes everything once it is not', async () => {
    const { path, k } = await setup('recorded');
    const recorded = new Bitfield(16);
    for (const i of [0, 1, 2]) recorded.set(i);
    const trust = { kind: 'recorded' as const, blocks: recorded, facts: facts(path) };
    const same = await recheck({ path, kascade: k, blockSize: B, pool, trust });
    expect(same.hashed).toBe(false);
    expect(indices(same.durable)).toEqual([0, 1, 2]);
    expect(same.durable).not.toBe(recorded); // a copy: the caller's checkpoint bits are not shared

    utimesSync(path, new Date(), new Date(Date.now() - 60_000));
    const touched = await recheck({ path, kascade: k, blockSize: B, pool, trust });
    expect(touched.hashed).toBe(true);
    expect(touched.durable.count).toBe(16);
  });

  it('never resizes: a short file stays short (its missing blocks are not durable), a long one stays long', async () => {
    const short = await setup('short');
    truncateSync(short.path, 9 * B + 100);
    const r = await recheck({ path: short.path, kascade: short.k, blockSize: B, pool, trust: { kind: 'nothing' } });
    expect(indices(r.durable)).toEqual([...Array(9).keys()]);
    expect(r.size).toBe(9 * B + 100);
    expect(statSync(short.path).size).toBe(9 * B + 100);

    const long = await setup('long');
    const longer = Buffer.concat([long.data, Buffer.from('tail')]);
    writeFileSync(long.path, longer);
    const mtime = statSync(long.path).mtimeMs;
    const l = await recheck({ path: long.path, kascade: long.k, blockSize: B, pool, trust: { kind: 'nothing' } });
    expect(l.durable.count).toBe(16);
    expect(statSync(long.path).size).toBe(longer.length);
    expect(statSync(long.path).mtimeMs).toBe(mtime);
    expect(readFileSync(long.path).equals(longer)).toBe(true);
  });

  it('refuses a missing file, a symlink and a directory with KF_E_DATA_MISSING', async () => {
    const { path, k } = await setup('target');
    const link = join(dir, 'link');
    symlinkSync(path, link);
    const sub = join(dir, 'a-dir');
    mkdirSync(sub);
    for (const p of [join(dir, 'nothing-here'), link, sub]) {
      await expect(recheck({ path: p, kascade: k, blockSize: B, pool, trust: { kind: 'nothing' } })).rejects.toMatchObject({ code: 'KF_E_DATA_MISSING', file: p });
    }
  });

  it('a file written while it is hashed is refused (nothing from that check may be recorded)', async () => {
    const { path, k } = await setup('written-meanwhile');
    let wrote = false;
    const check = recheck({
      path,
      kascade: k,
      blockSize: B,
      pool,
      trust: { kind: 'nothing' },
      // Called once before hashing starts: the file is rewritten in place (same size) under the check.
      onProgress: (done) => {
        if (done !== 0 || wrote) return;
        wrote = true;
        const fd = openSync(path, 'r+');
        writeSync(fd, Buffer.from('changed'), 0, 7, 5 * B);
        closeSync(fd);
      },
    });
    await expect(check).rejects.toMatchObject({ code: 'KF_E_IO', file: path });
    expect(wrote).toBe(true);
  });

  it('says which file it checked, so the caller can refuse another one found at the path later', async () => {
    const { path, k } = await setup('identity');
    const r = await recheck({ path, kascade: k, blockSize: B, pool, trust: { kind: 'nothing' } });
    const st = statSync(path);
    expect(r.identity).toEqual({ dev: st.dev, ino: st.ino });
  });
});
