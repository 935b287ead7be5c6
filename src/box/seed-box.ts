// The seeding box (`kfetch seed --watch`): one process that serves every kascade in a watched folder for months.
// Each kascade file becomes an entry: rejected (bad or duplicate, reported, never fatal), verifying (a data file
// found on disk, or one that changed), queued/downloading (the engine fetches what is missing), seeding (served
// through the fd cache, announced), or failed (retried with backoff). Files complete in the state are served with
// no hashing and no open fd until a request needs one. Used by src/cli/box-run.ts.

import { lstatSync, statSync } from 'node:fs';
import PQueue from 'p-queue';
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
import { nextRetry, spreadStartDelayMs, type RetryPolicy } from '../tracker/backoff.js';
import { LIMITS } from '../limits.js';
import { Bitfield } from '../util/bitfield.js';
import { boxServedFile, fileDifference, type DataChangedError } from './box-file.js';
import { FdCache } from './fd-cache.js';
import { FolderWatcher, type FolderDiff, type SeenFile } from './watch-folder.js';

export type EntryState = 'loading' | 'rejected' | 'verifying' | 'queued' | 'downloading' | 'seeding' | 'failed';

/** One kascade file in the watched folder and what the box does with it. */
export interface BoxEntry {
  path: string;
  seen: SeenFile;
  state: EntryState;
  /** Why it is rejected or failed (code: message). */
  error?: string | undefined;
  /** Rejected as a duplicate of this kascade file: looked at again when that one goes. */
  dupOf?: string;
  kascade?: Kascade;
  dataPath?: string;
  rowId?: number;
  /** Bytes fetched from peers for this kascade (state + this run). */
  bytesFetched: number;
  /** bytesFetched recorded in the state when the current download started. */
  fetchedBase: number;
  failures: number;
  /** When a scrub last re-verified this file (ms since epoch; undefined: not since the box started). */
  scrubbedAt?: number;
  controller?: AbortController | undefined;
  announcer?: Announcer | undefined;
  retry?: NodeJS.Timeout | undefined;
  removed: boolean;
}

export interface SeedBoxOptions {
  watchDir: string;
  dataDir: string;
  engine: Engine;
  log: Logger;
  /** The port we serve on (announced). */
  port: () => number;
  maxDownloads: number;
  maxOpenFiles: number;
  fdIdleMs: number;
  /** Re-verify one seeding file (the least recently checked) this often; 0 turns the scrub off. */
  scrubEveryMs: number;
  rescanMs: number;
  settleMs: number;
  /** Shutdown: aborts downloads; the caller then calls stop(). */
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
  scrubs: number;
  scrubFailures: number;
}

/** Retry of a failed entry: the tracker back-off rules without their fast window (30 s doubling to 1 h, jitter). */
const ENTRY_RETRY: RetryPolicy = {
  fastWindowMs: 0,
  fastScheduleSeconds: [LIMITS.boxRetryBaseMs / 1000],
  backoffBaseMs: LIMITS.boxRetryBaseMs,
  backoffMaxMs: LIMITS.boxRetryMaxMs,
  jitter: LIMITS.announceRetryJitter,
};

function errorText(err: unknown): string {
  return isKfetchError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
}

/** The same kascade without its block hashes: a seeding entry needs only sizes and ids (2,000 entries stay small). */
function thin(k: Kascade): Kascade {
  return new Kascade({ ...k, blockhashes: new Map([...k.blockhashes.keys()].map((s) => [s, []])) });
}

export class SeedBox {
  readonly entries = new Map<string, BoxEntry>();
  readonly counters: BoxCounters = { hashFailures: 0, bannedPeers: 0, dataChanged: 0, rejected: 0, downloadsCompleted: 0, downloadsFailed: 0, scrubs: 0, scrubFailures: 0 };
  readonly fds: FdCache;
  readonly startedAt = Date.now();
  private readonly bySwarm = new Map<string, BoxEntry>();
  private readonly byFilehash = new Map<string, BoxEntry>();
  private readonly byDataPath = new Map<string, BoxEntry>();
  private readonly byRow = new Map<number, BoxEntry>();
  /** Verifications run one at a time: each already uses every hash worker. */
  private readonly verifyQueue = new PQueue({ concurrency: 1 });
  private readonly downloadQueue: PQueue;
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
    this.downloadQueue = new PQueue({ concurrency: o.maxDownloads });
    this.watcher = new FolderWatcher({
      dir: o.watchDir,
      rescanMs: o.rescanMs,
      settleMs: o.settleMs,
      onChange: (diff) => this.apply(diff),
      onError: (err) => o.log.warn({ dir: o.watchDir, err: errorText(err) }, 'watch folder: scan failed'),
    });
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

