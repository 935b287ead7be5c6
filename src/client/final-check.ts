// The last step of a download: the whole-file SHA-256, and the repair when it does not match (blocks trusted from
// a checkpoint can have been changed behind kfetch's back with their mtime restored). Used by the download session.

import { fstatSync } from 'node:fs';
import { KfetchError } from '../errors.js';
import type { HashPool } from '../hashing/pool.js';
import type { Kascade } from '../kascade/kascade.js';
import type { StateDb } from '../store/state-db.js';
import { crashPoint } from './crash-point.js';
import type { EventSink } from './events.js';
import type { PrefixHasher } from './prefix-hasher.js';
import { recheck } from './recheck.js';

export interface FinalCheckDeps {
  id: number;
  kascade: Kascade;
  blockSize: number;
  path: string;
  /** The session's fd on the data file (the full pass reads it). */
  fd: number;
  db: StateDb;
  workers: HashPool;
  prefix: PrefixHasher;
  emit: EventSink;
  /** Block i was found bad on disk: it is needed again (the block table, the durable set, the served file). */
  markMissing: (i: number) => void;
  /** Record the durable set after the bad blocks were marked missing. */
  recordDurable: () => void;
}

/**
 * The whole-file SHA-256. In the first round the prefix hasher has hashed the blocks verified so far and only the
 * rest is read now; when it cannot give a digest, in later rounds, and to confirm a mismatch, a full pass over the
 * file runs in a worker, so the verdict is always that of the bytes on disk. On a mismatch every block is re-hashed
 * once (recheck.ts): bad ones become missing again and the download goes on (resolves false). Only when every block
 * matches its MD5 and the file still does not is it KF_E_FILE_HASH_MISMATCH: the .kascade contradicts itself.
 */
export async function finalCheck(d: FinalCheckDeps, round: number, signal: AbortSignal): Promise<boolean> {
  d.db.setStatus(d.id, 'verifying');
  crashPoint('during-final-hash');
  const size = d.kascade.filesize;
  const filehash = d.kascade.filehash;
  // Later rounds follow a repair: blocks were re-written after the prefix hash read them. A prefix that lags far
  // behind (a resumed, already complete file) is left to the worker's full pass, which is faster.
  const usePrefix = round === 0 && d.prefix.worthFinishing;
  if (!usePrefix) await d.prefix.stop();
  d.emit({ event: 'verify', id: d.id, phase: 'file', done: usePrefix ? d.prefix.hashed : 0, total: size });
  let r = usePrefix ? await d.prefix.finish(signal) : undefined;
  if (r === undefined || r.hex !== filehash) r = await d.workers.sha256File({ kind: 'sha256-file', fd: d.fd, size }, signal);
  d.emit({ event: 'verify', id: d.id, phase: 'file', done: r.read, total: size });
  if (r.hex === filehash) return true;
  const mismatch = new KfetchError(
    'KF_E_FILE_HASH_MISMATCH',
    `every block matches its MD5 but the file's SHA-256 is ${r.hex}, not ${filehash}: the .kascade contradicts itself`,
    { file: d.path },
  );
  if (round > 0) throw mismatch;
  await d.prefix.invalidate(); // blocks found bad are written again below what it hashed
  const { durable: good, identity } = await recheck({
    path: d.path,
    kascade: d.kascade,
    blockSize: d.blockSize,
    pool: d.workers,
    trust: { kind: 'nothing' },
    signal,
    onProgress: (done, total) => d.emit({ event: 'verify', id: d.id, phase: 'blocks', done, total }),
  });
  // The path must still name the session's file: blocks of another one say nothing about ours.
  const ours = fstatSync(d.fd);
  if (ours.dev !== identity.dev || ours.ino !== identity.ino) {
    throw new KfetchError('KF_E_DATA_MISSING', `the data file ${d.path} was replaced while kfetch wrote it; restore it, or forget the download and get it again`, {
      file: d.path,
    });
  }
  let bad = 0;
  let firstBad = -1;
  for (let i = 0; i < good.length; i++) {
    if (good.has(i)) continue;
    if (bad++ === 0) firstBad = i;
    d.markMissing(i);
  }
  if (bad === 0) throw mismatch;
  d.recordDurable();
  d.db.setStatus(d.id, 'downloading');
  d.emit({
    event: 'warning', id: d.id, code: 'KF_E_FILE_HASH_MISMATCH',
    message: `the file hash did not match; ${bad} block(s) changed on disk (first: ${firstBad}) and are fetched again`,
  });
  return false;
}
