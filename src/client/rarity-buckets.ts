// The blocks waiting to be requested, grouped by how many peers hold them, so the picker finds the rarest block a
// peer holds without scanning the whole file (a 1 GiB file at 1 KiB blocks has a million). O(1) add/remove/move.

export class RarityBuckets {
  private readonly buckets: number[][] = [];
  /** Position of block i inside its bucket, -1 when absent. */
  private readonly pos: Int32Array;
  /** Bucket (availability count) block i sits in. */
  private readonly bucketOf: Int32Array;
  private count = 0;

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
   * (random start, then in order). Undefined when no present block is accepted.
   */
  pick(holds: (i: number) => boolean, random: () => number): number | undefined {
    for (let c = 1; c < this.buckets.length; c++) {
      const b = this.buckets[c];
      if (b === undefined || b.length === 0) continue;
      const start = Math.floor(random() * b.length);
      for (let k = 0; k < b.length; k++) {
        const i = b[(start + k) % b.length]!;
        if (holds(i)) return i;
      }
    }
    return undefined;
  }
}
