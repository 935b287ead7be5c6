// Builds a Kascade from a data file in one sequential read: the main thread reads chunks and feeds the whole-file
// SHA-256, hash workers compute the block MD5s. Used by `kfetch create` (and anything that makes .kascade files).

import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { KfetchError, fromFsError } from '../errors.js';
import { Kascade } from '../kascade/kascade.js';
import { filenameProblem } from '../kascade/filename.js';
import { parseKascade } from '../kascade/parse.js';
import { serializeKascade, trackerUrlFor } from '../kascade/serialize.js';
import { LIMITS } from '../limits.js';
import { VERSION } from '../version.js';
import { planReadPasses, validateBlockSizes, type BlockSizeLimits, type ReadPass } from './chunk-plan.js';
import type { HashPool } from './pool.js';

export interface CreateKascadeLimits extends BlockSizeLimits {
  /** Target bytes per read chunk (rounded to a multiple of the block sizes). */
  hashChunkBytes: number;
  /** Bytes handed to workers at once; at least one chunk is always in flight. */
  hashInFlightBytes: number;
}

export interface CreateKascadeOptions {
  /** The data file. Its base name becomes `filename`. */
  path: string;
  /** Tracker base URL (`http://host:port`) or full announce URL; see trackerUrlFor. */
  tracker: string;
  /** Failover trackers after `tracker`, in order, each as `tracker` (written as the `trackers` extension). */
  trackers?: readonly string[];
  /** Block sizes to offer, in bytes. */
  blockSizes: readonly number[];
  /** Extension `peers`: "host:port" of known peers or plain HTTP servers. */
  peers?: readonly string[];
  pool: HashPool;
  signal?: AbortSignal;
  /** Called as chunks finish hashing; `total` counts every read pass. */
  onProgress?: (bytesDone: number, total: number) => void;
  limits?: Partial<CreateKascadeLimits>;
}

/** The SHA-256 of zero bytes; stands in for the real filehash while the inputs are checked before hashing. */
const EMPTY_SHA256 = createHash('sha256').digest('hex');

/**
 * Hash `path` and return its Kascade (2015 dialect). Inputs (block sizes, tracker, peers, file name) are checked
 * before the file is read; the result is round-tripped through serializeKascade + parseKascade, so what comes back
 * is exactly what a reader of the written file will see.
 */
export async function createKascade(opts: CreateKascadeOptions): Promise<Kascade> {
  const limits: CreateKascadeLimits = {
    minBlockSize: LIMITS.minBlockSize,
    maxBlockSize: LIMITS.maxBlockSize,
    maxBlocksPerSize: LIMITS.maxBlocksPerSize,
    hashChunkBytes: LIMITS.hashChunkBytes,
    hashInFlightBytes: LIMITS.hashInFlightBytes,
    ...opts.limits,
  };
  const { path, pool, signal } = opts;
  validateBlockSizes(opts.blockSizes, undefined, limits);
  const filename = basename(path);
  const peers = [...(opts.peers ?? [])];
  const trackers = [...(opts.trackers ?? [])];

  const fh = await openInput(path);
  try {
    const before = await fh.stat();
    if (!before.isFile()) throw new KfetchError('KF_E_INPUT', 'not a regular file', { file: path });
    const filesize = before.size;
    const sizes = validateBlockSizes(opts.blockSizes, filesize, limits);
    preflight({ filename, filesize: 0, filehash: EMPTY_SHA256, tracker: opts.tracker, trackers, sizes, hashes: sizes.map(() => []), peers }, path);

    const passes = planReadPasses(sizes, limits.hashChunkBytes);
    const total = filesize * passes.length;
    const sha = createHash('sha256');
    const hashes = new Map<number, string[]>();
    let done = 0;
    for (const pass of passes) {
      const got = await hashPass(fh, filesize, pass, pass.sha256 ? sha : undefined, pool, limits, signal, path, (n) => {
        done += n;
        opts.onProgress?.(done, total);
      });
      pass.blockSizes.forEach((size, k) => hashes.set(size, got[k]!));
    }
    const after = await fh.stat();
    if (after.size !== before.size || after.mtimeMs !== before.mtimeMs) {
      throw new KfetchError('KF_E_INPUT', 'the file changed while it was being hashed; run create again', { file: path });
    }
    opts.onProgress?.(total, total);
    return build(
      { filename, filesize, filehash: sha.digest('hex'), tracker: opts.tracker, trackers, sizes, hashes: sizes.map((s) => hashes.get(s)!), peers },
      path,
    );
  } finally {
    await fh.close().catch(() => undefined);
  }
}

