// The seeding box (`kfetch seed --watch`): one process that serves every kascade in a watched folder for months.
// Each kascade file becomes an entry that moves through the table in entry-state.ts: rejected (bad, duplicate,
// or losing a claim on a data file; reported, never fatal), verifying, queued/downloading (the engine fetches
// what is missing; a download without progress gives its slot up as stalled), seeding (served through the fd
// cache, announced), or failed (retried with back-off). This file wires the parts: the registry owns the maps,
// each entry's AbortController owns its work, the slot queues settle whatever stops them. Used by box-run.ts.

import type { Logger } from 'pino';
import type { Engine, Prepared } from '../client/engine.js';
import type { DownloadEvent } from '../client/events.js';
import { KfetchError } from '../errors.js';
import { loadKascade } from '../kascade/load.js';
import { LIMITS } from '../limits.js';
import type { DownloadRow } from '../store/state-db.js';
import type { AnnounceStats } from '../tracker/announce-stats.js';
import { Announcer, stopAll } from '../tracker/announcer.js';
import { linkSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseKascade } from '../kascade/parse.js';
import type { DataChangedError } from './box-file.js';
import { newCounters, onBoxEvent, type BoxCounters } from './box-events.js';
import { nextToScrub, scrubOnce } from './box-scrub.js';
import { BoxWork } from './box-work.js';
import { prepareDownload, runAttempt } from './download-attempt.js';
import { errorText, existsFile, heldBytes, unchanged } from './entry-facts.js';
import { EntryRegistry, type BoxEntry } from './entry-registry.js';
import { entryRetryDelayMs } from './entry-retry.js';
import { nextState, type EntryEvent } from './entry-state.js';
import { FdCache } from './fd-cache.js';
import { FolderIntake } from './folder-intake.js';
import { Seeding } from './seeding.js';
import { SlotQueue } from './slot-queue.js';
import { FolderWatcher } from './watch-folder.js';

/** How long a pause's resume or a removal waits for the entry's running work (a download ends at a checkpoint). */
const SETTLE_MS = 15_000;
/** An asked announce (the API's reannounce) at most this often per kascade: a tracker may ban a client that floods it. */
const REANNOUNCE_GAP_MS = 10_000;

function conflict(message: string, extra: { existing?: string } = {}): KfetchError {
  return new KfetchError('KF_E_API_CONFLICT', message, extra.existing === undefined ? {} : { detail: { existing: extra.existing } });
}

export interface SeedBoxOptions {
  watchDir: string;
  dataDir: string;
  engine: Engine;
  log: Logger;
  /** The port we serve on (announced). */
  port: () => number;
  /** The port of our binary peer wire, if served (announced as `wire`). */
  wirePort?: (() => number | undefined) | undefined;
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
  /**
   * An entry became complete: seeding after a download or a verification (not when loaded with a complete, unchanged
   * state row, so a restart does not report every entry again). For `--on-done`; must not throw.
   */
  onEntryDone?: (entry: BoxEntry) => void;
  /** An entry failed (its error set; retried later). For `--on-error`; must not throw. */
  onEntryError?: (entry: BoxEntry) => void;
}

