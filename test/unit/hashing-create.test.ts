// createKascade on generated files, checked against node:crypto, plus the read plan and block-size validation.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KfetchError } from '../../src/errors.js';
import { planReadPasses, validateBlockSizes } from '../../src/hashing/chunk-plan.js';
import { createKascade } from '../../src/hashing/create-kascade.js';
import { createHashPool, type HashPool } from '../../src/hashing/pool.js';
import { parseKascade } from '../../src/kascade/parse.js';
import { serializeKascade } from '../../src/kascade/serialize.js';
import { VERSION } from '../../src/version.js';

const TRACKER = 'http://127.0.0.1:7000';
let pool: HashPool;
let dir: string;

beforeAll(() => {
  pool = createHashPool({ threads: 2 });
  dir = mkdtempSync(join(tmpdir(), 'kfetch-hashing-'));
});
afterAll(async () => {
  await pool.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** SPEC §1 vector content: SHA-256(be32(0)) ‖ SHA-256(be32(1)) ‖ …, cut to `n` bytes. */
function specContent(n: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; parts.length * 32 < n; i++) {
    const be = Buffer.alloc(4);
    be.writeUInt32BE(i);
    parts.push(createHash('sha256').update(be).digest());
  }
  return Buffer.concat(parts).subarray(0, n);
}

/** Deterministic pseudo-random bytes (so failures reproduce). */
function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

function file(name: string, data: Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
}

function expectedMd5s(data: Buffer, size: number): string[] {
  const out: string[] = [];
  for (let at = 0; at < data.length; at += size) out.push(createHash('md5').update(data.subarray(at, at + size)).digest('hex'));
  return out;
}

async function checkAgainstCrypto(name: string, data: Buffer, sizes: number[], limits?: Record<string, number>) {
  const path = file(name, data);
  const k = await createKascade({ path, tracker: TRACKER, blockSizes: sizes, pool, ...(limits === undefined ? {} : { limits }) });
  expect(k.filename).toBe(name);
  expect(k.filesize).toBe(data.length);
  expect(k.filehash).toBe(createHash('sha256').update(data).digest('hex'));
  expect(k.swarmId).toBe(k.filehash);
  expect(k.dialect).toBe(2015);
  expect(k.tracker).toBe(`${TRACKER}/peers/${k.filehash}.json`);
  expect(k.extra['created by']).toBe(`kfetch/${VERSION}`);
  expect(k.blockSizes).toEqual([...new Set(sizes)].sort((a, b) => a - b));
  for (const size of sizes) expect(k.blockhashes.get(size)).toEqual(expectedMd5s(data, size));
  // What we produce is what a reader parses.
  expect(serializeKascade(parseKascade(serializeKascade(k)))).toBe(serializeKascade(k));
  return k;
}

describe('createKascade', () => {
  it('matches the SPEC §1 test vector (4096 + 8192)', async () => {
    const k = await checkAgainstCrypto('vector.bin', specContent(10_000), [4096, 8192]);
    expect(k.filehash).toBe('01b944a73e124115caaed0787c66b896ed7662d3116ced9cb08ef7aafc109f16');
    expect(k.blockhashes.get(4096)).toEqual([
      '2ed6072327c1976b99a1de3f3ce5e951',
      '551101ea87c48eb536b1107d9d665cd7',
      '817848599fd0e3b2bd1bda52c6a03845',
    ]);
    expect(k.blockhashes.get(8192)).toEqual(['eb8eeefb7e6013e1df12a220e91ec742', '817848599fd0e3b2bd1bda52c6a03845']);
  });

  it('handles an empty file: 0 blocks', async () => {
    const k = await checkAgainstCrypto('empty.bin', Buffer.alloc(0), [4096]);
    expect(k.blockhashes.get(4096)).toEqual([]);
  });

  it('handles a 1-byte file', async () => {
    await checkAgainstCrypto('one.bin', Buffer.from([0x61]), [4096]);
  });

  it('handles a file of exactly one block', async () => {
    const k = await checkAgainstCrypto('block.bin', bytes(4096), [4096]);
    expect(k.blockhashes.get(4096)).toHaveLength(1);
  });

  it('handles many blocks and a short last block, across many chunks', async () => {
    const data = bytes(300 * 1024 + 123, 7);
    // Tiny chunks and in-flight budget: the read-ahead/worker pipeline runs many rounds.
    await checkAgainstCrypto('many.bin', data, [1024], { hashChunkBytes: 8192, hashInFlightBytes: 16384 });
    await checkAgainstCrypto('many-default.bin', data, [1024, 65536]);
  });

  it('handles block sizes that are not powers of two (1000 and 1536)', async () => {
    const data = bytes(1_000_000 + 17, 3);
    await checkAgainstCrypto('odd.bin', data, [1000, 1536], { hashChunkBytes: 50_000 });
  });

  it('hashes 1024, 4096 and 262144 (create --compat-2015) in one read pass, across many chunks', async () => {
    expect(planReadPasses([1024, 4096, 262144], 8 << 20)).toEqual([{ blockSizes: [1024, 4096, 262144], chunkBytes: 8 << 20, sha256: true }]);
    // Chunks of one 262144-byte block: every chunk holds whole blocks of all three sizes; the file ends mid-block.
    await checkAgainstCrypto('compat.bin', bytes(3 * 262144 + 5000, 9), [262144, 1024, 4096], { hashChunkBytes: 262144 });
  });

  it('hashes each size in its own pass when the LCM is over 64 MiB', async () => {
    expect(planReadPasses([65519, 65521], 8 << 20)).toHaveLength(2);
    const done: number[] = [];
    const data = bytes(200_000, 9);
    const path = file('primes.bin', data);
    const k = await createKascade({ path, tracker: TRACKER, blockSizes: [65519, 65521], pool, onProgress: (d, t) => done.push(d / t) });
    expect(k.filehash).toBe(createHash('sha256').update(data).digest('hex'));
    expect(k.blockhashes.get(65519)).toEqual(expectedMd5s(data, 65519));
    expect(k.blockhashes.get(65521)).toEqual(expectedMd5s(data, 65521));
    expect(done.at(-1)).toBe(1);
  });

  it('reports monotonic progress ending at the total', async () => {
    const data = bytes(100_000, 5);
    const path = file('progress.bin', data);
    const seen: Array<[number, number]> = [];
    await createKascade({ path, tracker: TRACKER, blockSizes: [1024], pool, limits: { hashChunkBytes: 10_240 }, onProgress: (d, t) => seen.push([d, t]) });
    expect(seen.length).toBeGreaterThan(5);
    for (let i = 1; i < seen.length; i++) expect(seen[i]![0]).toBeGreaterThanOrEqual(seen[i - 1]![0]);
    expect(seen.at(-1)).toEqual([100_000, 100_000]);
  });

  it('keeps peers and writes a tracker URL with a path as given', async () => {
    const path = file('peers.bin', bytes(5000));
    const k = await createKascade({ path, tracker: 'http://t.example:7000/announce', blockSizes: [1024], peers: ['127.0.0.1:8000', '[::1]:9000'], pool });
    expect(k.tracker).toBe('http://t.example:7000/announce');
    expect(k.peers).toEqual(['127.0.0.1:8000', '[::1]:9000']);
  });

  it('stops mid-file when the signal is aborted, and the pool keeps working', async () => {
    const data = bytes(2_000_000, 11);
    const path = file('abort-mid.bin', data);
    const ac = new AbortController();
    const run = createKascade({
      path, tracker: TRACKER, blockSizes: [1024], pool, signal: ac.signal, limits: { hashChunkBytes: 16_384 },
      onProgress: (done) => { if (done > 100_000) ac.abort(new Error('user stop')); },
    });
    await expect(run).rejects.toThrow('user stop');
    await checkAgainstCrypto('after-abort.bin', data, [1024]);
  });

  it('stops when the signal is aborted', async () => {
    const path = file('abort.bin', bytes(50_000));
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(createKascade({ path, tracker: TRACKER, blockSizes: [1024], pool, signal: ac.signal })).rejects.toThrow('stop');
  });
});

describe('createKascade refuses bad input', () => {
  const code = async (p: Promise<unknown>): Promise<[string, string | undefined]> => {
    try {
      await p;
    } catch (err) {
      expect(err).toBeInstanceOf(KfetchError);
      return [(err as KfetchError).code, (err as KfetchError).field];
    }
    throw new Error('did not throw');
  };

  it.each([
    ['too small', [511]],
    ['too large', [64 * 1024 * 1024 + 1]],
    ['zero', [0]],
    ['fractional', [1024.5]],
    ['negative', [-4096]],
    ['none', []],
  ])('block size %s -> KF_E_INPUT naming --block-size', async (_name, sizes) => {
    const path = file('bad-size.bin', bytes(4096));
    expect(await code(createKascade({ path, tracker: TRACKER, blockSizes: sizes, pool }))).toEqual(['KF_E_INPUT', '--block-size']);
  });

  it('too many blocks for the file -> KF_E_INPUT naming --block-size', async () => {
    const path = file('count.bin', bytes(10_000));
    const limits = { maxBlocksPerSize: 9 };
    expect(await code(createKascade({ path, tracker: TRACKER, blockSizes: [1024], pool, limits }))).toEqual(['KF_E_INPUT', '--block-size']);
    expect(() => validateBlockSizes([1024], 10_000, { minBlockSize: 512, maxBlockSize: 1 << 26, maxBlocksPerSize: 9 })).toThrow(/10 blocks/);
  });

  it('a missing file -> KF_E_INPUT naming the file', async () => {
    const path = join(dir, 'nope.bin');
    const err = await createKascade({ path, tracker: TRACKER, blockSizes: [1024], pool }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'KF_E_INPUT', file: path });
  });

  it('a FIFO -> KF_E_INPUT at once (no wait for a writer)', async () => {
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    expect(await code(createKascade({ path: fifo, tracker: TRACKER, blockSizes: [1024], pool }))).toEqual(['KF_E_INPUT', undefined]);
  });

  it('a directory -> KF_E_INPUT', async () => {
    expect(await code(createKascade({ path: dir, tracker: TRACKER, blockSizes: [1024], pool }))).toEqual(['KF_E_INPUT', undefined]);
  });

  it.each(['ftp://127.0.0.1/', 'not a url', 'http://user:pw@127.0.0.1:7000'])('tracker %s -> KF_E_KASCADE_TRACKER', async (tracker) => {
    const path = file('tracker.bin', bytes(4096));
    expect(await code(createKascade({ path, tracker, blockSizes: [1024], pool }))).toEqual(['KF_E_KASCADE_TRACKER', '--tracker']);
  });

  it('a bad peer -> error naming --peer', async () => {
    const path = file('peer.bin', bytes(4096));
    expect((await code(createKascade({ path, tracker: TRACKER, blockSizes: [1024], peers: ['no-port'], pool })))[1]).toBe('--peer');
  });

  it('a file name that cannot be a kascade filename -> KF_E_KASCADE_NAME', async () => {
    const path = file('bad:name.bin', bytes(100));
    expect(await code(createKascade({ path, tracker: TRACKER, blockSizes: [1024], pool }))).toEqual(['KF_E_KASCADE_NAME', 'filename']);
  });
});
