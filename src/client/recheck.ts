// The one re-check of a data file against its kascade: which of its blocks may be trusted as durable. Used by
// resume (trust the checkpoint unless the file changed), `get --adopt` and the box's adoption (trust nothing),
// the session's repair after a whole-file mismatch, and the box's scrub. It opens the file read-only, so it can
// never truncate, extend or write it: sizing a file is the caller's business (store/data-file.ts).

import { closeSync, fstatSync } from 'node:fs';
import { KfetchError, fromFsError } from '../errors.js';
import type { HashPool } from '../hashing/pool.js';
import { verifyFile } from '../hashing/verify-file.js';
import type { Kascade } from '../kascade/kascade.js';
import { openToVerify } from '../store/data-file.js';
import { Bitfield } from '../util/bitfield.js';

/** What the state recorded about the data file at its last checkpoint (mtime: the fixed one kfetch keeps). */
export interface RecordedFacts {
  size: number;
  mtimeMs: number;
  dev?: number | undefined;
  ino?: number | undefined;
}

/**
 * What to believe without hashing. `nothing`: hash every block (adopting a file, a scrub, `--verify`).
 * `recorded`: the checkpointed `blocks` are trusted as they are while the file is still the one the checkpoint
 * described (`facts`: size, mtime, device, inode); if it is not, every block is hashed and only matches count.
 */
export type Trust = { kind: 'nothing' } | { kind: 'recorded'; blocks: Bitfield; facts: RecordedFacts };

export interface RecheckOptions {
  /** The data file; opened read-only without following a symlink, closed before this resolves. */
  path: string;
  kascade: Kascade;
  /** An offered block size of `kascade`: the blocks the result counts. */
  blockSize: number;
  pool: HashPool;
  trust: Trust;
  signal?: AbortSignal;
  /** Called before hashing starts (done 0) and as ranges finish; not called when nothing is hashed. */
  onProgress?: (bytesDone: number, total: number) => void;
}

export interface RecheckResult {
  /** The blocks that may be trusted as durable. */
  durable: Bitfield;
  /** Whether blocks were hashed (false: the recorded ones were trusted as they are). */
  hashed: boolean;
  /** The file's size as found (blocks past its end never count). */
  size: number;
  /**
   * The file that was checked. The caller opens the path again to write and serve it, and must find this very file
   * there (`openDataFile`'s `expect`): a file swapped in meanwhile has had none of its blocks checked.
   */
  identity: { dev: number; ino: number };
}

/**
 * The durable blocks of the data file at `path`. A missing file, a symlink or a non-file is KF_E_DATA_MISSING.
 * Blocks that lie past the end of a short file are never durable; a longer file is hashed as it is (its tail is
 * not the kascade's and is left alone).
 */
export async function recheck(o: RecheckOptions): Promise<RecheckResult> {
  const fd = openToVerify(o.path);
  try {
    const st = fstatSync(fd);
    const identity = { dev: st.dev, ino: st.ino };
    if (o.trust.kind === 'recorded' && unchanged(st, o.trust.facts)) {
      return { durable: new Bitfield(o.trust.blocks.length, o.trust.blocks.toBytes()), hashed: false, size: st.size, identity };
    }
    o.onProgress?.(0, o.kascade.filesize);
    const durable = await verifyFile({
      kascade: o.kascade,
      blockSize: o.blockSize,
      fd,
      pool: o.pool,
      ...(o.signal === undefined ? {} : { signal: o.signal }),
      ...(o.onProgress === undefined ? {} : { onProgress: o.onProgress }),
    });
    // Written while it was hashed (size, mtime or ctime moved): a block hashed before the write may not hold now.
    const after = fstatSync(fd);
    if (after.size !== st.size || after.mtimeMs !== st.mtimeMs || after.ctimeMs !== st.ctimeMs) {
      throw new KfetchError('KF_E_IO', `the data file ${o.path} changed while it was verified; nothing was recorded from that check: run the command again`, {
        file: o.path,
      });
    }
    return { durable, hashed: true, size: st.size, identity };
  } finally {
    closeSync(fd);
  }
}

/** Whether the file is still the one a checkpoint described (any difference: it was changed behind kfetch's back). */
function unchanged(st: { size: number; mtimeMs: number; dev: number; ino: number }, f: RecordedFacts): boolean {
  return st.size === f.size && st.mtimeMs === f.mtimeMs && (f.ino === undefined || (st.ino === f.ino && st.dev === f.dev));
}