async function openInput(path: string): Promise<FileHandle> {
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses anything but a regular file.
    return await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String((err as Error).message);
    throw new KfetchError('KF_E_INPUT', `cannot read the input file: ${why}`, { file: path, cause: err });
  }
}

interface Facts {
  filename: string;
  filesize: number;
  filehash: string;
  tracker: string;
  trackers: readonly string[];
  sizes: readonly number[];
  hashes: readonly string[][];
  peers: readonly string[];
}

/**
 * Fail on a bad file name, tracker or peer now, not after hashing for minutes: build a stand-in Kascade with the
 * real inputs and no data. Errors name the command-line option (or the file) the value came from.
 */
function preflight(f: Facts, path: string): void {
  const nameProblem = filenameProblem(f.filename, LIMITS.maxFilenameBytes);
  if (nameProblem !== undefined) {
    throw new KfetchError(
      'KF_E_KASCADE_NAME',
      `the file name ${JSON.stringify(f.filename)} ${nameProblem.reason}, so it cannot be a kascade filename; rename (or copy) the file first`,
      { file: path, field: 'filename' },
    );
  }
  try {
    build(f, path);
  } catch (err) {
    if (!(err instanceof KfetchError)) throw err;
    const field = err.field === 'tracker' || err.field?.startsWith('trackers') === true ? '--tracker' : err.field?.startsWith('peers') === true ? '--peer' : err.field;
    throw new KfetchError(err.code, trackerMessage(err, [f.tracker, ...f.trackers]), { ...(field === undefined ? {} : { field }), cause: err });
  }
}

/**
 * The parser's message about a failover tracker, in command-line terms: `trackers[2]` is the 4th --tracker, and a
 * repeat names the two --tracker values as given (the parser saw them with a stand-in filehash). `given`: every
 * --tracker in order.
 */
function trackerMessage(err: KfetchError, given: readonly string[]): string {
  if (err.field === 'trackers') return `given ${given.length} times: ${err.message}`;
  const at = /^trackers\[(\d+)\]$/.exec(err.field ?? '')?.[1];
  if (at === undefined) return err.message;
  const n = Number(at) + 2;
  const repeats = err.detail?.repeats;
  if (typeof repeats === 'string') {
    const m = repeats === 'tracker' ? 1 : Number(/\[(\d+)\]/.exec(repeats)?.[1] ?? Number.NaN) + 2;
    return `number ${n} (trackers[${at}]) ${JSON.stringify(given[n - 1])} names the same tracker as number ${m} ${JSON.stringify(given[m - 1])}; name each tracker once`;
  }
  return `number ${n} (trackers[${at}]): ${err.message}`;
}

/** Construct the Kascade and validate it the way any reader will: serialize, then parse. */
function build(f: Facts, path: string): Kascade {
  const extra: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  extra['created by'] = `kfetch/${VERSION}`;
  const k = new Kascade({
    filename: f.filename,
    filesize: f.filesize,
    filehash: f.filehash,
    tracker: trackerUrlFor(f.tracker, f.filehash),
    trackers: [trackerUrlFor(f.tracker, f.filehash), ...f.trackers.map((t, i) => trackerUrlFor(t, f.filehash, `trackers[${i}]`))],
    blockhashes: new Map(f.sizes.map((s, i) => [s, f.hashes[i]!])),
    swarmId: f.filehash,
    peers: f.peers,
    dialect: 2015,
    extra,
  });
  return parseKascade(Buffer.from(serializeKascade(k), 'utf8'), path);
}

