// What a download needs from the worker pool: verify+write a block, hash the whole file. Implemented by
// src/hashing/pool.ts (one pool per process serves create, verification and downloads).

import type { Sha256FileResult, Sha256FileTask, VerifyWriteResult, VerifyWriteTask } from '../../workers/block-write.js';

export interface BlockWorkers {
  /** The caller keeps `task.shared`'s slot untouched until the promise settles. */
  verifyWrite(task: VerifyWriteTask, signal?: AbortSignal): Promise<VerifyWriteResult>;
  sha256File(task: Sha256FileTask, signal?: AbortSignal): Promise<Sha256FileResult>;
}