export class SeedBox {
  readonly entries = new EntryRegistry();
  readonly counters: BoxCounters = newCounters();
  readonly fds: FdCache;
  readonly startedAt = Date.now();
  /** Verifications run one at a time: each already uses every hash worker. */
  private readonly verifyQueue = new SlotQueue(1);
  private readonly downloadQueue: SlotQueue;
  private readonly work: BoxWork;
  private readonly seeding: Seeding;
  private readonly intake: FolderIntake;
  private readonly watcher: FolderWatcher;
  private readonly o: SeedBoxOptions;
  private scrubTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Told of every engine event of an entry's download (the control API's `peer.*` events). */
  onEntryEvent: ((entry: BoxEntry, e: DownloadEvent) => void) | undefined;
  /** Filehashes paused by the user (kept in the state database across restarts). */
  private readonly paused: Set<string>;

  constructor(o: SeedBoxOptions) {
    this.o = o;
    this.paused = o.engine.db.pausedFilehashes();
    this.fds = new FdCache(o.maxOpenFiles, o.fdIdleMs);
    this.downloadQueue = new SlotQueue(o.maxDownloads);
    this.work = new BoxWork(o.log);
    this.seeding = new Seeding({
      library: o.engine.library,
      fds: this.fds,
      log: o.log,
      port: o.port,
      wirePort: o.wirePort,
      announceStats: o.announceStats,
      ...(o.announceLimits === undefined ? {} : { announceLimits: o.announceLimits }),
      onChanged: (entry, err) => this.changedWhileSeeding(entry, err),
    });
    this.watcher = new FolderWatcher({
      dir: o.watchDir,
      rescanMs: o.rescanMs,
      settleMs: o.settleMs,
      onChange: (diff) => this.work.tracked(this.intake.apply(diff)),
      onError: (err) => o.log.warn({ dir: o.watchDir, err: errorText(err) }, 'watch folder: scan failed'),
    });
    this.intake = new FolderIntake({
      entries: this.entries,
      engine: o.engine,
      dataDir: o.dataDir,
      signal: o.signal,
      log: o.log,
      counters: this.counters,
      work: this.work,
      files: () => this.watcher.files,
      stopped: () => this.stopped,
      batch: (n) => this.seeding.newBatch(n),
      activate: (entry) => this.activate(entry),
      removed: (entry, wasSeeding) => this.removed(entry, wasSeeding),
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
    onBoxEvent(e, entry, this.counters, this.o.log);
    if (entry !== undefined && (e.event === 'progress' || e.event === 'peer' || e.event === 'warning')) this.entries.touch(entry);
    if (entry !== undefined) this.onEntryEvent?.(entry, e);
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
    const told = stopAll(announcers, { deadlineMs, concurrency: LIMITS.announceStopAllConcurrency });
    const left = await this.work.settled(told, deadlineMs);
    if (left > 0) this.o.log.warn({ tasks: left, deadlineMs }, 'box: stop deadline reached with work still running; closing anyway');
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

  /** Whether work on `entry` should go on (not stopping, not removed, not paused). */
  private live(entry: BoxEntry): boolean {
    return !this.stopped && !entry.work.signal.aborted && entry.state !== 'paused';
  }

  /** Keep `p`, work on `entry`, until it settles: stop() waits for it, and so does a resume. */
  private track(entry: BoxEntry, p: Promise<unknown>): void {
    const t = this.work.tracked(p);
    entry.tasks.add(t);
    void t.then(() => entry.tasks.delete(t));
  }

  private move(entry: BoxEntry, event: EntryEvent): void {
    entry.state = nextState(entry.state, event);
    this.entries.touch(entry);
  }

  /** An entry left the folder (its work already aborted): no more retries, no longer served. */
  private removed(entry: BoxEntry, wasSeeding: boolean): void {
    if (entry.retry !== undefined) clearTimeout(entry.retry);
    if (wasSeeding) this.unseed(entry);
  }

  /** Decide what an accepted (loading) entry needs, from the state database and the data file. */
  private activate(entry: BoxEntry): void {
    if (!this.live(entry)) return;
    const k = entry.kascade!;
    if (this.paused.has(k.filehash)) return this.move(entry, 'pause');
    let row: DownloadRow | undefined;
    try {
      row = this.o.engine.db.getBySwarmId(k.swarmId);
    } catch (err) {
      return this.fail(entry, err);
    }
    if (row !== undefined) {
      this.entries.setRow(entry, row.id);
      entry.bytesFetched = row.bytesFetched;
      const durable = heldBytes(k, row.blockSize, row.complete);
      entry.progress = { received: 0, verified: durable, durable, peers: 0 };
      entry.blockSize = row.blockSize;
    }
    if (row?.status === 'complete' && unchanged(row)) return this.seed(entry, row);
    const dataExists = existsFile(entry.dataPath!);
    if (row !== undefined ? row.status === 'complete' && dataExists : dataExists) {
      this.move(entry, 'verify');
      this.track(entry, this.verifyQueue.run(entry.work.signal, () => this.verify(entry)));
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
    const entry = nextToScrub(this.entries.values());
    if (entry === undefined || this.verifyQueue.size > 0) return;
    entry.scrubbedAt = Date.now();
    this.track(entry, this.verifyQueue.run(entry.work.signal, () => this.scrub(entry)));
  }

  private async scrub(entry: BoxEntry): Promise<void> {
    if (!this.live(entry) || entry.state !== 'seeding') return;
    let bad: number | undefined;
    try {
      bad = await scrubOnce(this.o.engine, entry);
    } catch (err) {
      if (!this.live(entry) || entry.state !== 'seeding') return;
      this.unseed(entry);
      return this.fail(entry, err);
    }
    if (bad === undefined) return;
    this.counters.scrubs++;
    if (bad === 0) return this.o.log.debug({ file: entry.path }, 'scrub: every block matches');
    // Meanwhile the file may have been found changed (and is being re-checked already), or removed.
    if (!this.live(entry) || entry.state !== 'seeding') return;
    this.counters.scrubFailures++;
    this.o.log.warn({ file: entry.path, data: entry.dataPath, badBlocks: bad }, 'scrub: blocks no longer match; no longer served, fetching them again');
    this.unseed(entry);
    this.move(entry, 'recheck');
    this.reload(entry);
  }

  /** No longer served; its tracker is told. */
  private unseed(entry: BoxEntry): void {
    this.work.track(this.seeding.stop(entry));
  }

  private queueDownload(entry: BoxEntry, event: 'queue' | 'retry'): void {
    this.move(entry, event);
    this.track(entry, this.downloadQueue.run(entry.work.signal, () => this.download(entry)));
  }

  /** Fetch what is missing with the engine (the session serves its checkpointed blocks meanwhile), then seed. */
  private async download(entry: BoxEntry): Promise<void> {
    if (!this.live(entry)) return;
    const k = entry.kascade!;
    const engine = this.o.engine;
    let p: Prepared;
    try {
      p = await prepareDownload(engine, entry, this.o.dataDir, this.o.log);
    } catch (err) {
      return this.fail(entry, err);
    }
    const rowId = p.init.row.id;
    entry.fetchedBase = p.init.row.bytesFetched;
    entry.blockSize = p.init.row.blockSize;
    this.entries.setRow(entry, rowId);
    if (!this.live(entry)) return engine.releaseFile(p.init.dataFile);
    this.move(entry, 'start');
    const { result, stalled, progressed } = await runAttempt(engine, p, entry, this.o.stallTimeoutMs);
    if (!this.live(entry) || result instanceof KfetchError || result.outcome === 'stopped') {
      // Not if a newer entry of the same swarm (its kascade file changed) holds the row now: it may be serving.
      const holder = this.entries.ofRow(rowId);
      if (holder === undefined || holder === entry) engine.library.remove(k.swarmId);
      engine.releaseFile(p.init.dataFile);
      if (!this.live(entry)) return;
      if (stalled) return this.stalled(entry, progressed);
      this.counters.downloadsFailed++;
      return this.fail(entry, result instanceof KfetchError ? result : new KfetchError('KF_E_INTERNAL', 'download stopped unasked'));
    }
    this.counters.downloadsCompleted++;
    // Swap the session's served file (its own fd) for one served through the cache, then close the session's fd
    // (a response still reading through it finishes first: DataFile defers the close).
    this.seed(entry, engine.db.getDownload(rowId)!);
    engine.releaseFile(p.init.dataFile);
  }

  /** A download without progress gave its slot up: back to the queue after a back-off, so others can run. */
  private stalled(entry: BoxEntry, progressed: boolean): void {
    this.move(entry, 'stall');
    this.counters.downloadsStalled++;
    entry.stalls = progressed ? 1 : entry.stalls + 1;
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
    const completed = entry.state !== 'loading'; // from verifying or downloading, not from a complete row
    this.move(entry, 'seed');
    entry.error = undefined;
    entry.failures = 0;
    entry.stalls = 0;
    entry.bytesFetched = row.bytesFetched;
    entry.progress = { received: entry.progress?.received ?? 0, verified: row.filesize, durable: row.filesize, peers: 0 };
    entry.blockSize = row.blockSize;
    this.entries.setRow(entry, row.id);
    this.seeding.start(entry, row);
    if (completed) this.o.onEntryDone?.(entry);
  }

  /** The data file changed under a seeding entry: stop serving it at once and re-check it (verify or re-fetch). */
  private changedWhileSeeding(entry: BoxEntry, err: DataChangedError): void {
    if (!this.live(entry) || entry.state !== 'seeding') return;
    this.counters.dataChanged++;
    this.o.log.warn({ file: entry.path, data: err.path, reason: err.reason }, 'data file changed while seeding: no longer served; re-checking it');
    this.unseed(entry);
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
    this.track(entry, done);
  }

  private fail(entry: BoxEntry, err: unknown): void {
    if (!this.live(entry)) return;
    this.move(entry, 'fail');
    entry.failures++;
    entry.error = errorText(err);
    const delay = entryRetryDelayMs(entry.failures);
    this.o.log.error({ file: entry.path, retryInS: Math.round(delay / 1000) }, entry.error);
    this.o.onEntryError?.(entry);
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

  // ---- Control (the API and `kfetch box`): each either acts or throws KfetchError('KF_E_API_CONFLICT', why). ----

  /**
   * Take a kascade in: parsed and checked (as any input), refused when the box already holds its filehash, written
   * whole into the watch folder (so the folder and the API never disagree) and taken in at once.
   */
  async addKascade(body: Uint8Array, opts: { paused: boolean }): Promise<BoxEntry> {
    const k = parseKascade(body, 'request body');
    const held = this.entries.ofFilehash(k.filehash);
    if (held !== undefined) throw conflict(`this kascade's filehash is already in the box as ${held.id}`, { existing: held.id });
    const path = this.freeName(k.filename, k.filehash);
    // Written under a hidden name (the watcher skips dot files), then linked into place: never half a file, never
    // over another.
    const tmp = join(this.o.watchDir, `.kfetch-add-${randomBytes(6).toString('hex')}`);
    writeFileSync(tmp, body, { flag: 'wx', mode: 0o644 });
    try {
      linkSync(tmp, path);
    } finally {
      rmSync(tmp, { force: true });
    }
    if (opts.paused) this.setPaused(k.filehash, true);
    await this.watcher.adopt(path);
    const entry = this.entries.get(path);
    if (entry === undefined) throw new KfetchError('KF_E_INTERNAL', `${path} was written but not taken in`, { file: path });
    this.o.log.info({ file: path, paused: opts.paused }, 'kascade added through the API');
    return entry;
  }

  /** A name in the watch folder for a new kascade of data file `filename`. */
  private freeName(filename: string, filehash: string): string {
    for (const name of [`${filename}.kascade`, `${filename}-${filehash.slice(0, 12)}.kascade`, `${filehash}.kascade`]) {
      const path = join(this.o.watchDir, name);
      // A dot name would be skipped by the watcher (its temp files are dot files): never taken in.
      if (!name.startsWith('.') && Buffer.byteLength(name) <= 255 && this.entries.get(path) === undefined && !existsFile(path)) return path;
    }
    throw conflict(`no free name for ${filename} in the watch folder`);
  }

  /** Stop fetching, serving and announcing `entry`, until resumed (kept across restarts). */
  pause(entry: BoxEntry): void {
    this.bumpControl(entry); // a resume still waiting for the old work to end gives way: the last click wins
    if (entry.state === 'paused') return;
    if (entry.kascade === undefined || entry.state === 'rejected' || entry.state === 'removed') throw conflict(`cannot pause a ${entry.state} kascade`);
    const wasSeeding = entry.state === 'seeding';
    this.move(entry, 'pause');
    this.setPaused(entry.kascade.filehash, true);
    if (entry.retry !== undefined) clearTimeout(entry.retry);
    entry.retry = undefined;
    entry.nextTryAt = undefined;
    entry.error = undefined;
    // Running work sees its signal aborted (a download ends at a checkpoint); new work gets a fresh controller.
    entry.work.abort(new Error('paused'));
    entry.work = new AbortController();
    if (wasSeeding) this.unseed(entry);
    this.o.log.info({ file: entry.path }, 'kascade paused');
  }

  /** Undo pause: once the work the pause stopped has ended, read the kascade again and decide afresh. */
  async resume(entry: BoxEntry): Promise<void> {
    if (entry.state !== 'paused') return;
    const turn = this.bumpControl(entry);
    await this.settle(entry);
    if (entry.state !== 'paused' || this.stopped) return; // removed or stopped meanwhile
    if (this.controlTurn.get(entry) !== turn) return; // paused or resumed again meanwhile: that call decides
    // Never two runs of one download: if the paused work outlived the bound, the caller tries again later.
    if (entry.tasks.size > 0) throw conflict('its paused work is still stopping; try again in a moment');
    this.setPaused(entry.kascade!.filehash, false);
    this.move(entry, 'resume');
    this.o.log.info({ file: entry.path }, 'kascade resumed');
    this.reload(entry);
  }

  /** Re-check now: a seeding file is re-hashed (as the scrub does); a failed or stalled one is tried again now. */
  verifyNow(entry: BoxEntry): void {
    if (entry.state === 'seeding') {
      // One asked re-hash per entry at a time: repeated clicks (or a script) do not queue a full read each.
      if (this.scrubAsked.has(entry)) return;
      this.scrubAsked.add(entry);
      entry.scrubbedAt = Date.now();
      const done = (): void => void this.scrubAsked.delete(entry);
      const run = this.verifyQueue.run(entry.work.signal, () => this.scrub(entry));
      run.then(done, done);
      this.track(entry, run);
      return;
    }
    if (entry.state !== 'failed' && entry.state !== 'stalled') throw conflict(`a ${entry.state} kascade is not verified on demand (it is checked as it is fetched)`);
    if (entry.retry !== undefined) clearTimeout(entry.retry);
    entry.retry = undefined;
    entry.nextTryAt = undefined;
    if (entry.state === 'stalled') return this.queueDownload(entry, 'retry');
    this.move(entry, 'retry');
    this.reload(entry);
  }

  /** Announce now (seeding: the box's announcer; downloading: the session's). */
  reannounce(entry: BoxEntry): void {
    const announcer = entry.state === 'seeding' ? entry.announcer : undefined;
    const session = announcer === undefined && entry.state === 'downloading' && entry.rowId !== undefined ? this.o.engine.session(entry.rowId) : undefined;
    if (announcer === undefined && session === undefined) throw conflict(`a ${entry.state} kascade has no announce to repeat`);
    // Asked again within the gap: nothing more is sent (clicks or a script never flood the tracker).
    const last = this.reannouncedAt.get(entry);
    if (last !== undefined && performance.now() - last < REANNOUNCE_GAP_MS) return;
    this.reannouncedAt.set(entry, performance.now());
    if (announcer !== undefined) return void announcer.announceNow().catch(() => undefined);
    session!.reannounce();
  }

  /** When each entry's announce was last asked through reannounce (performance.now()). */
  private readonly reannouncedAt = new WeakMap<BoxEntry, number>();

  /**
   * Remove `entry`: its kascade file leaves the folder (so it is no longer served or fetched), then, once its work has
   * ended, the data file and its state too with `deleteData` (without, both stay: adding it again seeds at once).
   */
  async remove(entry: BoxEntry, opts: { deleteData: boolean }): Promise<{ deletedData: boolean }> {
    try {
      unlinkSync(entry.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await this.watcher.rescan();
    await this.settle(entry);
    if (entry.kascade !== undefined && this.entries.ofFilehash(entry.kascade.filehash) === undefined) this.setPaused(entry.kascade.filehash, false);
    let deletedData = false;
    if (opts.deleteData && entry.kascade !== undefined && entry.dataPath !== undefined) {
      // Only when no other entry (a kascade of the same swarm added meanwhile) took the data file over.
      const db = this.o.engine.db;
      const row = db.getBySwarmId(entry.kascade.swarmId);
      if (this.entries.holder(entry.kascade, entry.dataPath) === undefined) {
        if (row !== undefined) db.removeDownload(row.id);
        rmSync(entry.dataPath, { force: true });
        deletedData = true;
      }
    }
    this.o.log.info({ file: entry.path, deletedData }, 'kascade removed through the API');
    return { deletedData };
  }

  /** Entries with a re-hash asked through verifyNow, queued or running. */
  private readonly scrubAsked = new WeakSet<BoxEntry>();

  /** Each pause and resume of an entry takes a turn; a resume acts only if no later call came meanwhile. */
  private readonly controlTurn = new WeakMap<BoxEntry, number>();

  private bumpControl(entry: BoxEntry): number {
    const n = (this.controlTurn.get(entry) ?? 0) + 1;
    this.controlTurn.set(entry, n);
    return n;
  }

  /** Wait (bounded) until the work running on `entry` has ended. */
  private async settle(entry: BoxEntry): Promise<void> {
    let bound: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all([...entry.tasks]), new Promise((res) => (bound = setTimeout(res, SETTLE_MS)))]);
    clearTimeout(bound);
  }

  private setPaused(filehash: string, paused: boolean): void {
    this.o.engine.db.setPaused(filehash, paused);
    if (paused) this.paused.add(filehash);
    else this.paused.delete(filehash);
  }

  /** Downloads allowed at once (the API's `maxDownloads`). */
  get maxDownloads(): number {
    return this.downloadQueue.concurrency;
  }

  /** Change it at once: more starts waiting downloads now; fewer lets running ones finish (slot-queue.ts). */
  setMaxDownloads(n: number): void {
    this.downloadQueue.setConcurrency(n);
  }
}
