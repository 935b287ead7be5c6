// The piscina worker entry: MD5 of the blocks in a chunk (`kfetch create`), re-verification of block ranges of an
// open file (seed, resume), and the download's verify+write and whole-file SHA-256 (block-write.ts).
// Loaded from the build (dist/workers/hash.js) by src/hashing/pool.ts.

import { readSync } from 'node:fs';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { sha256File, verifyWriteBatch } from './block-write.js';
import { md5Lanes, md5Many } from './md5-multi.js';
import type { Md5BlocksResult, Md5BlocksTask, VerifyRangeResult, VerifyRangeTask, WorkerResult, WorkerTask } from './hash-task.js';

/** Bytes read per positional read when verifying small blocks: several whole blocks at once, one buffer per thread. */
const VERIFY_READ_BYTES = 1024 * 1024;

/** Upper bound of a read that exists only to give every MD5 lane a block (the chunk size tasks already hold). */
const VERIFY_READ_MAX = 8 * 1024 * 1024;

/** The one read buffer of this thread, grown on demand and reused by every verify task. */
let scratch: Buffer | undefined;

/** This thread's buffer for the digests of one call, 16 bytes per block, grown on demand. */
let digests: Buffer | undefined;
function digestBuffer(count: number): Buffer {
  if (digests === undefined || digests.length < 16 * count) digests = Buffer.allocUnsafe(16 * Math.max(count, 64));
  return digests;
}

/** Piscina calls this for every task; `kind` selects the job. */
export default function hash(task: WorkerTask): WorkerResult | ReturnType<typeof move> {
  switch (task.kind) {
    case 'md5-blocks':
      return md5Blocks(task);
    case 'verify-range':
      return verifyRange(task);
    case 'verify-write-batch':
      return verifyWriteBatch(task);
    case 'sha256-file':
      return sha256File(task);
  }
}

function md5Blocks(task: Md5BlocksTask): ReturnType<typeof move> {
  const { chunk, length, offset, blockSizes, final } = task;
  if (!Number.isSafeInteger(length) || length < 0 || length > chunk.byteLength) {
    throw new RangeError(`md5-blocks: length ${length} outside the ${chunk.byteLength}-byte chunk`);
  }
  const data = Buffer.from(chunk, 0, length);
  const hashes = blockSizes.map((size) => {
    if (!Number.isSafeInteger(size) || size <= 0 || offset % size !== 0) {
      throw new RangeError(`md5-blocks: block size ${size} does not align with offset ${offset}`);
    }
    if (!final && length % size !== 0) {
      throw new RangeError(`md5-blocks: a ${length}-byte chunk that is not the last one holds a partial ${size}-byte block`);
    }
    const count = Math.ceil(length / size);
    const views: Buffer[] = new Array<Buffer>(count);
    for (let k = 0, at = 0; at < length; k++, at += size) views[k] = data.subarray(at, Math.min(at + size, length));
    const digests = digestBuffer(count);
    md5Many(views, digests);
    const out: string[] = new Array<string>(count);
    for (let k = 0; k < count; k++) out[k] = digests.toString('hex', 16 * k, 16 * k + 16);
    return out;
  });
  const result: Md5BlocksResult = { kind: 'md5-blocks', offset, hashes, chunk };
  // Hand the buffer back by transfer so the main thread reads the next chunk into it instead of allocating.
  return move({ [transferableSymbol]: chunk, [valueSymbol]: result } as unknown as ArrayBuffer);
}

function verifyRange(task: VerifyRangeTask): VerifyRangeResult {
  const { fd, blockSize, filesize, first, last, expected } = task;
  const count = last - first + 1;
  if (!Number.isSafeInteger(count) || count < 0 || expected.length !== count) {
    throw new RangeError(`verify-range: ${expected.length} hashes for blocks ${first}..${last}`);
  }
  const matched = new Uint8Array(count);
  // Read whole blocks, several per read when blocks are small or when the MD5 hashes several at once (one per
  // SIMD lane), always into the same buffer.
  const perRead = Math.max(1, Math.floor(VERIFY_READ_BYTES / blockSize), Math.min(md5Lanes(), count, Math.floor(VERIFY_READ_MAX / blockSize)));
  const want = perRead * blockSize;
  if (scratch === undefined || scratch.length < want) scratch = Buffer.allocUnsafe(want);
  const buf = scratch;
  const views: Buffer[] = [];
  const index: number[] = [];
  for (let i = first; i <= last; i += perRead) {
    const start = i * blockSize;
    const spanBlocks = Math.min(perRead, last - i + 1);
    const spanBytes = Math.max(0, Math.min(spanBlocks * blockSize, filesize - start));
    const got = readFully(fd, buf, spanBytes, start);
    views.length = 0;
    index.length = 0;
    for (let b = 0; b < spanBlocks; b++) {
      const at = b * blockSize;
      const size = Math.min(blockSize, filesize - (start + at));
      // A block cut short by a truncated file (or outside filesize) does not match.
      if (size <= 0 || at + size > got) continue;
      views.push(buf.subarray(at, at + size));
      index.push(i - first + b);
    }
    const digests = digestBuffer(views.length);
    md5Many(views, digests);
    for (let v = 0; v < views.length; v++) {
      const k = index[v]!;
      if (digests.toString('hex', 16 * v, 16 * v + 16) === expected[k]) matched[k] = 1;
    }
  }
  return { kind: 'verify-range', first, matched };
}

/** Positional reads until `len` bytes are in `buf` or the file ends; returns the bytes read. */
function readFully(fd: number, buf: Buffer, len: number, position: number): number {
  let done = 0;
  while (done < len) {
    const n = readSync(fd, buf, done, len - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}
