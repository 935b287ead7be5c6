// What the block server serves: the files it knows (by swarm id and by filehash), which of their blocks are held
// (verified), and the rule deciding whether a byte range may be served. Used by block-server.ts, `kfetch seed`,
// download sessions (which serve what they already hold) and the seeding box.

import { Bitfield } from '../util/bitfield.js';
import type { Kascade } from '../kascade/kascade.js';
import { DataChangedError } from '../store/data-file.js';

/**
 * Where a served file's bytes come from: a store DataFile (kept open by its owner) or the box's on-demand opener;
 * both read through store/data-file.ts's readChecked, so every served byte is checked after its read.
 */
export type ByteSource = Pick<ServedFile, 'read'>;

/** One file the server can serve. Only bytes inside held (hash-verified) blocks are ever read. */
export interface ServedFile {
  readonly kascade: Kascade;
  /**
   * Positional read of exactly `length` bytes at `position` into `buf` (from offset 0), checked after the read:
   * rejects with NotHeldNowError (DataChangedError) when the data file changed or is shorter than verified. The
   * server calls it only for bytes inside held blocks, and never opens or closes anything itself.
   */
  read(buf: Buffer, length: number, position: number): Promise<number>;
  /** Blocks held at an offered block size (the server calls it only for offered sizes). */
  held(blockSize: number): Bitfield;
}

/** The set of served files, looked up by the id in a request URL: the swarm id or the filehash. */
export class Library {
  private readonly byId = new Map<string, ServedFile>();
  private readonly files = new Set<ServedFile>();

  /** Add (or replace) a file; it becomes reachable as /<swarmId> and /<filehash>. */
  add(file: ServedFile): void {
    this.remove(file.kascade.swarmId);
    this.remove(file.kascade.filehash);
    this.files.add(file);
    this.byId.set(file.kascade.swarmId.toLowerCase(), file);
    this.byId.set(file.kascade.filehash.toLowerCase(), file);
  }

  /** Remove the file known by this swarm id or filehash; returns it, or undefined if unknown. */
  remove(id: string): ServedFile | undefined {
    const file = this.byId.get(id.toLowerCase());
    if (file === undefined) return undefined;
    this.files.delete(file);
    for (const [k, v] of this.byId) if (v === file) this.byId.delete(k);
    return file;
  }

  /** The file for a URL id (swarm id or filehash, either case). */
  get(id: string): ServedFile | undefined {
    return this.byId.get(id.toLowerCase());
  }

  get size(): number {
    return this.files.size;
  }

  list(): ServedFile[] {
    return [...this.files];
  }
}

/** True when every block of the file is held (a file of 0 bytes is complete). */
export function isComplete(file: ServedFile): boolean {
  const k = file.kascade;
  return k.blockSizes.length === 0 || file.held(k.preferredBlockSize).complete;
}

/** Decision for one byte range of one file. */
export type RangeDecision = { ok: true; first: number; last: number } | { ok: false; status: 400 | 416; error: string };

/**
 * Decide whether `[first, last]` (last undefined: to the end) of `file` may be served (SPEC §3 and its extension):
 * it must lie inside the file (else 416); it must be exactly one aligned block of an offered size, or no longer than
 * `maxRangeBytes` (else 416) — an open-ended `first-` range is exempt, as the whole-file GET is, since it is how curl
 * and aria2 resume; and every byte must lie in blocks held at one offered size (else 400 "not held (yet)").
 */
