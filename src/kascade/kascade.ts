// The Kascade value: the validated facts of one .kascade file and the block geometry for each offered size.
// Built only by parse.ts (from a file) or create.ts (from data); everything else reads it.

export type Dialect = 2014 | 2015;

export interface KascadeFields {
  filename: string;
  filesize: number;
  /** SHA-256 of the whole file, lowercase hex. */
  filehash: string;
  tracker: string;
  /**
   * Every tracker to announce to, in failover order, `tracker` first (the `trackers` extension adds the rest).
   * Optional when building: missing means just `tracker`; given, it must start with `tracker`. parse.ts refuses repeats.
   */
  trackers?: readonly string[];
  /** Block size -> lowercase MD5 hex per block. */
  blockhashes: ReadonlyMap<number, readonly string[]>;
  /** The id used in tracker and peer URLs: filehash (2015) or trackhash/kascadehash (2014). Lowercase hex. */
  swarmId: string;
  /** Extension: known peers / plain HTTP servers, "host:port". */
  peers: readonly string[];
  dialect: Dialect;
  /** Unknown keys, kept so serialize() round-trips them. Built with a null prototype. */
  extra: Readonly<Record<string, unknown>>;
}

/** Block layout of one file at one block size (SPEC §1). */
export class BlockGeometry {
  readonly blockSize: number;
  readonly filesize: number;
  readonly count: number;

  constructor(filesize: number, blockSize: number) {
    this.filesize = filesize;
    this.blockSize = blockSize;
    this.count = Math.ceil(filesize / blockSize);
  }

  /** First byte offset of block i. */
  start(i: number): number {
    return i * this.blockSize;
  }

  /** Byte length of block i (only the last may be short). */
  size(i: number): number {
    return Math.min(this.blockSize, this.filesize - i * this.blockSize);
  }

  /** Inclusive byte range of block i, as in a Range header. */
  range(i: number): { first: number; last: number } {
    const first = i * this.blockSize;
    return { first, last: first + this.size(i) - 1 };
  }

  /** Size of the last block (0 for an empty file). */
  get lastSize(): number {
    return this.count === 0 ? 0 : this.size(this.count - 1);
  }

  /** The block index containing byte `offset`. */
  blockAt(offset: number): number {
    return Math.floor(offset / this.blockSize);
  }
}

export class Kascade implements KascadeFields {
  readonly filename: string;
  readonly filesize: number;
  readonly filehash: string;
  readonly tracker: string;
  readonly trackers: readonly string[];
  readonly blockhashes: ReadonlyMap<number, readonly string[]>;
  readonly swarmId: string;
  readonly peers: readonly string[];
  readonly dialect: Dialect;
  readonly extra: Readonly<Record<string, unknown>>;
  private readonly geometries = new Map<number, BlockGeometry>();

  constructor(f: KascadeFields) {
    this.filename = f.filename;
    this.filesize = f.filesize;
    this.filehash = f.filehash;
    this.tracker = f.tracker;
    if (f.trackers !== undefined && f.trackers[0] !== f.tracker) throw new RangeError('trackers must start with tracker');
    this.trackers = f.trackers ?? [f.tracker];
    this.blockhashes = f.blockhashes;
    this.swarmId = f.swarmId;
    this.peers = f.peers;
    this.dialect = f.dialect;
    this.extra = f.extra;
  }

  /** Offered block sizes, ascending. */
  get blockSizes(): number[] {
    return [...this.blockhashes.keys()].sort((a, b) => a - b);
  }

  /** The largest offered block size (the default for downloads: fewest requests). */
  get preferredBlockSize(): number {
    const sizes = this.blockSizes;
    const last = sizes[sizes.length - 1];
    if (last === undefined) throw new Error('kascade offers no block size');
    return last;
  }

  offers(blockSize: number): boolean {
    return this.blockhashes.has(blockSize);
  }

  /** Geometry for an offered block size; throws for one that is not offered. */
  geometry(blockSize: number = this.preferredBlockSize): BlockGeometry {
    let g = this.geometries.get(blockSize);
    if (g === undefined) {
      if (!this.blockhashes.has(blockSize)) throw new RangeError(`block size ${blockSize} is not offered`);
      g = new BlockGeometry(this.filesize, blockSize);
      this.geometries.set(blockSize, g);
    }
    return g;
  }

  /** MD5 hex of block i at the given size. */
  blockHash(blockSize: number, i: number): string {
    const h = this.blockhashes.get(blockSize)?.[i];
    if (h === undefined) throw new RangeError(`no hash for block ${i} at size ${blockSize}`);
    return h;
  }
}
