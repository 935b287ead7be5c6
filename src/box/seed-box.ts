// The seeding box (`kfetch seed --watch`): one process that serves every kascade in a watched folder for months.
// Each kascade file becomes an entry that moves through the table in entry-state.ts: rejected (bad, duplicate,
// or losing a claim on a data file; reported, never fatal), verifying, queued/downloading (the engine fetches
// what is missing; a download without progress gives its slot up as stalled), seeding (served through the fd
// cache, announced), or failed (retried with back-off). This file wires the parts: the registry owns the maps,
// each entry's AbortController owns its work, the slot queues settle whatever stops them. Used by box-run.ts.

import { lstatSync, statSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Engine, Prepared } from '../client/engine.js';
import type { DownloadEvent } from '../client/events.js';
import { KfetchError, isKfetchError } from '../errors.js';
import { Kascade } from '../kascade/kascade.js';
import { loadKascade } from '../kascade/load.js';
import { outputPath } from '../client/engine.js';
import type { DownloadRow } from '../store/state-db.js';
import { AnnounceQueue } from '../tracker/announce-queue.js';
import type { AnnounceStats } from '../tracker/announce-stats.js';
import { Announcer, stopAll } from '../tracker/announcer.js';
import { spreadStartDelayMs } from '../tracker/backoff.js';
import { LIMITS } from '../limits.js';
import { Bitfield } from '../util/bitfield.js';
import { boxServedFile, fileDifference, type DataChangedError } from './box-file.js';
import { settleClaims } from './data-file-claim.js';
import { EntryRegistry, newEntry, type BoxEntry } from './entry-registry.js';
import { entryRetryDelayMs } from './entry-retry.js';
import { nextState, type EntryEvent } from './entry-state.js';
import { FdCache } from './fd-cache.js';
import { SlotQueue } from './slot-queue.js';
import { StallWatch } from './stall-watch.js';
import { FolderWatcher, type FolderDiff } from './watch-folder.js';

export interface SeedBoxOptions {
  watchDir: string;
  dataDir: string;
  engine: Engine;
  log: Logger;
  /** The port we serve on (announced). */
  port: () => number;
  maxDownloads: number;
  /** A download with no newly verified block for this long gives its slot up (0: never). */
  stallTimeoutMs: number;
  maxOpenFiles: number;
  fdIdleMs: number;
  /** Re-verify one seeding file (the least recently checked) this often; 0 turns the scrub off. */
  scrubEveryMs: number;
  rescanMs: number;
  settleMs: number;
  /** Shutdown: aborts all work; the caller then calls stop(). */
  signal: AbortSignal;
  /** Announce outcomes counted here for /metrics. */
  announceStats?: AnnounceStats;
  /** Announce interval override (seconds), as `kfetch seed --announce-interval`. */
  announceLimits?: ConstructorParameters<typeof Announcer>[0]['limits'];
}

/** Counters the box keeps for /metrics. */
export interface BoxCounters {
  hashFailures: number;
  bannedPeers: number;
  dataChanged: number;
  rejected: number;
  downloadsCompleted: number;
  downloadsFailed: number;
  downloadsStalled: number;
  scrubs: number;
  scrubFailures: number;
}

/** The abort reason of a download attempt cut short by its StallWatch. */
class Stalled extends Error {}

function errorText(err: unknown): string {
  return isKfetchError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
}

/** The same kascade without its block hashes: a seeding entry needs only sizes and ids (2,000 entries stay small). */
function thin(k: Kascade): Kascade {
  return new Kascade({ ...k, blockhashes: new Map([...k.blockhashes.keys()].map((s) => [s, []])) });
}