export function decideRange(file: ServedFile, first: number, lastOrOpen: number | undefined, maxRangeBytes: number): RangeDecision {
  const k = file.kascade;
  if (first >= k.filesize) return { ok: false, status: 416, error: 'range starts past the end of the file' };
  const last = lastOrOpen ?? k.filesize - 1;
  if (last >= k.filesize) return { ok: false, status: 416, error: 'range ends past the end of the file' };
  const length = last - first + 1;
  if (lastOrOpen !== undefined && length > maxRangeBytes && !isOneAlignedBlock(k, first, last)) {
    return { ok: false, status: 416, error: `range longer than ${maxRangeBytes} bytes; ask for blocks` };
  }
  // Largest size first: it is the one announced, and its bitfield answers most ranges with the fewest lookups.
  for (const size of [...k.blockSizes].reverse()) {
    const held = file.held(size);
    if (held.hasAll(Math.floor(first / size), Math.floor(last / size))) return { ok: true, first, last };
  }
  return { ok: false, status: 400, error: 'block not held (yet)' };
}

function isOneAlignedBlock(k: Kascade, first: number, last: number): boolean {
  for (const size of k.blockSizes) {
    if (first % size !== 0) continue;
    const g = k.geometry(size);
    if (g.range(first / size).last === last) return true;
  }
  return false;
}

/**
 * A ServedFile whose held blocks were verified at one offered size (`verified`, at `verifiedBlockSize`); the
 * bitfields at the other offered sizes are derived: a block is held iff every verified block it overlaps is held.
 * Call `markHeld(i)` as more blocks (at the verified size) become verified. Once a read finds the data file changed
 * it holds nothing (its bitfields are empty, its progress 0) and `onChanged` is called, once.
 */
export class VerifiedServedFile implements ServedFile {
  private readonly derived = new Map<number, Bitfield>();
  private changed: DataChangedError | undefined;

  constructor(
    readonly kascade: Kascade,
    private readonly source: ByteSource,
    private readonly verified: Bitfield,
    readonly verifiedBlockSize: number,
    private readonly onChanged?: (err: DataChangedError) => void,
  ) {
    if (!kascade.offers(verifiedBlockSize)) throw new RangeError(`block size ${verifiedBlockSize} is not offered`);
    if (verified.length !== kascade.geometry(verifiedBlockSize).count) throw new RangeError('bitfield length mismatch');
  }

  async read(buf: Buffer, length: number, position: number): Promise<number> {
    if (this.changed !== undefined) throw this.changed; // a changed file stays changed: never read again
    try {
      return await this.source.read(buf, length, position);
    } catch (err) {
      if (err instanceof DataChangedError && this.changed === undefined) {
        this.changed = err;
        this.derived.clear();
        this.onChanged?.(err);
      }
      throw err;
    }
  }

  held(blockSize: number): Bitfield {
    if (this.changed === undefined && blockSize === this.verifiedBlockSize) return this.verified;
    let bf = this.derived.get(blockSize);
    if (bf === undefined) {
      // Changed: nothing is held (the verified bitfield may be its owner's checkpoint state, so it is left alone).
      bf = this.changed === undefined ? this.derive(blockSize) : new Bitfield(this.kascade.geometry(blockSize).count);
      this.derived.set(blockSize, bf);
    }
    return bf;
  }

  /** Record one more verified block (index at the verified size); derived bitfields are rebuilt lazily. */
  markHeld(i: number): void {
    this.verified.set(i);
    this.derived.clear();
  }

  /** A block (index at the verified size) turned out bad on disk: stop serving it. */
  markMissing(i: number): void {
    this.verified.set(i, false);
    this.derived.clear();
  }

  /** Fraction of blocks held at the verified size, 0..1 (1 for an empty file). */
  get progress(): number {
    if (this.changed !== undefined) return 0;
    return this.verified.length === 0 ? 1 : this.verified.count / this.verified.length;
  }

  private derive(blockSize: number): Bitfield {
    const g = this.kascade.geometry(blockSize);
    const v = this.verifiedBlockSize;
    const out = new Bitfield(g.count);
    for (let j = 0; j < g.count; j++) {
      const { first, last } = g.range(j);
      if (this.verified.hasAll(Math.floor(first / v), Math.floor(last / v))) out.set(j);
    }
    return out;
  }
}
