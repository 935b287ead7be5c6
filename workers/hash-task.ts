// Task and result types of the hashing worker (workers/hash.ts). The pool (src/hashing/pool.ts) and its callers
// import these; nothing here imports from src/, so workers stay independent of it.

import type { Sha256FileResult, Sha256FileTask, VerifyWriteBatchResult, VerifyWriteBatchTask } from './block-write.js';

/**
 * Hash every block of every given size inside one chunk of a file with MD5.
 * `chunk` is transferred to the worker (never copied) and transferred back in the result for reuse.
 */
export interface Md5BlocksTask {
  kind: 'md5-blocks';
  /** The chunk's bytes; only the first `length` bytes are data. */
  chunk: ArrayBuffer;
  /** Bytes of data in `chunk` (the file's last chunk is usually shorter than the buffer). */
  length: number;
  /** File offset of the chunk's first byte; a multiple of every block size. */
  offset: number;
  /** Block sizes to hash. `length` is a multiple of each, unless `final` is set. */
  blockSizes: readonly number[];
  /** The chunk ends the file, so its last block at each size may be short. */
  final: boolean;
}

export interface Md5BlocksResult {
  kind: 'md5-blocks';
  offset: number;
  /** Per entry of `blockSizes`, in order: lowercase MD5 hex of each block in the chunk. */
  hashes: string[][];
  /** The task's buffer, handed back so the caller can read the next chunk into it. */
  chunk: ArrayBuffer;
}

/**
 * Re-hash blocks `first..last` (inclusive) of an open file with positional reads and compare with `expected`.
 * `fd` belongs to the calling process (file descriptors are shared by all threads); the worker never opens a path.
 */
export interface VerifyRangeTask {
  kind: 'verify-range';
  fd: number;
  blockSize: number;
  /** The size the file should have; sets the length of the last block. */
  filesize: number;
  first: number;
  last: number;
  /** Lowercase MD5 hex of blocks first..last, in order (`expected[k]` is block `first + k`). */
  expected: readonly string[];
}

export interface VerifyRangeResult {
  kind: 'verify-range';
  first: number;
  /** One byte per block of the range: 1 when the block read back whole and its MD5 matched, else 0. */
  matched: Uint8Array;
}

export type HashTask = Md5BlocksTask | VerifyRangeTask;
export type HashResult = Md5BlocksResult | VerifyRangeResult;

/** Every task the worker dispatches: hashing (this file) and the download's block writes (block-write.ts). */
export type WorkerTask = HashTask | VerifyWriteBatchTask | Sha256FileTask;
export type WorkerResult = HashResult | VerifyWriteBatchResult | Sha256FileResult;
