// The blocks waiting to be requested, grouped by how many peers hold them, so the picker finds the rarest block a
// peer holds without scanning the whole file (a 1 GiB file at 1 KiB blocks has a million). O(1) add/remove/move.

/**
 * Indices looked at (upwards from the lowest waiting block) for a lower-index block among equally rare ones: enough
 * for the blocks in flight and written just above it, a bound on the cost of a pick in a patchy swarm.
 */
const LOW_SCAN_BLOCKS = 4096;

/**
 * `lowFirst` picks at random among the lowest this-many equally rare candidates, not always the very lowest: the
 * prefix still grows steadily (it lags by at most the window), while downloaders that start together ask for
 * different blocks and so have something to trade. 1/64 of the file, between 4 and 64 blocks.
 */
export function lowWindow(blockCount: number): number {
  return Math.min(64, Math.max(4, Math.ceil(blockCount / 64)));
}

export class RarityBuckets {
  private readonly buckets: number[][] = [];
  /** Position of block i inside its bucket, -1 when absent. */
  private readonly pos: Int32Array;
  /** Bucket (availability count) block i sits in. */
  private readonly bucketOf: Int32Array;
  private count = 0;
  /** No block below this index is present (a lower bound, moved up lazily by `lowest`). */
  private low = 0;

  constructor(blockCount: number) {
    this.pos = new Int32Array(blockCount).fill(-1);
    this.bucketOf = new Int32Array(blockCount);
  }

  get size(): number {
    return this.count;
  }

  has(i: number): boolean {
    return this.pos[i] !== -1;
  }

  /** Add block i with `holders` peers holding it (no-op if present). */
  add(i: number, holders: number): void {
    if (this.pos[i] !== -1) return;
    const b = (this.buckets[holders] ??= []);
    this.pos[i] = b.length;
    this.bucketOf[i] = holders;
    b.push(i);
    this.count++;
    if (i < this.low) this.low = i;
  }

  remove(i: number): void {
    const p = this.pos[i]!;
    if (p === -1) return;
    const b = this.buckets[this.bucketOf[i]!]!;
    const last = b.pop()!;
    if (last !== i) {
      b[p] = last;
      this.pos[last] = p;
    }
    this.pos[i] = -1;
    this.count--;
  }

  /** Block i's holder count changed; moves it if present. */
  update(i: number, holders: number): void {
    if (this.pos[i] === -1 || this.bucketOf[i] === holders) return;
    this.remove(i);
    this.add(i, holders);
  }

  /**
   * The block with the fewest holders (at least one) that `holds` accepts; among equally rare ones a random one
   * (random start, then in order), or with `lowFirst` a random one of the lowest-index few (`lowWindow`; looking at
   * most LOW_SCAN_BLOCKS up from the lowest waiting block, else the random one). Undefined when none is accepted.
   */
  pick(holds: (i: number) => boolean, random: () => number, lowFirst = false): number | undefined {
    for (let c = 1; c < this.buckets.length; c++) {
      const b = this.buckets[c];
      if (b === undefined || b.length === 0) continue;
      const start = Math.floor(random() * b.length);
      for (let k = 0; k < b.length; k++) {
        const i = b[(start + k) % b.length]!;
        if (holds(i)) return lowFirst ? this.lowest(c, holds, i, random) : i;
      }
    }
    return undefined;
  }

  /**
   * A random one of the lowest `lowWindow` blocks in bucket `c` that `holds` accepts, within the scan bound; `found`
   * (the random pick) if there is none.
   */
  private lowest(c: number, holds: (i: number) => boolean, found: number, random: () => number): number {
    while (this.low < this.pos.length && this.pos[this.low] === -1) this.low++;
    const want = lowWindow(this.pos.length);
    const end = Math.min(this.pos.length, this.low + LOW_SCAN_BLOCKS);
    const candidates: number[] = [];
    for (let i = this.low; i < end && candidates.length < want; i++) {
      if (this.pos[i] !== -1 && this.bucketOf[i] === c && holds(i)) candidates.push(i);
    }
    if (candidates.length === 0) return found;
    return candidates[Math.min(candidates.length - 1, Math.floor(random() * candidates.length))]!;
  }
}
