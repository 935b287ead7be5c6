// The piscina worker entry: MD5 of the blocks in a chunk (`kfetch create`), re-verification of block ranges of an
// open file (seed, resume), and the download's verify+write and whole-file SHA-256 (block-write.ts).
// Loaded from the build (dist/workers/hash.js) by src/hashing/pool.ts.

import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { sha256File, verifyWriteBatch } from './block-write.js';
import type { Md5BlocksResult, Md5BlocksTask, VerifyRangeResult, VerifyRangeTask, WorkerResult, WorkerTask } from './hash-task.js';

/** Bytes read per positional read when verifying small blocks: several whole blocks at once, one buffer per thread. */
const VERIFY_READ_BYTES = 1024 * 1024;

/** The one read buffer of this thread, grown on demand and reused by every verify task. */
let scratch: Buffer | undefined;

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
    const out: string[] = new Array<string>(Math.ceil(length / size));
    for (let k = 0, at = 0; at < length; k++, at += size) {
      out[k] = createHash('md5').update(data.subarray(at, Math.min(at + size, length))).digest('hex');
    }
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
  // Read whole blocks, several per read when blocks are small, always into the same buffer.
  const perRead = Math.max(1, Math.floor(VERIFY_READ_BYTES / blockSize));
  const want = perRead * blockSize;
  if (scratch === undefined || scratch.length < want) scratch = Buffer.allocUnsafe(want);
  const buf = scratch;
  for (let i = first; i <= last; i += perRead) {
    const start = i * blockSize;
    const spanBlocks = Math.min(perRead, last - i + 1);
    const spanBytes = Math.max(0, Math.min(spanBlocks * blockSize, filesize - start));
    const got = readFully(fd, buf, spanBytes, start);
    for (let b = 0; b < spanBlocks; b++) {
      const at = b * blockSize;
      const size = Math.min(blockSize, filesize - (start + at));
      // A block cut short by a truncated file (or outside filesize) does not match.
      if (size <= 0 || at + size > got) continue;
      const md5 = createHash('md5').update(buf.subarray(at, at + size)).digest('hex');
      if (md5 === expected[i - first + b]) matched[i - first + b] = 1;
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
