// The box's slow scrub: which seeding file to re-hash next (the one checked least recently), and the re-hash
// itself in the workers, so bit rot is found before peers ban us. Used by seed-box.ts.

import type { Engine } from '../client/engine.js';
import type { BoxEntry } from './entry-registry.js';

/** The seeding entry checked least recently (never checked first), if any. */
export function nextToScrub(entries: Iterable<BoxEntry>): BoxEntry | undefined {
  let next: BoxEntry | undefined;
  for (const e of entries) {
    if (e.state !== 'seeding') continue;
    if (next === undefined || (e.scrubbedAt ?? 0) < (next.scrubbedAt ?? 0)) next = e;
  }
  return next;
}

/**
 * Re-verify every block of `entry`'s data file, read-only (the state records what matches; engine.scrub). Resolves with the number of
 * blocks that no longer match, or undefined when the state has no download of it; rejects on read errors.
 */
export async function scrubOnce(engine: Engine, entry: BoxEntry): Promise<number | undefined> {
  const row = engine.db.getBySwarmId(entry.kascade!.swarmId);
  if (row === undefined) return undefined;
  return engine.scrub(row, entry.work.signal);
}
