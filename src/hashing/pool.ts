// The hashing worker pool (piscina over dist/workers/hash.js) with typed helpers for each task kind.
// Used by create-kascade.ts, verify-file.ts and the seed/resume verification.

import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { Sha256FileResult, Sha256FileTask, VerifyWriteBatchResult, VerifyWriteBatchTask } from '../../workers/block-write.js';
import type {
  Md5BlocksResult,
  Md5BlocksTask,
  VerifyRangeResult,
  VerifyRangeTask,
  WorkerResult,
  WorkerTask,
} from '../../workers/hash-task.js';
import { KfetchError } from '../errors.js';

export interface HashPool {
  /** Number of worker threads. */
  readonly threads: number;
  /** MD5 of the blocks in a chunk; `task.chunk` is transferred (unusable by the caller until the result returns it). */
  md5Blocks(task: Md5BlocksTask, opts?: { signal?: AbortSignal }): Promise<Md5BlocksResult>;
  /** Re-hash a range of blocks of an open fd and compare with the expected MD5s. */
  verifyRange(task: VerifyRangeTask, opts?: { signal?: AbortSignal }): Promise<VerifyRangeResult>;
  /**
   * Download: verify runs of blocks and write the good ones from shared-memory slots the caller holds until this
   * settles.
   * A signal aborted before the call rejects at once; once submitted the write is never cut off by the signal
   * (piscina would kill the worker mid-write), the caller discards the result instead.
   */
  verifyWrite(task: VerifyWriteBatchTask, signal?: AbortSignal): Promise<VerifyWriteBatchResult>;
  /** Download: SHA-256 of an open file's first `size` bytes; aborting ends the read (a read is safe to cut). */
  sha256File(task: Sha256FileTask, signal?: AbortSignal): Promise<Sha256FileResult>;
  /** Stop every worker; queued tasks are rejected. */
  destroy(): Promise<void>;
}

/**
 * A worker entry file from the build: dist/src/<dir>/x.js -> dist/workers/<name>.js. When the caller runs from
 * source (vitest transforms src/ but never worker threads), the built worker under dist/. Used by this pool and the
 * download's SHA-256 thread (client/sha256-thread.ts).
 */
export function builtWorkerFile(name: string, what: string): string {
  const candidates = [new URL(`../../workers/${name}.js`, import.meta.url), new URL(`../../dist/workers/${name}.js`, import.meta.url)];
  for (const url of candidates) {
    const path = fileURLToPath(url);
    if (existsSync(path)) return path;
  }
  throw new KfetchError('KF_E_INTERNAL', `${what} not found at ${fileURLToPath(candidates[0]!)}; run \`npm run build\``);
}

/** Start a pool of hashing workers; `threads` defaults to the number of cores. */
export function createHashPool(opts: { threads?: number } = {}): HashPool {
  const threads = opts.threads ?? availableParallelism();
  if (!Number.isSafeInteger(threads) || threads < 1) {
    throw new KfetchError('KF_E_INPUT', `thread count must be a positive integer, got ${threads}`, { field: '--threads' });
  }
  const piscina = new Piscina<WorkerTask, WorkerResult>({
    filename: builtWorkerFile('hash', 'hash worker'),
    // Threads start on the first task (a command that fails its checks never pays for them) and stop after a
    // minute idle; a long-lived seeder does not keep idle threads around.
    minThreads: 0,
    maxThreads: threads,
    idleTimeout: 60_000,
    // Workers allocate almost nothing per task (blocks arrive in shared slots, buffers are reused): a small young
    // generation keeps each thread's RSS down.
    resourceLimits: { maxYoungGenerationSizeMb: 2 },
    concurrentTasksPerWorker: 1,
  });

  /**
   * `signal` only keeps a task from starting. It is never handed to piscina, which terminates the worker of an
   * aborted running task; a result already posted then surfaces as an uncaught 'Unexpected message from Worker'
   * (seen in CI). Tasks are short, so a stop waits for the ones running.
   */
  async function run<R extends WorkerResult>(task: WorkerTask, transferList: ArrayBuffer[], signal: AbortSignal | undefined): Promise<R> {
    signal?.throwIfAborted();
    try {
      return (await piscina.run(task, { transferList })) as R;
    } catch (err) {
      // An abort is the caller's own doing: pass it through unchanged so it can tell it from a failure.
      if (signal?.aborted === true) throw signal.reason ?? err;
      const message = err instanceof Error ? err.message : String(err);
      // A system error's `code` does not survive the trip back from the worker; its message still starts with it.
      const errno = /^(E[A-Z0-9]+): /.exec(message)?.[1];
      if (errno !== undefined) {
        throw new KfetchError('KF_E_IO', `reading the data file: ${message}`, { cause: err, detail: { errno } });
      }
      throw new KfetchError('KF_E_WORKER', `hash worker failed (${task.kind}): ${message}`, { cause: err });
    }
  }

  return {
    threads,
    md5Blocks: (task, o = {}) => run<Md5BlocksResult>(task, [task.chunk], o.signal),
    verifyRange: (task, o = {}) => run<VerifyRangeResult>(task, [], o.signal),
    verifyWrite: async (task, signal) => {
      signal?.throwIfAborted();
      return run<VerifyWriteBatchResult>(task, [], undefined);
    },
    sha256File: (task, signal) => run<Sha256FileResult>(task, [], signal),
    destroy: () => piscina.destroy(),
  };
}
