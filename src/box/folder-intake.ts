// How the seeding box takes in a folder change: removed kascade files end their entries; new and changed ones are
// read, and each is accepted (it then holds its swarm, filehash and data file) or rejected with its reason: bad,
// a duplicate of an entry already there, or the loser of a claim on a data file named by another kascade of the
// same scan (data-file-claim.ts). A kascade rejected in favour of one that goes is read again. Used by seed-box.ts.

import type { Logger } from 'pino';
import type { Engine } from '../client/engine.js';
import { outputPath } from '../client/engine.js';
import { KfetchError, isKfetchError } from '../errors.js';
import type { Kascade } from '../kascade/kascade.js';
import { loadKascade } from '../kascade/load.js';
import type { BoxCounters } from './box-events.js';
import type { BoxWork } from './box-work.js';
import { settleClaims } from './data-file-claim.js';
import { errorText } from './entry-facts.js';
import { newEntry, type BoxEntry, type EntryRegistry } from './entry-registry.js';
import { nextState } from './entry-state.js';
import type { FolderDiff, SeenFile } from './watch-folder.js';

export interface FolderIntakeOptions {
  entries: EntryRegistry;
  engine: Engine;
  dataDir: string;
  /** The box's shutdown (claims are decided under it). */
  signal: AbortSignal;
  log: Logger;
  counters: BoxCounters;
  work: BoxWork;
  /** The watch folder's files as last seen. */
  files: () => ReadonlyMap<string, SeenFile>;
  stopped: () => boolean;
  /** A folder change brings `n` kascades (their first announces are spread out). */
  batch: (n: number) => void;
  /** An entry was accepted (state loading): decide what it needs. */
  activate: (entry: BoxEntry) => void;
  /** An entry left (its work already aborted). */
  removed: (entry: BoxEntry, wasSeeding: boolean) => void;
}

interface Read {
  entry: BoxEntry;
  k: Kascade;
  dataPath: string;
}

export class FolderIntake {
  constructor(private readonly o: FolderIntakeOptions) {}

  async apply(diff: FolderDiff): Promise<void> {
    this.o.batch(diff.added.length + diff.changed.length);
    for (const path of diff.removed) this.remove(path);
    for (const path of diff.changed) this.remove(path);
    const read: Read[] = [];
    for (const path of [...diff.changed, ...diff.added]) {
      const r = await this.read(path);
      if (r !== undefined) read.push(r);
    }
    let losers;
    try {
      losers = await settleClaims(read, { db: this.o.engine.db, pool: this.o.engine.pool, signal: this.o.signal });
    } catch (err) {
      if (this.o.stopped()) return;
      throw err;
    }
    for (const r of read) {
      if (!this.live(r.entry)) continue; // removed meanwhile
      const why = losers.get(r.entry.path);
      if (why === undefined) this.accept(r);
      else this.reject(r.entry, new KfetchError('KF_E_INPUT', why.reason, { file: r.entry.path, field: 'filename' }), why.winner);
    }
  }

  /** The kascade file at `path` left the folder (or changed: it comes back as a new entry). */
  remove(path: string): void {
    const e = this.o.entries.get(path);
    if (e === undefined) return;
    const wasSeeding = e.state === 'seeding';
    e.state = nextState(e.state, 'remove');
    this.o.entries.delete(e);
    e.work.abort(new Error('kascade removed from the watch folder'));
    this.o.removed(e, wasSeeding);
    this.o.log.info({ file: path }, 'kascade removed: no longer served');
    // A kascade skipped in favour of this one may now take its place.
    for (const d of this.o.entries.waitingFor(path)) {
      this.remove(d.path);
      this.o.work.track(this.add(d.path));
    }
  }

  private live(entry: BoxEntry): boolean {
    return !this.o.stopped() && !entry.work.signal.aborted;
  }

  /** A kascade file on its own (a promoted duplicate): read it and take it in. */
  private async add(path: string): Promise<void> {
    const r = await this.read(path);
    if (r !== undefined) this.accept(r);
  }

  /** A new entry for `path`: its kascade and the data file it would use, or rejected (reported) when unreadable. */
  private async read(path: string): Promise<Read | undefined> {
    if (this.o.stopped()) return undefined;
    const entry = newEntry(path, this.o.files().get(path) ?? { size: 0, mtimeMs: 0 });
    this.o.entries.add(entry);
    try {
      const k = await loadKascade(path, { signal: entry.work.signal });
      const dataPath = this.o.engine.db.getBySwarmId(k.swarmId)?.dataPath ?? outputPath(k, this.o.dataDir);
      return this.live(entry) ? { entry, k, dataPath } : undefined;
    } catch (err) {
      if (this.live(entry)) this.reject(entry, err);
      return undefined;
    }
  }

  /** Take a read kascade in, unless another entry already holds its swarm, filehash or data file. */
  private accept({ entry, k, dataPath }: Read): void {
    if (!this.live(entry)) return;
    const held = this.o.entries.holder(k, dataPath);
    if (held !== undefined) {
      const data = held.what === 'data file';
      const why = data ? `its data file ${dataPath} is already used by ${held.entry.path}; ignored` : `same ${held.what} as ${held.entry.path}; ignored`;
      return this.reject(entry, new KfetchError('KF_E_INPUT', why, { file: entry.path, field: data ? 'filename' : 'filehash' }), held.entry.path);
    }
    this.o.entries.claim(entry, k, dataPath);
    this.o.activate(entry);
  }

  private reject(entry: BoxEntry, err: unknown, dupOf?: string): void {
    entry.state = nextState(entry.state, 'reject');
    if (dupOf !== undefined) entry.dupOf = dupOf;
    entry.error = errorText(err);
    this.o.entries.touch(entry);
    this.o.counters.rejected++;
    this.o.log.warn({ file: entry.path, code: isKfetchError(err) ? err.code : undefined }, `kascade skipped: ${entry.error}`);
  }
}
