// Block-size validation and the read plan of `kfetch create`: which block sizes are hashed in which read pass,
// and how large each read chunk is. Pure; used by create-kascade.ts and the create command.

import { KfetchError } from '../errors.js';
import { LIMITS } from '../limits.js';

export interface BlockSizeLimits {
  minBlockSize: number;
  maxBlockSize: number;
  maxBlocksPerSize: number;
}

/**
 * Check the offered block sizes against the limits and (when known) the file size; returns them sorted and
 * deduplicated. Every problem is a KF_E_INPUT naming `--block-size`.
 */
export function validateBlockSizes(
  sizes: readonly number[],
  filesize: number | undefined,
  limits: BlockSizeLimits = LIMITS,
): number[] {
  if (sizes.length === 0) throw new KfetchError('KF_E_INPUT', 'at least one block size is needed', { field: '--block-size' });
  for (const size of sizes) {
    if (!Number.isSafeInteger(size) || size < limits.minBlockSize || size > limits.maxBlockSize) {
      throw new KfetchError(
        'KF_E_INPUT',
        `block size ${size} is outside ${limits.minBlockSize}..${limits.maxBlockSize} bytes`,
        { field: '--block-size', detail: { blockSize: size, min: limits.minBlockSize, max: limits.maxBlockSize } },
      );
    }
    if (filesize !== undefined) {
      const count = Math.ceil(filesize / size);
      if (count > limits.maxBlocksPerSize) {
        throw new KfetchError(
          'KF_E_INPUT',
          `block size ${size} gives ${count} blocks for ${filesize} bytes, more than the limit of ${limits.maxBlocksPerSize}; use a larger block size`,
          { field: '--block-size', detail: { blockSize: size, blocks: count, max: limits.maxBlocksPerSize } },
        );
      }
    }
  }
  return [...new Set(sizes)].sort((a, b) => a - b);
}

/** One sequential read of the file: the sizes hashed from it and the chunk length (a multiple of each). */
export interface ReadPass {
  blockSizes: number[];
  chunkBytes: number;
  /** The whole-file SHA-256 is computed during this pass (the first one). */
  sha256: boolean;
}

/** Above this, a chunk holding whole blocks of every size would be too large for one buffer. */
const MAX_LCM = 64 * 1024 * 1024;

/**
 * Plan the read passes. Normally one pass: a chunk is a multiple of the LCM of all sizes, so every chunk holds
 * whole blocks of every size and one read feeds every hash. If the LCM exceeds 64 MiB (sizes such as 1000 and
 * 1048573 have a huge LCM), a common chunk would not fit in memory, so each size gets its own pass instead;
 * the file is then read once per size (the SHA-256 only in the first pass).
 */
export function planReadPasses(sizes: readonly number[], chunkTarget: number = LIMITS.hashChunkBytes): ReadPass[] {
  let lcm = 1;
  for (const size of sizes) {
    lcm = (lcm / gcd(lcm, size)) * size;
    if (lcm > MAX_LCM) break;
  }
  const chunkFor = (unit: number): number => Math.max(1, Math.floor(chunkTarget / unit)) * unit;
  if (lcm <= MAX_LCM) return [{ blockSizes: [...sizes], chunkBytes: chunkFor(lcm), sha256: true }];
  return sizes.map((size, i) => ({ blockSizes: [size], chunkBytes: chunkFor(size), sha256: i === 0 }));
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}