export class SeedBox {
  readonly entries = new EntryRegistry();
  readonly counters: BoxCounters = { hashFailures: 0, bannedPeers: 0, dataChanged: 0, rejected: 0, downloadsCompleted: 0, downloadsFailed: 0, downloadsStalled: 0, scrubs: 0, scrubFailures: 0 };
  readonly fds: FdCache;
  readonly startedAt = Date.now();
  /** Verifications run one at a time: each already uses every hash worker. */
  private readonly verifyQueue = new SlotQueue(1);
  private readonly downloadQueue: SlotQueue;
  private readonly running = new Set<Promise<unknown>>();
  private readonly watcher: FolderWatcher;
  private readonly o: SeedBoxOptions;
  /** Bounds announces in flight over all kascades (per tracker and overall). */
  private readonly announceQueue = new AnnounceQueue({ concurrency: LIMITS.announceQueueConcurrency, perTracker: LIMITS.announceQueuePerTracker });
  /** Kascades added by the current folder change: their first announces are spread over a window. */
  private batch = { i: 0, n: 0 };
  private scrubTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(o: SeedBoxOptions) {
    this.o = o;
    this.fds = new FdCache(o.maxOpenFiles, o.fdIdleMs);
    this.downloadQueue = new SlotQueue(o.maxDownloads);
    this.watcher = new FolderWatcher({
      dir: o.watchDir,
      rescanMs: o.rescanMs,
      settleMs: o.settleMs,
      onChange: (diff) => this.tracked(this.apply(diff)),
      onError: (err) => o.log.warn({ dir: o.watchDir, err: errorText(err) }, 'watch folder: scan failed'),
    });
    // One listener for the box's life (not one per entry: nodejs/node#55351).
    o.signal.addEventListener('abort', () => this.abortAll(o.signal.reason), { once: true });
  }

  /** First scan (every kascade found is added), then watch the folder. */
  async start(): Promise<void> {
    await this.watcher.start();
    if (this.o.scrubEveryMs > 0 && !this.stopped) {
      this.scrubTimer = setInterval(() => this.scrubNext(), this.o.scrubEveryMs);
      this.scrubTimer.unref();
    }
  }

  /** Re-read the watch folder now (SIGHUP). */
  rescan(): Promise<void> {
    return this.watcher.rescan();
  }

  /** Engine events of this box's downloads: progress feeds the stall watch; counted for metrics, logged. */
  onEvent(e: DownloadEvent): void {
    const entry = 'id' in e ? this.entries.ofRow(e.id) : undefined;
    switch (e.event) {
      case 'progress':
        if (entry === undefined) return;
        entry.bytesFetched = entry.fetchedBase + e.received;
        entry.stallWatch?.progress(e.verified);
        return;
      case 'warning':
        if (e.code === 'KF_E_PEER_HASH_MISMATCH') this.counters.hashFailures++;
        this.o.log.debug({ file: entry?.path, code: e.code, peer: e.peer }, e.message);
        return;
      case 'peer':
        if (e.action === 'banned') {
          this.counters.bannedPeers++;
          this.o.log.warn({ file: entry?.path, peer: e.peer, reason: e.reason }, 'peer banned');
        }
        return;
      case 'done':
        this.o.log.info({ file: entry?.path, data: e.path, seconds: Math.round(e.seconds * 10) / 10 }, 'download complete');
        return;
      case 'error':
        this.o.log.error({ file: entry?.path, code: e.code }, e.message);
        return;
      case 'serving':
      case 'start':
      case 'verify':
        return;
    }
  }

  /**
   * Stop: no more scans or retries; every entry's work is aborted (waiting tasks settle at once, downloads end at a
   * checkpoint), `event=stopped` to every tracker. Resolves within `deadlineMs` whatever is still running.
   */
  async stop(deadlineMs: number): Promise<void> {
    this.stopped = true;
    this.watcher.stop();
    if (this.scrubTimer !== undefined) clearInterval(this.scrubTimer);
    this.abortAll(new Error('box stopping'));
    const announcers = [...this.entries.values()].flatMap((e) => (e.announcer === undefined ? [] : [e.announcer]));
    // Not unref'ed: with nothing else left on the event loop, an unref'ed bound would let the process exit mid-await.
    let bound: NodeJS.Timeout | undefined;
    const told = stopAll(announcers, { deadlineMs, concurrency: LIMITS.announceStopAllConcurrency });
    await Promise.race([Promise.all([...this.running, told]), new Promise((res) => (bound = setTimeout(res, deadlineMs)))]);
    clearTimeout(bound);
    const result = await Promise.race([told, Promise.resolve(undefined)]);
    if (result !== undefined) this.o.log.info(result, 'trackers told event=stopped');
    this.fds.closeAll();
  }

