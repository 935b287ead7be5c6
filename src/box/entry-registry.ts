// The seeding box's entries and the indexes over them: by kascade path, and who holds each swarm, filehash, data
// file and state row. One owner for the maps, so an entry is never left in one index and gone from another.
// Used by seed-box.ts; read by box-status.ts and box-metrics.ts.

import type { Kascade } from '../kascade/kascade.js';
import { entryId } from './entry-id.js';
import type { Announcer } from '../tracker/announcer.js';
import type { EntryState } from './entry-state.js';
import type { StallWatch } from './stall-watch.js';
import type { SeenFile } from './watch-folder.js';

/** One kascade file in the watched folder and what the box does with it. */
export interface BoxEntry {
  readonly path: string;
  /** Its id in the control API (entry-id.ts). */
  readonly id: string;
  /** When the box took the file in (ms since epoch). */
  readonly addedAt: number;
  readonly seen: SeenFile;
  state: EntryState;
  /**
   * All work on this entry (reading it, verifying, waiting for a slot, downloading) runs under this signal; it
   * aborts when the file leaves the folder or the box stops. A pause aborts it too and puts a fresh one in its place
   * (work started before the pause sees its own signal aborted and the state `paused`).
   */
  work: AbortController;
  /** This entry's background work (verification, download) still running: a resume waits for it to end. */
  readonly tasks: Set<Promise<void>>;
  /** The current download's last progress (this run): bytes received, verified, durable; peers known. */
  progress?: { received: number; verified: number; durable: number; peers: number } | undefined;
  /** The block size its state row uses (once it has one). */
  blockSize?: number;
  /** Blocks from peers that failed their MD5, and peers banned, since the box started. */
  badBlocks: number;
  bans: number;
  /** Why it is rejected, failed or stalled (code: message). */
  error?: string | undefined;
  /** Rejected in favour of this kascade file: looked at again when that one goes. */
  dupOf?: string;
  kascade?: Kascade;
  dataPath?: string;
  rowId?: number;
  /** Bytes fetched from peers for this kascade (state + this run). */
  bytesFetched: number;
  /** bytesFetched recorded in the state when the current download started. */
  fetchedBase: number;
  failures: number;
  /** Stalled download attempts in a row (a stall after progress counts as the first again). */
  stalls: number;
  /** When a failed or stalled entry is tried again (ms since epoch). */
  nextTryAt?: number | undefined;
  /** When a scrub last re-verified this file (ms since epoch; undefined: not since the box started). */
  scrubbedAt?: number;
  stallWatch?: StallWatch | undefined;
  announcer?: Announcer | undefined;
  retry?: NodeJS.Timeout | undefined;
}

export function newEntry(path: string, seen: SeenFile): BoxEntry {
  return {
    path,
    id: entryId(path),
    addedAt: Date.now(),
    seen,
    state: 'loading',
    work: new AbortController(),
    tasks: new Set(),
    badBlocks: 0,
    bans: 0,
    bytesFetched: 0,
    fetchedBase: 0,
    failures: 0,
    stalls: 0,
  };
}

/** What an accepted entry holds that another may also want. */
export type Holding = 'swarm' | 'filehash' | 'data file';

export class EntryRegistry {
  private readonly byPath = new Map<string, BoxEntry>();
  private readonly byId = new Map<string, BoxEntry>();
  /** Every id, sorted: the API pages through it by cursor without sorting 10,000 entries per request. */
  private readonly ids: string[] = [];
  private readonly bySwarm = new Map<string, BoxEntry>();
  private readonly byFilehash = new Map<string, BoxEntry>();
  private readonly byDataPath = new Map<string, BoxEntry>();
  private readonly byRow = new Map<number, BoxEntry>();

  /** Told of every entry added, changed (touch) and removed: the control API's event stream listens here. */
  onChange: ((entry: BoxEntry, kind: 'added' | 'changed' | 'removed') => void) | undefined;

  get size(): number {
    return this.byPath.size;
  }

