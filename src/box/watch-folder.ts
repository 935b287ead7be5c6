// The seeding box's view of its watched folder: which kascade files (`*.kascade`, `*.json`) are there, each with
// its size and mtime, and what changed since the last look. Rescans are triggered by fs.watch (debounced), by a
// periodic timer (fs.watch can miss events) and on demand (SIGHUP). A file modified in the last `settleMs` is left
// for a later scan, so a half-written kascade is not read mid-copy. Used by seed-box.ts.

import { watch, type FSWatcher } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** A kascade file as last seen: its identity for "did it change" is size + mtime. */
export interface SeenFile {
  size: number;
  mtimeMs: number;
}

export interface FolderDiff {
  added: string[];
  changed: string[];
  removed: string[];
  /** Files too fresh to read yet (still being written?): looked at again after they settle. */
  unsettled: string[];
}

/** Bound on the files looked at per scan: a folder of millions of entries cannot stall the box. */
export const MAX_WATCHED_FILES = 100_000;

export function isKascadeName(name: string): boolean {
  const n = name.toLowerCase();
  return (n.endsWith('.kascade') || n.endsWith('.json')) && !name.startsWith('.');
}

/**
 * Kascade files in `dir` (regular files, or symlinks to them) with size and mtime. Files modified within
 * `settleMs` of `nowMs` come back separately, unless `complete` names them (the box wrote them whole itself).
 * Entries that vanish mid-scan are skipped.
 */
export async function scanFolder(
  dir: string,
  settleMs: number,
  nowMs = Date.now(),
  complete: ReadonlySet<string> = new Set(),
): Promise<{ files: Map<string, SeenFile>; unsettled: string[] }> {
  const names = (await readdir(dir)).filter(isKascadeName).sort().slice(0, MAX_WATCHED_FILES);
  const files = new Map<string, SeenFile>();
  const unsettled: string[] = [];
  for (const name of names) {
    const path = join(dir, name);
    try {
      const st = await stat(path);
      if (!st.isFile()) continue;
      if (nowMs - st.mtimeMs < settleMs && !complete.has(path)) unsettled.push(path);
      else files.set(path, { size: st.size, mtimeMs: st.mtimeMs });
    } catch {
      // gone between readdir and stat: the next scan sees it as removed
    }
  }
  return { files, unsettled };
}

/** What changed from `before` to `after` (paths); unsettled paths are neither added nor removed. */
export function diffFolder(before: ReadonlyMap<string, SeenFile>, after: ReadonlyMap<string, SeenFile>, unsettled: readonly string[]): FolderDiff {
  const added: string[] = [];
  const changed: string[] = [];
  const removed: string[] = [];
  const fresh = new Set(unsettled);
  for (const [path, now] of after) {
    const was = before.get(path);
    if (was === undefined) added.push(path);
    else if (was.size !== now.size || was.mtimeMs !== now.mtimeMs) changed.push(path);
  }
  for (const path of before.keys()) if (!after.has(path) && !fresh.has(path)) removed.push(path);
  return { added, changed, removed, unsettled: [...unsettled] };
}

export interface FolderWatcherOptions {
  dir: string;
  /** Called with each non-empty change; scans never overlap. */
  onChange: (diff: FolderDiff) => Promise<void>;
  onError: (err: unknown) => void;
  /** Periodic rescan (fs.watch can miss events, e.g. on network file systems). */
  rescanMs: number;
  settleMs: number;
  /** Debounce for fs.watch bursts (a copy fires many events). */
  debounceMs?: number;
}

/** Watches one folder and reports changes to its kascade files. */
export class FolderWatcher {
  private seen = new Map<string, SeenFile>();
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** Files the box itself renamed into place (whole): taken in without waiting for them to settle. */
  private readonly complete = new Set<string>();

  constructor(private readonly o: FolderWatcherOptions) {}

  /** First scan (awaited), then watch. */
  async start(): Promise<void> {
    await this.rescan();
    if (this.stopped) return;
    try {
      this.watcher = watch(this.o.dir, { persistent: false }, () => this.soon());
      this.watcher.on('error', (err) => this.o.onError(err));
    } catch (err) {
      this.o.onError(err); // no inotify (limits, odd file systems): the periodic rescan still works
    }
    this.timer = setInterval(() => this.soon(0), this.o.rescanMs);
    this.timer.unref();
  }

  /** Scan now (e.g. on SIGHUP); resolves when this scan and its handling are done. */
  rescan(): Promise<void> {
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.scanOnce();
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /**
   * A file the box put into the folder whole (renamed into place, e.g. by the control API): scan now and take it in
   * without waiting for it to settle. Resolves once the scan (and its handling) that saw it is done.
   */
  async adopt(path: string): Promise<void> {
    this.complete.add(path);
    try {
      await this.rescan();
    } finally {
      this.complete.delete(path);
    }
  }

  /** Paths currently accepted as present (settled). */
  get files(): ReadonlyMap<string, SeenFile> {
    return this.seen;
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.debounce !== undefined) clearTimeout(this.debounce);
  }

  private soon(delayMs = this.o.debounceMs ?? 200): void {
    if (this.stopped) return;
    if (this.debounce !== undefined) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.rescan().catch((err: unknown) => this.o.onError(err));
    }, delayMs);
    this.debounce.unref();
  }

  private async scanOnce(): Promise<void> {
    if (this.stopped) return;
    let scan;
    try {
      scan = await scanFolder(this.o.dir, this.o.settleMs, Date.now(), this.complete);
    } catch (err) {
      this.o.onError(err);
      return;
    }
    // Unsettled files keep their previous identity until they settle.
    const next = new Map(scan.files);
    for (const p of scan.unsettled) {
      const was = this.seen.get(p);
      if (was !== undefined) next.set(p, was);
    }
    const diff = diffFolder(this.seen, next, scan.unsettled);
    this.seen = next;
    if (scan.unsettled.length > 0) this.soon(this.o.settleMs);
    if (diff.added.length + diff.changed.length + diff.removed.length > 0) await this.o.onChange(diff);
  }
}