  private abortAll(reason: unknown): void {
    for (const e of this.entries.values()) {
      if (e.retry !== undefined) clearTimeout(e.retry);
      e.work.abort(reason);
    }
  }

  /** Whether work on `entry` should go on. */
  private live(entry: BoxEntry): boolean {
    return !this.stopped && !entry.work.signal.aborted;
  }

  private move(entry: BoxEntry, event: EntryEvent): void {
    entry.state = nextState(entry.state, event);
  }

  private async apply(diff: FolderDiff): Promise<void> {
    this.batch = { i: 0, n: diff.added.length + diff.changed.length };
    for (const path of diff.removed) this.remove(path);
    for (const path of diff.changed) this.remove(path);
    const read: { entry: BoxEntry; k: Kascade; dataPath: string }[] = [];
    for (const path of [...diff.changed, ...diff.added]) {
      const r = await this.read(path);
      if (r !== undefined) read.push(r);
    }
    const losers = await settleClaims(read, { db: this.o.engine.db, pool: this.o.engine.pool, signal: this.o.signal });
    for (const r of read) {
      const why = losers.get(r.entry.path);
      if (why === undefined) this.accept(r.entry, r.k, r.dataPath);
      else this.reject(r.entry, new KfetchError('KF_E_INPUT', why.reason, { file: r.entry.path, field: 'filename' }), why.winner);
    }
  }

  /** A kascade file on its own (a promoted duplicate): read it and take it in. */
  private async add(path: string): Promise<void> {
    const r = await this.read(path);
    if (r !== undefined) this.accept(r.entry, r.k, r.dataPath);
  }