  /** `entry` changed (its state, progress or error): tell the listener. */
  touch(entry: BoxEntry): void {
    if (this.byPath.get(entry.path) === entry) this.onChange?.(entry, 'changed');
  }

  values(): IterableIterator<BoxEntry> {
    return this.byPath.values();
  }

  get(path: string): BoxEntry | undefined {
    return this.byPath.get(path);
  }

  add(entry: BoxEntry): void {
    this.byPath.set(entry.path, entry);
    if (this.byId.get(entry.id) === undefined) this.ids.splice(lowerBound(this.ids, entry.id), 0, entry.id);
    this.byId.set(entry.id, entry);
    this.onChange?.(entry, 'added');
  }

  /** The entry with API id `id`. */
  ofId(id: string): BoxEntry | undefined {
    return this.byId.get(id);
  }

  /** Entries in id order, starting after `cursor` (an id; undefined: from the first). */
  *inIdOrder(cursor?: string): Generator<BoxEntry> {
    for (let i = cursor === undefined ? 0 : lowerBound(this.ids, cursor, true); i < this.ids.length; i++) {
      const e = this.byId.get(this.ids[i]!);
      if (e !== undefined) yield e;
    }
  }

  /** The accepted entry holding `filehash`. */
  ofFilehash(filehash: string): BoxEntry | undefined {
    return this.byFilehash.get(filehash);
  }

  /** The accepted entry that already holds `k`'s swarm, filehash or `dataPath`, and which. */
  holder(k: Kascade, dataPath: string): { entry: BoxEntry; what: Holding } | undefined {
    const same = this.bySwarm.get(k.swarmId) ?? this.byFilehash.get(k.filehash);
    if (same !== undefined) return { entry: same, what: same.kascade?.filehash === k.filehash ? 'filehash' : 'swarm' };
    const byData = this.byDataPath.get(dataPath);
    return byData === undefined ? undefined : { entry: byData, what: 'data file' };
  }

  /** `entry` now holds its kascade's swarm and filehash and its data file. */
  claim(entry: BoxEntry, k: Kascade, dataPath: string): void {
    entry.kascade = k;
    entry.dataPath = dataPath;
    this.bySwarm.set(k.swarmId, entry);
    this.byFilehash.set(k.filehash, entry);
    this.byDataPath.set(dataPath, entry);
  }

  setRow(entry: BoxEntry, rowId: number): void {
    entry.rowId = rowId;
    this.byRow.set(rowId, entry);
  }

  ofRow(rowId: number): BoxEntry | undefined {
    return this.byRow.get(rowId);
  }

  /** Forget `entry` everywhere it is the holder. */
  delete(entry: BoxEntry): void {
    if (this.byPath.get(entry.path) === entry) {
      this.byPath.delete(entry.path);
      this.onChange?.(entry, 'removed');
    }
    if (this.byId.get(entry.id) === entry) {
      this.byId.delete(entry.id);
      const i = lowerBound(this.ids, entry.id);
      if (this.ids[i] === entry.id) this.ids.splice(i, 1);
    }
    const k = entry.kascade;
    if (k !== undefined) {
      if (this.bySwarm.get(k.swarmId) === entry) this.bySwarm.delete(k.swarmId);
      if (this.byFilehash.get(k.filehash) === entry) this.byFilehash.delete(k.filehash);
    }
    if (entry.dataPath !== undefined && this.byDataPath.get(entry.dataPath) === entry) this.byDataPath.delete(entry.dataPath);
    if (entry.rowId !== undefined && this.byRow.get(entry.rowId) === entry) this.byRow.delete(entry.rowId);
  }

  /** Entries rejected in favour of the kascade at `path`. */
  waitingFor(path: string): BoxEntry[] {
    return [...this.byPath.values()].filter((e) => e.dupOf === path);
  }
}

/** The first index of sorted `a` whose value is >= `x` (> `x` with `after`). */
function lowerBound(a: readonly string[], x: string, after = false): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x || (after && a[mid] === x)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
