// One download's blocks: one phase per block (waiting, flying, writing, written) and the requests out for each,
// with their controllers. The scheduler picks from it and the session moves blocks through it; nothing else
// keeps per-block state. No I/O, no clock.

import type { Bitfield } from '../util/bitfield.js';
import { RarityBuckets } from './rarity-buckets.js';

/** Needed, no request out for it: in `waiting`. */
const WAITING = 0;
/** Needed, requested from at least one peer. */
const FLYING = 1;
/** A copy is being verified and written: never requested again, other copies are skipped. */
const WRITING = 2;
/** Verified and written (durable once checkpointed). */
const WRITTEN = 3;

/** One request out to a peer: a block, or a multi-block range of consecutive blocks. */
export interface BlockRequest {
  readonly peer: string;
  /** Aborts the request (its deadline, a session stop, or another copy of its single block arriving first). */
  readonly ctrl: AbortController;
  /** The blocks asked for, in order. */
  readonly run: readonly number[];
}

export class BlockTable {
  readonly blockCount: number;
  /** Needed blocks with no request out, by how many peers hold them (the picker takes from here). */
  readonly waiting: RarityBuckets;
  private readonly phase: Uint8Array;
  private readonly out = new Map<number, Set<BlockRequest>>();
  private written = 0;
  private writing = 0;

  /** Blocks set in `have` start written; the others wait, held by nobody yet. */
  constructor(have: Bitfield) {
    this.blockCount = have.length;
    this.phase = new Uint8Array(this.blockCount);
    this.waiting = new RarityBuckets(this.blockCount);
    for (let i = 0; i < this.blockCount; i++) {
      if (have.has(i)) {
        this.phase[i] = WRITTEN;
        this.written++;
      } else {
        this.waiting.add(i, 0);
      }
    }
  }

  /** Blocks verified and written. */
  get writtenCount(): number {
    return this.written;
  }

  /** Blocks still needed: waiting or requested, not being written. */
  get remaining(): number {
    return this.blockCount - this.written - this.writing;
  }

  get complete(): boolean {
    return this.written === this.blockCount;
  }

  /** Blocks claimed for writing whose verify-and-write has not finished (the box's stall watch waits for them). */
  get writingCount(): number {
    return this.writing;
  }

  isWritten(i: number): boolean {
    return this.phase[i] === WRITTEN;
  }

  /** Neither written nor being written: worth requesting (again, in the endgame). */
  isNeeded(i: number): boolean {
    return this.phase[i]! < WRITING;
  }

  isWaiting(i: number): boolean {
    return this.phase[i] === WAITING;
  }

  /** The block map as runs in block order: `h` written, `f` requested or being written, `m` waiting (the box's API). */
  runs(): [string, number][] {
    const out: [string, number][] = [];
    for (let i = 0; i < this.blockCount; i++) {
      const p = this.phase[i]!;
      const c = p === WRITTEN ? 'h' : p === WAITING ? 'm' : 'f';
      const last = out[out.length - 1];
      if (last !== undefined && last[0] === c) last[1]++;
      else out.push([c, 1]);
    }
    return out;
  }

  /** The requests out for each block that has any (the picker's endgame reads it). */
  get requests(): ReadonlyMap<number, ReadonlySet<BlockRequest>> {
    return this.out;
  }

  /** `req` went out: its blocks are requested (taken out of `waiting`). */
  requested(req: BlockRequest): void {
    for (const i of req.run) {
      let reqs = this.out.get(i);
      if (reqs === undefined) this.out.set(i, (reqs = new Set()));
      reqs.add(req);
      if (this.phase[i] === WAITING) {
        this.phase[i] = FLYING;
        this.waiting.remove(i);
      }
    }
  }

  /**
   * `req` brought a copy of block i: claim it for writing. False when it is written or another copy is being
   * written (this copy is skipped). The first copy wins: other single-block requests for it are aborted (a
   * multi-block request elsewhere is left to finish, its copy is skipped then).
   */
  claim(i: number, req: BlockRequest): boolean {
    if (!this.isNeeded(i)) return false;
    this.phase[i] = WRITING;
    this.writing++;
    const reqs = this.out.get(i)!;
    if (reqs.size > 1) for (const r of reqs) if (r !== req && r.run.length === 1) r.ctrl.abort(new Error('another copy arrived'));
    return true;
  }

  /** The claimed write of block i finished: written, or not (bad, failed) and requested again when nobody has it out. */
  writeDone(i: number, written: boolean): void {
    if (this.phase[i] !== WRITING) return;
    this.writing--;
    if (written) {
      this.phase[i] = WRITTEN;
      this.written++;
    } else {
      this.phase[i] = FLYING; // its own request is still out; `settled` puts it back to waiting
    }
  }

  /** `req` is over (answered, failed or aborted): blocks nobody else has out and nobody wrote wait again. */
  settled(req: BlockRequest, holders: (i: number) => number): void {
    for (const i of req.run) {
      const reqs = this.out.get(i);
      if (reqs === undefined) continue;
      reqs.delete(req);
      if (reqs.size > 0) continue;
      this.out.delete(i);
      if (this.phase[i] === FLYING) {
        this.phase[i] = WAITING;
        this.waiting.add(i, holders(i));
      }
    }
  }

  /** A written block found bad on disk (the final check): needed again. */
  markMissing(i: number, holders: number): void {
    if (this.phase[i] !== WRITTEN) return;
    this.phase[i] = this.out.has(i) ? FLYING : WAITING;
    this.written--;
    if (this.phase[i] === WAITING) this.waiting.add(i, holders);
  }

  /** Abort every request out (the session stops). */
  abortAll(reason: Error): void {
    for (const reqs of this.out.values()) for (const r of reqs) r.ctrl.abort(reason);
  }
}
