// Seeding a complete box entry: its file served through the fd cache (re-checked after every read, box-file.ts)
// and announced to its tracker as a seeder, under one announce queue for all kascades. Used by seed-box.ts.

import type { Logger } from 'pino';
import type { Library } from '../server/library.js';
import type { DownloadRow } from '../store/state-db.js';
import { AnnounceQueue } from '../tracker/announce-queue.js';
import type { AnnounceStats } from '../tracker/announce-stats.js';
import { Announcer } from '../tracker/announcer.js';
import { spreadStartDelayMs } from '../tracker/backoff.js';
import { LIMITS } from '../limits.js';
import { Bitfield } from '../util/bitfield.js';
import { boxServedFile, type DataChangedError } from './box-file.js';
import type { BoxEntry } from './entry-registry.js';
import { thin } from './entry-facts.js';
import type { FdCache } from './fd-cache.js';

export interface SeedingOptions {
  library: Library;
  fds: FdCache;
  log: Logger;
  /** The port we serve on (announced). */
  port: () => number;
  /** The port of our binary peer wire, if served (announced as `wire`). */
  wirePort?: (() => number | undefined) | undefined;
  announceStats?: AnnounceStats | undefined;
  announceLimits?: ConstructorParameters<typeof Announcer>[0]['limits'];
  /** The data file of a seeding entry was found changed (reported once per start). */
  onChanged: (entry: BoxEntry, err: DataChangedError) => void;
}

export class Seeding {
  /** Bounds announces in flight over all kascades (per tracker and overall). */
  private readonly announceQueue = new AnnounceQueue({ concurrency: LIMITS.announceQueueConcurrency, perTracker: LIMITS.announceQueuePerTracker });
  /** Kascades added by the current folder change: their first announces are spread over a window. */
  private batch = { i: 0, n: 0 };

  constructor(private readonly o: SeedingOptions) {}

  /** The next `n` kascades to start seeding came in one folder change. */
  newBatch(n: number): void {
    this.batch = { i: 0, n };
  }

  /** Serve `entry` (complete as `row` says) and announce it; its kascade is kept without block hashes from now. */
  start(entry: BoxEntry, row: DownloadRow): void {
    const k = thin(entry.kascade!);
    entry.kascade = k;
    const want = { path: row.dataPath, size: row.filesize, mtimeMs: row.dataMtimeMs, dev: row.dataDev, ino: row.dataIno };
    this.o.library.add(boxServedFile(k, row.blockSize, want, this.o.fds, (err) => this.o.onChanged(entry, err)));
    if (entry.announcer !== undefined || k.tracker === '') return;
    const bitfield = Bitfield.full(row.blockCount);
    entry.announcer = new Announcer({
      url: k.tracker,
      trackers: k.trackers,
      log: this.o.log.child({ file: entry.path }),
      state: () => {
        const wirePort = this.o.wirePort?.();
        return { port: this.o.port(), progress: 1, blocks: { blockSize: row.blockSize, bitfield }, ...(wirePort === undefined ? {} : { wirePort }) };
      },
      queue: this.announceQueue,
      startDelayMs: this.batch.i < this.batch.n ? spreadStartDelayMs(this.batch.i++, this.batch.n) : 0,
      ...(this.o.announceStats === undefined ? {} : { stats: this.o.announceStats }),
      ...(this.o.announceLimits === undefined ? {} : { limits: this.o.announceLimits }),
    });
    entry.announcer.start();
  }

  /** No longer served; its tracker is told `stopped` (the returned promise settles when it has been). */
  stop(entry: BoxEntry): Promise<void> | undefined {
    this.o.library.remove(entry.kascade!.swarmId);
    const told = entry.announcer?.stop();
    entry.announcer = undefined;
    return told;
  }
}