/**
 * One sequential read of the whole file. The next chunk is read while the current one is SHA-256'd and handed
 * to a worker; at most `inFlight` chunks are with the workers, so memory is (inFlight + 2) chunks whatever the
 * file size. Returns, per size of the pass, the MD5 of every block.
 */
async function hashPass(
  fh: FileHandle,
  filesize: number,
  pass: ReadPass,
  sha: Hash | undefined,
  pool: HashPool,
  limits: CreateKascadeLimits,
  signal: AbortSignal | undefined,
  path: string,
  onBytes: (n: number) => void,
): Promise<string[][]> {
  const { chunkBytes, blockSizes } = pass;
  const out = blockSizes.map((size) => new Array<string>(Math.ceil(filesize / size)));
  const inFlightMax = Math.max(1, Math.min(2 * pool.threads, Math.floor(limits.hashInFlightBytes / chunkBytes)));
  const bufferMax = inFlightMax + 2;
  const free: ArrayBuffer[] = [];
  let allocated = 0;
  const inFlight = new Set<Promise<void>>();
  let failure: { err: unknown } | undefined;
  // No signal goes to piscina: it terminates a worker whose running task is aborted, and a result already on its
  // way then surfaces as an uncaught 'Unexpected message from Worker'. Aborts stop new tasks; running ones finish.

  const settleOne = async (): Promise<void> => {
    await Promise.race(inFlight);
    if (failure !== undefined) throw failure.err;
  };
  const acquire = async (): Promise<ArrayBuffer> => {
    for (;;) {
      const buf = free.pop();
      if (buf !== undefined) return buf;
      if (allocated < bufferMax) {
        allocated++;
        return new ArrayBuffer(chunkBytes);
      }
      await settleOne();
    }
  };
  const readChunk = async (pos: number): Promise<{ buf: ArrayBuffer; pos: number; len: number }> => {
    const buf = await acquire();
    const len = Math.min(chunkBytes, filesize - pos);
    const view = new Uint8Array(buf, 0, len);
    let got = 0;
    try {
      while (got < len) {
        const { bytesRead } = await fh.read(view, got, len - got, pos + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
    } catch (err) {
      throw fromFsError(err, path, 'reading the input file');
    }
    if (got < len) throw new KfetchError('KF_E_INPUT', 'the file shrank while it was being hashed; run create again', { file: path });
    return { buf, pos, len };
  };

  // A read-ahead may fail while this loop waits on a worker; mark it handled now, it is awaited (and throws) later.
  const readAhead = (pos: number): Promise<{ buf: ArrayBuffer; pos: number; len: number }> => {
    const p = readChunk(pos);
    p.catch(() => undefined);
    return p;
  };
  let next: Promise<{ buf: ArrayBuffer; pos: number; len: number }> | undefined = filesize > 0 ? readAhead(0) : undefined;
  try {
    while (next !== undefined) {
      const cur = await next;
      signal?.throwIfAborted();
      const end = cur.pos + cur.len;
      next = end < filesize ? readAhead(end) : undefined;
      // The next read runs in libuv's pool while this thread hashes; the SHA-256 must see the bytes in order,
      // and before the buffer is transferred away.
      sha?.update(new Uint8Array(cur.buf, 0, cur.len));
      const task = pool
        .md5Blocks({ kind: 'md5-blocks', chunk: cur.buf, length: cur.len, offset: cur.pos, blockSizes, final: end === filesize })
        .then((r) => {
          blockSizes.forEach((size, k) => {
            const first = r.offset / size;
            r.hashes[k]!.forEach((h, j) => (out[k]![first + j] = h));
          });
          free.push(r.chunk);
          onBytes(cur.len);
        })
        .catch((err: unknown) => {
          failure ??= { err };
        });
      const tracked = task.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
      while (inFlight.size >= inFlightMax) await settleOne();
    }
    while (inFlight.size > 0) await settleOne();
    if (failure !== undefined) throw failure.err;
    return out;
  } catch (err) {
    // Let the read-ahead and queued tasks settle before the caller closes the file.
    await next?.catch(() => undefined);
    await Promise.allSettled(inFlight);
    throw signal?.aborted === true ? (signal.reason ?? err) : err;
  }
}
