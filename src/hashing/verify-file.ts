// Hashes every block of a data file against a Kascade's block hashes in the hash workers, by positional reads on
// an fd the caller opened. The engine of client/recheck.ts (which decides what to trust and opens the file
// read-only); also used by `kfetch seed`.

import { KfetchError } from '../errors.js';
import type { Kascade } from '../kascade/kascade.js';
import { LIMITS } from '../limits.js';
import { Bitfield } from '../util/bitfield.js';
import type { HashPool } from './pool.js';

export interface VerifyFileOptions {
  kascade: Kascade;
  /** An offered block size of `kascade`. */
  blockSize: number;
  /** An fd open for reading on the data file; stays open (and owned by the caller) afterwards. */
  fd: number;
  pool: HashPool;
  signal?: AbortSignal;
  /** Called as ranges finish; `total` is the file size. */
  onProgress?: (bytesDone: number, total: number) => void;
  limits?: Partial<{ hashChunkBytes: number; hashInFlightBytes: number }>;
}

/**
 * Hash every block of the file at `blockSize` and return the bitfield of blocks whose MD5 matched. A block that
 * cannot be read whole (the file is shorter) is not set. Read errors reject the promise.
 */
export async function verifyFile(opts: VerifyFileOptions): Promise<Bitfield> {
  const { kascade, blockSize, fd, pool, signal } = opts;
  const chunkBytes = opts.limits?.hashChunkBytes ?? LIMITS.hashChunkBytes;
  const inFlightBytes = opts.limits?.hashInFlightBytes ?? LIMITS.hashInFlightBytes;
  if (!kascade.offers(blockSize)) {
    throw new KfetchError('KF_E_INPUT', `block size ${blockSize} is not offered by this kascade (offers ${kascade.blockSizes.join(', ')})`, {
      field: 'blocksize',
    });
  }
  const geometry = kascade.geometry(blockSize);
  const hashes = kascade.blockhashes.get(blockSize)!;
  const bits = new Bitfield(geometry.count);
  const perTask = Math.max(1, Math.floor(chunkBytes / blockSize));
  const taskBytes = perTask * blockSize;
  const inFlightMax = Math.max(1, Math.min(2 * pool.threads, Math.floor(inFlightBytes / taskBytes)));

  // No signal goes to piscina: it terminates a worker whose running task is aborted, and a result already on its
  // way then surfaces as an uncaught 'Unexpected message from Worker'. Aborts stop new tasks; running ones finish.
  const inFlight = new Set<Promise<void>>();
  let failure: { err: unknown } | undefined;
  let done = 0;

  try {
    for (let first = 0; first < geometry.count && failure === undefined; first += perTask) {
      signal?.throwIfAborted();
      const last = Math.min(first + perTask, geometry.count) - 1;
      const bytes = geometry.range(last).last + 1 - geometry.start(first);
      const task = pool
        .verifyRange(
          { kind: 'verify-range', fd, blockSize, filesize: kascade.filesize, first, last, expected: hashes.slice(first, last + 1) },
        )
        .then((r) => {
          r.matched.forEach((ok, k) => {
            if (ok === 1) bits.set(r.first + k);
          });
          done += bytes;
          opts.onProgress?.(done, kascade.filesize);
        })
        .catch((err: unknown) => {
          failure ??= { err };
        });
      const tracked = task.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
      while (inFlight.size >= inFlightMax) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    if (failure !== undefined) throw failure.err;
    signal?.throwIfAborted();
    return bits;
  } catch (err) {
    await Promise.allSettled(inFlight);
    throw signal?.aborted === true ? (signal.reason ?? err) : err;
  }
}
