// One download attempt of a box entry, prepared from the state (prepareDownload), then run: the engine session under a controller of its own, linked by hand to the
// entry's (a stall ends the attempt, not the entry), watched by a StallWatch fed from the session's progress.
// Used by seed-box.ts.

import type { Logger } from 'pino';
import type { Engine, Prepared } from '../client/engine.js';
import { KfetchError } from '../errors.js';
import type { BoxEntry } from './entry-registry.js';
import { existsFile, heldBytes } from './entry-facts.js';
import { StallWatch } from './stall-watch.js';

/** The abort reason of an attempt cut short by its StallWatch. */
class Stalled extends Error {}

export interface AttemptResult {
  result: Awaited<ReturnType<Engine['runOne']>>['result'];
  /** Ended by the stall watch (the session's outcome is then 'stopped'). */
  stalled: boolean;
  /** A block was verified during the attempt. */
  progressed: boolean;
}

/** Open (or create) the download of `entry` in the state and its data file, ready to run. */
export async function prepareDownload(engine: Engine, entry: BoxEntry, dataDir: string, log: Logger): Promise<Prepared> {
  const k = entry.kascade!;
  let row = engine.db.getBySwarmId(k.swarmId);
  if (row !== undefined && !existsFile(row.dataPath)) {
    // The data file is gone: the box's job is to hold it, so it starts over (the user removed it, not us).
    log.warn({ file: entry.path, data: row.dataPath }, 'data file gone: fetching it again');
    engine.db.removeDownload(row.id);
    row = undefined;
  }
  return row === undefined
    ? engine.prepareNew(k, { outDir: dataDir, outPath: entry.dataPath! }, [])
    : engine.prepareResume(row, [], entry.work.signal);
}

/** Run prepared download `p` of `entry`; `stallMs` 0 never stalls. */
export async function runAttempt(engine: Engine, p: Prepared, entry: BoxEntry, stallMs: number): Promise<AttemptResult> {
  const attempt = new AbortController();
  const onAbort = (): void => attempt.abort(entry.work.signal.reason);
  entry.work.signal.addEventListener('abort', onAbort, { once: true });
  if (entry.work.signal.aborted) onAbort();
  const busy = (): boolean => engine.session(p.init.row.id)?.verifying ?? false;
  const watch = stallMs > 0 ? new StallWatch(stallMs, () => attempt.abort(new Stalled()), durableBytes(p), busy) : undefined;
  entry.stallWatch = watch;
  try {
    const { result } = await engine.runOne(p, attempt.signal);
    const stopped = !(result instanceof KfetchError) && result.outcome === 'stopped';
    return { result, stalled: stopped && attempt.signal.reason instanceof Stalled, progressed: watch?.progressed ?? false };
  } finally {
    entry.work.signal.removeEventListener('abort', onAbort);
    watch?.stop();
    entry.stallWatch = undefined;
  }
}

/** Bytes of the blocks `p` starts with (its session's verified count starts there). */
function durableBytes(p: Prepared): number {
  return heldBytes(p.init.kascade, p.init.row.blockSize, p.init.durable);
}
