// How many known peers hold each block of one download; the picker reads it to choose the rarest block.
// Fed from tracker `blocks` extensions, peers' /blocks bitfields, and `progress` 1.0 ("has all").

import { Bitfield } from '../util/bitfield.js';

export class Availability {
  readonly blockCount: number;
  private readonly counts: Uint32Array;
  private readonly byPeer = new Map<string, Bitfield>();

  /** Called with (block, new count) whenever a block's count changes (the picker's rarity buckets follow it). */
  private readonly onChange: (i: number, count: number) => void;

  constructor(blockCount: number, onChange: (i: number, count: number) => void = () => undefined) {
    this.blockCount = blockCount;
    this.counts = new Uint32Array(blockCount);
    this.onChange = onChange;
  }

  /** Set (or replace) what `peer` holds. */
  setPeer(peer: string, held: Bitfield): void {
    if (held.length !== this.blockCount) throw new RangeError(`bitfield of ${held.length} blocks, want ${this.blockCount}`);
    this.removePeer(peer);
    this.byPeer.set(peer, held);
    for (let i = 0; i < this.blockCount; i++) if (held.has(i)) this.onChange(i, ++this.counts[i]!);
  }

  /** A peer told us (by serving it or by an update) that it holds block i. */
  addBlock(peer: string, i: number): void {
    const held = this.byPeer.get(peer);
    if (held === undefined || held.has(i)) return;
    held.set(i);
    this.onChange(i, ++this.counts[i]!);
  }

  /** A peer turned out not to hold block i (it answered 400/404 for it). */
  dropBlock(peer: string, i: number): void {
    const held = this.byPeer.get(peer);
    if (held === undefined || !held.has(i)) return;
    held.set(i, false);
    this.onChange(i, --this.counts[i]!);
  }

  removePeer(peer: string): void {
    const old = this.byPeer.get(peer);
    if (old === undefined) return;
    for (let i = 0; i < this.blockCount; i++) if (old.has(i)) this.onChange(i, --this.counts[i]!);
    this.byPeer.delete(peer);
  }

  has(peer: string, i: number): boolean {
    return this.byPeer.get(peer)?.has(i) ?? false;
  }

  held(peer: string): Bitfield | undefined {
    return this.byPeer.get(peer);
  }

  count(i: number): number {
    return this.counts[i] ?? 0;
  }

  get peers(): string[] {
    return [...this.byPeer.keys()];
  }
}