  /** A new entry for `path`: its kascade and the data file it would use, or rejected (reported) when unreadable. */
  private async read(path: string): Promise<{ entry: BoxEntry; k: Kascade; dataPath: string } | undefined> {
    if (this.stopped) return undefined;
    const entry = newEntry(path, this.watcher.files.get(path) ?? { size: 0, mtimeMs: 0 });
    this.entries.add(entry);
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
  private accept(entry: BoxEntry, k: Kascade, dataPath: string): void {
    if (!this.live(entry)) return;
    const held = this.entries.holder(k, dataPath);
    if (held !== undefined) {
      const why = held.what === 'data file' ? `its data file ${dataPath} is already used by ${held.entry.path}; ignored` : `same ${held.what} as ${held.entry.path}; ignored`;
      return this.reject(entry, new KfetchError('KF_E_INPUT', why, { file: entry.path, field: held.what === 'data file' ? 'filename' : 'filehash' }), held.entry.path);
    }
    this.entries.claim(entry, k, dataPath);
    this.activate(entry);
  }

  private reject(entry: BoxEntry, err: unknown, dupOf?: string): void {
    this.move(entry, 'reject');
    if (dupOf !== undefined) entry.dupOf = dupOf;
    entry.error = errorText(err);
    this.counters.rejected++;
    this.o.log.warn({ file: entry.path, code: isKfetchError(err) ? err.code : undefined }, `kascade skipped: ${entry.error}`);
  }

  private remove(path: string): void {
    const e = this.entries.get(path);
    if (e === undefined) return;
    const wasSeeding = e.state === 'seeding';
    this.move(e, 'remove');
    this.entries.delete(e);
    if (e.retry !== undefined) clearTimeout(e.retry);
    e.work.abort(new Error('kascade removed from the watch folder'));
    if (wasSeeding) this.o.engine.library.remove(e.kascade!.swarmId);
    this.track(e.announcer?.stop());
    e.announcer = undefined;
    this.o.log.info({ file: path }, 'kascade removed: no longer served');
    // A kascade skipped in favour of this one may now take its place.
    for (const d of this.entries.waitingFor(path)) {
      this.remove(d.path);
      this.track(this.add(d.path));
    }
  }

  /** Decide what an accepted (loading) entry needs, from the state database and the data file. */
  private activate(entry: BoxEntry): void {
    if (!this.live(entry)) return;
    const k = entry.kascade!;
    let row: DownloadRow | undefined;
    try {
      row = this.o.engine.db.getBySwarmId(k.swarmId);
    } catch (err) {
      return this.fail(entry, err);
    }
    if (row !== undefined) this.entries.setRow(entry, row.id), (entry.bytesFetched = row.bytesFetched);
    if (row?.status === 'complete' && unchanged(row)) return this.seed(entry, row);
    const dataExists = existsFile(entry.dataPath!);
    if (row !== undefined ? row.status === 'complete' && dataExists : dataExists) {
      this.move(entry, 'verify');
      this.track(this.verifyQueue.run(entry.work.signal, () => this.verify(entry)));
    } else {
      this.queueDownload(entry, 'queue');
    }
  }

  /** A data file without a matching complete state: verify it in the workers, then seed it or fetch the rest. */
  private async verify(entry: BoxEntry): Promise<void> {
    if (!this.live(entry)) return;
    const k = entry.kascade!;
    const engine = this.o.engine;
    let p: Prepared;
    try {
      const row = engine.db.getBySwarmId(k.swarmId);
      this.o.log.info({ file: entry.path, data: entry.dataPath }, 'verifying the data file');
      const signal = entry.work.signal;
      p = row === undefined ? await engine.prepareAdopt(k, entry.dataPath!, signal) : await engine.prepareResume(row, [], signal, { verify: true });
    } catch (err) {
      if (entry.state === 'removed') this.o.log.info({ file: entry.path }, 'verification cancelled: the kascade was removed');
      return this.fail(entry, err);
    }
    this.entries.setRow(entry, p.init.row.id);
    engine.releaseFile(p.init.dataFile);
    if (!this.live(entry)) return;
    if (p.complete) return this.seed(entry, engine.db.getDownload(p.init.row.id)!);
    this.queueDownload(entry, 'queue');
  }

  /** The slow scrub: re-hash the seeding file checked least recently, so bit rot is found before peers ban us. */
  private scrubNext(): void {
    let next: BoxEntry | undefined;
    for (const e of this.entries.values()) {
      if (e.state !== 'seeding') continue;
      if (next === undefined || (e.scrubbedAt ?? 0) < (next.scrubbedAt ?? 0)) next = e;
    }
    if (next === undefined || this.verifyQueue.size > 0) return;
    const entry = next;
    entry.scrubbedAt = Date.now();
    this.track(this.verifyQueue.run(entry.work.signal, () => this.scrub(entry)));
  }

  private async scrub(entry: BoxEntry): Promise<void> {
    if (!this.live(entry) || entry.state !== 'seeding') return;
    const engine = this.o.engine;
    let p: Prepared;
    try {
      const row = engine.db.getBySwarmId(entry.kascade!.swarmId);
      if (row === undefined) return;
      p = await engine.prepareResume(row, [], entry.work.signal, { verify: true });
    } catch (err) {
      if (!this.live(entry) || entry.state !== 'seeding') return;
      this.stopSeeding(entry);
      return this.fail(entry, err);
    }
    engine.releaseFile(p.init.dataFile);
    this.counters.scrubs++;
    if (p.complete) {
      this.o.log.debug({ file: entry.path }, 'scrub: every block matches');
      return;
    }
    // Meanwhile the file may have been found changed (and is being re-checked already), or removed.
    if (!this.live(entry) || entry.state !== 'seeding') return;
    const bad = p.init.row.blockCount - p.init.durable.count;
    this.counters.scrubFailures++;
    this.o.log.warn({ file: entry.path, data: entry.dataPath, badBlocks: bad }, 'scrub: blocks no longer match; no longer served, fetching them again');
    this.stopSeeding(entry);
    this.move(entry, 'recheck');
    this.reload(entry);
  }

  /** Take a seeding entry out of the library and tell its tracker (it no longer holds the whole file). */
  private stopSeeding(entry: BoxEntry): void {
    this.o.engine.library.remove(entry.kascade!.swarmId);
    this.track(entry.announcer?.stop());
    entry.announcer = undefined;
  }

  private queueDownload(entry: BoxEntry, event: 'queue' | 'retry'): void {
    this.move(entry, event);
    this.track(this.downloadQueue.run(entry.work.signal, () => this.download(entry)));
  }

  /** Fetch what is missing with the engine (the session serves its checkpointed blocks meanwhile), then seed. */
  private async download(entry: BoxEntry): Promise<void> {
    if (!this.live(entry)) return;
    const k = entry.kascade!;
    const engine = this.o.engine;
    let p: Prepared;
    try {
      let row = engine.db.getBySwarmId(k.swarmId);
      if (row !== undefined && !existsFile(row.dataPath)) {
        // The data file is gone: the box's job is to hold it, so it starts over (the user removed it, not us).
        this.o.log.warn({ file: entry.path, data: row.dataPath }, 'data file gone: fetching it again');
        engine.db.removeDownload(row.id);
        row = undefined;
      }
      p = row === undefined
        ? await engine.prepareNew(k, { outDir: this.o.dataDir, outPath: entry.dataPath! }, [])
        : await engine.prepareResume(row, [], entry.work.signal);
    } catch (err) {
      return this.fail(entry, err);
    }
    const rowId = p.init.row.id;
    entry.fetchedBase = p.init.row.bytesFetched;
    this.entries.setRow(entry, rowId);
    if (!this.live(entry)) return engine.releaseFile(p.init.dataFile);
    this.move(entry, 'start');
    // One controller per attempt, linked by hand to the entry's (a stall ends the attempt, not the entry).
    const attempt = new AbortController();
    const onAbort = (): void => attempt.abort(entry.work.signal.reason);
    entry.work.signal.addEventListener('abort', onAbort, { once: true });
    const stallMs = this.o.stallTimeoutMs;
    const watch = stallMs > 0 ? new StallWatch(stallMs, () => attempt.abort(new Stalled())) : undefined;
    entry.stallWatch = watch;
    let result;
    try {
      ({ result } = await engine.runOne(p, attempt.signal));
    } finally {
      entry.work.signal.removeEventListener('abort', onAbort);
      watch?.stop();
      entry.stallWatch = undefined;
    }
    const stopped = !(result instanceof KfetchError) && result.outcome === 'stopped';
    if (!this.live(entry) || stopped || result instanceof KfetchError) {
      engine.library.remove(k.swarmId);
      engine.releaseFile(p.init.dataFile);
      if (!this.live(entry)) return;
      if (stopped && attempt.signal.reason instanceof Stalled) return this.stalled(entry, watch!);
      this.counters.downloadsFailed++;
      return this.fail(entry, stopped ? new KfetchError('KF_E_INTERNAL', 'download stopped unasked') : result);
    }
    this.counters.downloadsCompleted++;
    // Swap the session's served file (its own fd) for one served through the cache, then close the session's fd
    // (a response still reading through it finishes first: DataFile defers the close).
    this.seed(entry, engine.db.getDownload(rowId)!);
    engine.releaseFile(p.init.dataFile);
  }

  /** A download without progress gave its slot up: back to the queue after a back-off, so others can run. */
  private stalled(entry: BoxEntry, watch: StallWatch): void {
    this.move(entry, 'stall');
    this.counters.downloadsStalled++;
    entry.stalls = watch.progressed ? 1 : entry.stalls + 1;
    const delay = entryRetryDelayMs(entry.stalls);
    const seconds = Math.round(this.o.stallTimeoutMs / 1000);
    entry.error = `KF_E_NO_PEERS: no verified block for ${seconds} s; waiting for peers`;
    this.later(entry, delay, () => this.queueDownload(entry, 'retry'));
    this.o.log.warn(
      { file: entry.path, retryInS: Math.round(delay / 1000), nextTry: new Date(entry.nextTryAt!).toISOString() },
      `no verified block for ${seconds} s: giving the download slot up; it goes back to the queue then`,
    );
  }

  /** Serve a complete file through the fd cache and announce it. */
  private seed(entry: BoxEntry, row: DownloadRow): void {
    if (!this.live(entry)) return;
    this.move(entry, 'seed');
    const k = thin(entry.kascade!);
    entry.kascade = k;
    entry.error = undefined;
    entry.failures = 0;
    entry.stalls = 0;
    entry.bytesFetched = row.bytesFetched;
    this.entries.setRow(entry, row.id);
    const want = { path: row.dataPath, size: row.filesize, mtimeMs: row.dataMtimeMs, dev: row.dataDev, ino: row.dataIno };
    this.o.engine.library.add(boxServedFile(k, row.blockSize, want, this.fds, (err) => this.changedWhileSeeding(entry, err)));
    if (entry.announcer === undefined && k.tracker !== '') {
      const bitfield = Bitfield.full(row.blockCount);
      entry.announcer = new Announcer({
        url: k.tracker,
        log: this.o.log.child({ file: entry.path }),
        state: () => ({ port: this.o.port(), progress: 1, blocks: { blockSize: row.blockSize, bitfield } }),
        queue: this.announceQueue,
        startDelayMs: this.batch.i < this.batch.n ? spreadStartDelayMs(this.batch.i++, this.batch.n) : 0,
        ...(this.o.announceStats === undefined ? {} : { stats: this.o.announceStats }),
        ...(this.o.announceLimits === undefined ? {} : { limits: this.o.announceLimits }),
      });
      entry.announcer.start();
    }
  }

  /** The data file changed under a seeding entry: stop serving it at once and re-check it (verify or re-fetch). */
  private changedWhileSeeding(entry: BoxEntry, err: DataChangedError): void {
    if (!this.live(entry) || entry.state !== 'seeding') return;
    this.counters.dataChanged++;
    this.o.log.warn({ file: entry.path, data: err.path, reason: err.reason }, 'data file changed while seeding: no longer served; re-checking it');
    this.stopSeeding(entry);
    this.move(entry, 'recheck');
    this.reload(entry);
  }

  /** Bring back the full kascade (with block hashes) from its file before verifying or downloading again. */
  private reload(entry: BoxEntry): void {
    const done = loadKascade(entry.path, { signal: entry.work.signal })
      .then((k) => {
        if (k.swarmId !== entry.kascade?.swarmId) throw new KfetchError('KF_E_INPUT', 'the kascade file changed', { file: entry.path });
        entry.kascade = k;
        this.activate(entry);
      })
      .catch((err: unknown) => this.fail(entry, err));
    this.track(done);
  }

  private fail(entry: BoxEntry, err: unknown): void {
    if (!this.live(entry)) return;
    this.move(entry, 'fail');
    entry.failures++;
    entry.error = errorText(err);
    const delay = entryRetryDelayMs(entry.failures);
    this.o.log.error({ file: entry.path, retryInS: Math.round(delay / 1000) }, entry.error);
    this.later(entry, delay, () => {
      this.move(entry, 'retry');
      this.reload(entry);
    });
  }

  /** Run `again` for a failed or stalled entry after `delayMs` (shown in /status as its next try). */
  private later(entry: BoxEntry, delayMs: number, again: () => void): void {
    entry.nextTryAt = Date.now() + delayMs;
    entry.retry = setTimeout(() => {
      entry.retry = undefined;
      entry.nextTryAt = undefined;
      if (this.live(entry)) again();
    }, delayMs);
    entry.retry.unref();
  }

  /** Keep a handle on background work so stop() can wait for it; its errors are already handled inside. */
  private track(p: Promise<unknown> | undefined): void {
    if (p !== undefined) void this.tracked(p);
  }

  /** `p`, tracked for stop(), settling once it has (never rejecting: an escaped error is logged as a bug). */
  private tracked(p: Promise<unknown>): Promise<void> {
    const t = p
      .then(() => undefined)
      .catch((err: unknown) => this.o.log.error({ err: errorText(err) }, 'box: internal error'))
      .finally(() => this.running.delete(t));
    this.running.add(t);
    return t;
  }
}

/** Complete in the state and the data file still matches the last checkpoint (size, mtime, device, inode). */
function unchanged(row: DownloadRow): boolean {
  try {
    const st = lstatSync(row.dataPath);
    return fileDifference(st, { path: row.dataPath, size: row.filesize, mtimeMs: row.dataMtimeMs, dev: row.dataDev, ino: row.dataIno }) === undefined;
  } catch {
    return false;
  }
}

function existsFile(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}
