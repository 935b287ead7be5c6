// The SPEC §4 bitfield: bit i set iff block i is held; block 0 is the most significant bit of byte 0.
// Used by the tracker (blocks extension), the block server (/blocks) and the download engine.

import { isHex } from './hex.js';

export class Bitfield {
  readonly length: number;
  private readonly bytes: Uint8Array;
  private setCount = 0;

  constructor(length: number, bytes?: Uint8Array) {
    if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`bitfield length ${length}`);
    this.length = length;
    this.bytes = new Uint8Array(Math.ceil(length / 8));
    if (bytes !== undefined) {
      this.bytes.set(bytes.subarray(0, this.bytes.length));
      // Extra bits past `length` are ignored (SPEC §4).
      const tail = length % 8;
      if (tail !== 0 && this.bytes.length > 0) this.bytes[this.bytes.length - 1]! &= 0xff << (8 - tail);
      for (const b of this.bytes) this.setCount += popcount(b);
    }
  }

  /** A bitfield with every block held. */
  static full(length: number): Bitfield {
    const bf = new Bitfield(length);
    for (let i = 0; i < length; i++) bf.set(i);
    return bf;
  }

  /**
   * Decode SPEC §4 hex. Missing trailing bytes are zeros and extra bits are ignored.
   * Returns undefined for non-hex or an odd number of digits; with `exact`, also when the byte count is not ceil(n/8).
   */
  static fromHex(hex: string, length: number, exact = false): Bitfield | undefined {
    if (hex.length % 2 !== 0 || !isHex(hex)) return undefined;
    const want = Math.ceil(length / 8);
    if (exact && hex.length !== want * 2) return undefined;
    const bytes = Buffer.from(hex.slice(0, want * 2), 'hex');
    return new Bitfield(length, bytes);
  }

  has(i: number): boolean {
    if (i < 0 || i >= this.length) return false;
    return ((this.bytes[i >> 3]! >> (7 - (i & 7))) & 1) === 1;
  }

  set(i: number, value = true): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new RangeError(`block ${i} outside 0..${this.length - 1}`);
    const had = this.has(i);
    if (had === value) return;
    const mask = 1 << (7 - (i & 7));
    if (value) this.bytes[i >> 3]! |= mask;
    else this.bytes[i >> 3]! &= ~mask;
    this.setCount += value ? 1 : -1;
  }

  /** Number of blocks held. */
  get count(): number {
    return this.setCount;
  }

  get complete(): boolean {
    return this.setCount === this.length;
  }

  /** True if every block in [first, last] is held. */
  hasAll(first: number, last: number): boolean {
    for (let i = first; i <= last; i++) if (!this.has(i)) return false;
    return true;
  }

  toHex(): string {
    return Buffer.from(this.bytes).toString('hex');
  }

  toBytes(): Uint8Array {
    return this.bytes.slice();
  }
}

function popcount(b: number): number {
  let c = 0;
  for (let x = b; x !== 0; x &= x - 1) c++;
  return c;
}