  /** Engine events of this box's downloads: counted for metrics and logged when they matter. */
  onEvent(e: DownloadEvent): void {
    const entry = 'id' in e ? this.byRow.get(e.id) : undefined;
    switch (e.event) {
      case 'progress':
        if (entry !== undefined) entry.bytesFetched = entry.fetchedBase + e.received;
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

  /** Stop: no more scans or retries, downloads end (checkpointed), `event=stopped` to every tracker. */
  async stop(deadlineMs: number): Promise<void> {
    this.stopped = true;
    this.watcher.stop();
    if (this.scrubTimer !== undefined) clearInterval(this.scrubTimer);
    this.verifyQueue.clear();
    this.downloadQueue.clear();
    for (const e of this.entries.values()) {
      if (e.retry !== undefined) clearTimeout(e.retry);
      e.controller?.abort(new Error('box stopping'));
    }
    const announcers = [...this.entries.values()].flatMap((e) => (e.announcer === undefined ? [] : [e.announcer]));
    const bound = new Promise((res) => setTimeout(res, deadlineMs).unref());
    const told = stopAll(announcers, { deadlineMs, concurrency: LIMITS.announceStopAllConcurrency });
    await Promise.race([Promise.all([...this.running, told]), bound]);
    const result = await Promise.race([told, Promise.resolve(undefined)]);
    if (result !== undefined) this.o.log.info(result, 'trackers told event=stopped');
    this.fds.closeAll();
  }

  private async apply(diff: FolderDiff): Promise<void> {
    this.batch = { i: 0, n: diff.added.length + diff.changed.length };
    for (const path of diff.removed) this.remove(path);
    for (const path of diff.changed) {
      this.remove(path);
      await this.add(path);
    }
    for (const path of diff.added) await this.add(path);
  }

  private async add(path: string): Promise<void> {
    if (this.stopped) return;
    const seen = this.watcher.files.get(path) ?? { size: 0, mtimeMs: 0 };
    const entry: BoxEntry = { path, seen, state: 'loading', bytesFetched: 0, fetchedBase: 0, failures: 0, removed: false };
    this.entries.set(path, entry);
    let k: Kascade;
    try {
      k = await loadKascade(path, { signal: this.o.signal });
      const other = this.bySwarm.get(k.swarmId) ?? this.byFilehash.get(k.filehash);
      if (other !== undefined) {
        entry.dupOf = other.path;
        throw new KfetchError('KF_E_INPUT', `same ${other.kascade?.filehash === k.filehash ? 'filehash' : 'swarm'} as ${other.path}; ignored`, {
          file: path,
          field: 'filehash',
        });
      }
      const row = this.o.engine.db.getBySwarmId(k.swarmId);
      const dataPath = row?.dataPath ?? outputPath(k, this.o.dataDir);
      const user = this.byDataPath.get(dataPath);
      if (user !== undefined) {
        entry.dupOf = user.path;
        throw new KfetchError('KF_E_INPUT', `its data file ${dataPath} is already used by ${user.path}; ignored`, { file: path, field: 'filename' });
      }
      if (entry.removed) return;
      entry.kascade = k;
      entry.dataPath = dataPath;
      this.bySwarm.set(k.swarmId, entry);
      this.byFilehash.set(k.filehash, entry);
      this.byDataPath.set(dataPath, entry);
    } catch (err) {
      if (entry.removed) return;
      entry.state = 'rejected';
      entry.error = errorText(err);
      this.counters.rejected++;
      this.o.log.warn({ file: path, code: isKfetchError(err) ? err.code : undefined }, `kascade skipped: ${entry.error}`);
      return;
    }
    this.activate(entry);
  }

  private remove(path: string): void {
    const e = this.entries.get(path);
    if (e === undefined) return;
    e.removed = true;
    this.entries.delete(path);
    if (e.retry !== undefined) clearTimeout(e.retry);
    e.controller?.abort(new Error('kascade removed from the watch folder'));
    const k = e.kascade;
    if (k !== undefined) {
      if (this.bySwarm.get(k.swarmId) === e) this.bySwarm.delete(k.swarmId);
      if (this.byFilehash.get(k.filehash) === e) this.byFilehash.delete(k.filehash);
      if (e.dataPath !== undefined && this.byDataPath.get(e.dataPath) === e) this.byDataPath.delete(e.dataPath);
      if (e.state === 'seeding') this.o.engine.library.remove(k.swarmId);
    }
    if (e.rowId !== undefined && this.byRow.get(e.rowId) === e) this.byRow.delete(e.rowId);
    this.track(e.announcer?.stop());
    e.announcer = undefined;
    this.o.log.info({ file: path }, 'kascade removed: no longer served');
    // A kascade skipped as a duplicate of this one may now take its place.
    for (const d of [...this.entries.values()]) {
      if (d.dupOf !== path) continue;
      this.remove(d.path);
      this.track(this.add(d.path));
    }
  }

  /** Decide what an accepted entry needs, from the state database and the data file. */
  private activate(entry: BoxEntry): void {
    if (entry.removed || this.stopped) return;
    const k = entry.kascade!;
    let row: DownloadRow | undefined;
    try {
      row = this.o.engine.db.getBySwarmId(k.swarmId);
    } catch (err) {
      return this.fail(entry, err);
    }
    if (row !== undefined) this.byRow.set(row.id, entry), (entry.rowId = row.id), (entry.bytesFetched = row.bytesFetched);
    if (row?.status === 'complete' && this.unchanged(row)) return this.seed(entry, row);
    const dataExists = existsFile(entry.dataPath!);
    if (row !== undefined ? row.status === 'complete' && dataExists : dataExists) {
      entry.state = 'verifying';
      this.track(this.verifyQueue.add(() => this.verify(entry)));
    } else {
      this.queueDownload(entry);
    }
  }

  /** A data file without a matching complete state: verify it in the workers, then seed it or fetch the rest. */
  private async verify(entry: BoxEntry): Promise<void> {
    if (entry.removed || this.stopped) return;
    const k = entry.kascade!;
    const engine = this.o.engine;
    let p: Prepared;
    try {
      const row = engine.db.getBySwarmId(k.swarmId);
      this.o.log.info({ file: entry.path, data: entry.dataPath }, 'verifying the data file');
      p = row === undefined ? await engine.prepareAdopt(k, entry.dataPath!, this.o.signal) : await engine.prepareResume(row, [], this.o.signal, { verify: true });
    } catch (err) {
      return this.fail(entry, err);
    }
    this.byRow.set(p.init.row.id, entry);
    entry.rowId = p.init.row.id;
    engine.releaseFile(p.init.dataFile);
    if (p.complete) return this.seed(entry, engine.db.getDownload(p.init.row.id)!);
    this.queueDownload(entry);
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
    this.track(this.verifyQueue.add(() => this.scrub(entry)));
  }

  private async scrub(entry: BoxEntry): Promise<void> {
    if (entry.removed || this.stopped || entry.state !== 'seeding') return;
    const engine = this.o.engine;
    let p: Prepared;
    try {
      const row = engine.db.getBySwarmId(entry.kascade!.swarmId);
      if (row === undefined) return;
      p = await engine.prepareResume(row, [], this.o.signal, { verify: true });
    } catch (err) {
      if (this.o.signal.aborted) return;
      this.stopSeeding(entry);
      return this.fail(entry, err);
    }
    engine.releaseFile(p.init.dataFile);
    this.counters.scrubs++;
    if (p.complete) {
      this.o.log.debug({ file: entry.path }, 'scrub: every block matches');
      return;
    }
    if (entry.removed || this.stopped) return;
    const bad = p.init.row.blockCount - p.init.durable.count;
    this.counters.scrubFailures++;
    this.o.log.warn({ file: entry.path, data: entry.dataPath, badBlocks: bad }, 'scrub: blocks no longer match; no longer served, fetching them again');
    this.stopSeeding(entry);
    entry.state = 'verifying';
    this.reload(entry);
  }

  /** Take a seeding entry out of the library and tell its tracker (it no longer holds the whole file). */
  private stopSeeding(entry: BoxEntry): void {
    this.o.engine.library.remove(entry.kascade!.swarmId);
    this.track(entry.announcer?.stop());
    entry.announcer = undefined;
  }

  private queueDownload(entry: BoxEntry): void {
    entry.state = 'queued';
    this.track(this.downloadQueue.add(() => this.download(entry)));
  }

  /** Fetch what is missing with the engine (the session serves its checkpointed blocks meanwhile), then seed. */
  private async download(entry: BoxEntry): Promise<void> {
    if (entry.removed || this.stopped) return;
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
        : await engine.prepareResume(row, [], this.o.signal);
    } catch (err) {
      return this.fail(entry, err);
    }
    const rowId = p.init.row.id;
    entry.fetchedBase = p.init.row.bytesFetched;
    this.byRow.set(rowId, entry);
    entry.rowId = rowId;
    entry.state = 'downloading';
    // Linked by hand, not AbortSignal.any: Node 20 never prunes what AbortSignal.any leaves on the box's lifelong
    // shutdown signal, one entry per download attempt for months (nodejs/node#55351).
    const controller = new AbortController();
    const onShutdown = (): void => controller.abort(this.o.signal.reason);
    if (this.o.signal.aborted) onShutdown();
    else this.o.signal.addEventListener('abort', onShutdown, { once: true });
    entry.controller = controller;
    let result;
    try {
      ({ result } = await engine.runOne(p, controller.signal));
    } finally {
      this.o.signal.removeEventListener('abort', onShutdown);
      entry.controller = undefined;
    }
    if (entry.removed || this.stopped || !(result instanceof KfetchError) && result.outcome === 'stopped') {
      engine.library.remove(k.swarmId);
      engine.releaseFile(p.init.dataFile);
      return;
    }
    if (result instanceof KfetchError) {
      engine.library.remove(k.swarmId);
      engine.releaseFile(p.init.dataFile);
      this.counters.downloadsFailed++;
      return this.fail(entry, result);
    }
    this.counters.downloadsCompleted++;
    // Swap the session's served file (its own fd) for one served through the cache, then close the session's fd
    // (a response still reading through it finishes first: DataFile defers the close).
    this.seed(entry, engine.db.getDownload(rowId)!);
    engine.releaseFile(p.init.dataFile);
  }

  /** Serve a complete file through the fd cache and announce it. */
  private seed(entry: BoxEntry, row: DownloadRow): void {
    if (entry.removed || this.stopped) return;
    const k = thin(entry.kascade!);
    entry.kascade = k;
    entry.state = 'seeding';
    entry.error = undefined;
    entry.failures = 0;
    entry.rowId = row.id;
    entry.bytesFetched = row.bytesFetched;
    this.byRow.set(row.id, entry);
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
    if (entry.removed || entry.state !== 'seeding') return;
    this.counters.dataChanged++;
    this.o.log.warn({ file: entry.path, data: err.path, reason: err.reason }, 'data file changed while seeding: no longer served; re-checking it');
    this.stopSeeding(entry);
    entry.state = 'verifying';
    this.reload(entry);
  }

  /** Bring back the full kascade (with block hashes) from the state before verifying or downloading again. */
  private reload(entry: BoxEntry): void {
    loadKascade(entry.path, { signal: this.o.signal })
      .then((k) => {
        if (k.swarmId !== entry.kascade?.swarmId) throw new KfetchError('KF_E_INPUT', 'the kascade file changed', { file: entry.path });
        entry.kascade = k;
        this.activate(entry);
      })
      .catch((err: unknown) => this.fail(entry, err));
  }

  private fail(entry: BoxEntry, err: unknown): void {
    if (entry.removed || this.stopped) return;
    entry.failures++;
    entry.state = 'failed';
    entry.error = errorText(err);
    const late = entry.failures - 1;
    const delay = nextRetry({ failures: late, lateFailures: late }, Infinity, ENTRY_RETRY).delayMs;
    this.o.log.error({ file: entry.path, retryInS: Math.round(delay / 1000) }, entry.error);
    entry.retry = setTimeout(() => {
      entry.retry = undefined;
      this.reload(entry);
    }, delay);
    entry.retry.unref();
  }

  /** Complete in the state and the data file still matches the last checkpoint (size, mtime, device, inode). */
  private unchanged(row: DownloadRow): boolean {
    try {
      const st = lstatSync(row.dataPath);
      return fileDifference(st, { path: row.dataPath, size: row.filesize, mtimeMs: row.dataMtimeMs, dev: row.dataDev, ino: row.dataIno }) === undefined;
    } catch {
      return false;
    }
  }

  /** Keep a handle on background work so stop() can wait for it; its errors are already handled inside. */
  private track(p: Promise<unknown> | undefined): void {
    if (p === undefined) return;
    const t = p.catch((err: unknown) => this.o.log.error({ err: errorText(err) }, 'box: internal error')).finally(() => this.running.delete(t));
    this.running.add(t);
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
