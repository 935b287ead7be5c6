// The process-wide download engine: the home lock, the state database, one worker pool, one HTTP client, one
// global request queue, one block server; it prepares sessions (new or resumed) and runs them together.
// Used by `kfetch get` and `kfetch resume`.

import { futimesSync, lstatSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, resolve, sep } from 'node:path';
import PQueue from 'p-queue';
import type { Logger } from 'pino';
import { KfetchError, isKfetchError } from '../errors.js';
import { createHashPool, type HashPool } from '../hashing/pool.js';
import type { Kascade } from '../kascade/kascade.js';
import { parseKascade } from '../kascade/parse.js';
import { serializeKascade } from '../kascade/serialize.js';
import { BlockClient } from '../peer/block-client.js';
import type { TransportCounts } from '../peer/transport-counts.js';
import { startBlockServer, type BlockServer, type BlockServerOptions } from '../server/block-server.js';
import { Library, VerifiedServedFile } from '../server/library.js';
import { createDataFile, openDataFile, type DataFile } from '../store/data-file.js';
import { checkFreeSpace } from '../store/free-space.js';
import { lockHome, type HomeLock } from '../store/home-lock.js';
import { StateDb, type DownloadRow, type NewDownload } from '../store/state-db.js';
import { Bitfield } from '../util/bitfield.js';
import { makeDirs } from '../util/make-dirs.js';
import { BlockSlab } from './block-slab.js';
import { crashPoint } from './crash-point.js';
import { dataFileFacts } from './checkpointer.js';
import { DownloadSession, type SessionInit, type SessionResult } from './download-session.js';
import { recheck } from './recheck.js';
import type { EngineLimits } from './engine-limits.js';
import type { EventSink } from './events.js';

export interface EngineOptions {
  home: string;
  log: Logger;
  emit: EventSink;
  limits: EngineLimits;
  threads?: number;
  /** Serve verified blocks while downloading on this host/port (port 0: any free port). */
  serve?: { host: string; port: number } & Partial<Pick<BlockServerOptions, 'limits' | 'observability' | 'extraRoutes' | 'wirePort'>>;
  /** Fetch over the binary peer wire from peers that advertise it (X-Kascade-Wire); default true. */
  useWire?: boolean;
}

export interface Prepared {
  init: SessionInit;
  /** Already complete: nothing to fetch. */
  complete: boolean;
}

export class Engine {
  readonly db: StateDb;
  readonly pool: HashPool;
  readonly library = new Library();
  server: BlockServer | undefined;
  private readonly lock: HomeLock;
  private readonly client: BlockClient;
  private readonly queue: PQueue;
  private readonly o: EngineOptions;
  private readonly openFiles: DataFile[] = [];
  private sharedSlab: BlockSlab | undefined;
  /** Sessions running now, by download id. */
  private readonly sessions = new Map<number, DownloadSession>();

  private constructor(o: EngineOptions, lock: HomeLock, db: StateDb) {
    this.o = o;
    this.lock = lock;
    this.db = db;
    // One core less than the machine has: the main thread moves the bytes and each download's SHA-256 has a thread
    // of its own; with multi-buffer MD5 one worker keeps up with two cores' worth of network (issue 11: 1 GiB from
    // 4 nginx on 2 cores, 1 worker against 2: 0.2-0.4 CPU-s less, one V8 isolate less in RSS).
    this.pool = createHashPool({ threads: o.threads ?? Math.max(1, availableParallelism() - 1) });
    this.client = new BlockClient({ connectionsPerPeer: o.limits.peer.maxSlots, connectTimeoutMs: 5_000, wire: o.useWire !== false });
    this.queue = new PQueue({ concurrency: o.limits.maxInFlight });
  }

  /** Lock the home, open the state, start the pool and (if asked) the block server. */
  static async open(o: EngineOptions): Promise<Engine> {
    const lock = lockHome(o.home);
    let db: StateDb;
    try {
      db = StateDb.open(o.home);
    } catch (err) {
      lock.release();
      throw err;
    }
    const engine = new Engine(o, lock, db);
    try {
      if (o.serve !== undefined) {
        engine.server = await startBlockServer({
          library: engine.library,
          host: o.serve.host,
          port: o.serve.port,
          log: o.log,
          ...(o.serve.limits === undefined ? {} : { limits: o.serve.limits }),
          ...(o.serve.observability === undefined ? {} : { observability: o.serve.observability }),
          ...(o.serve.extraRoutes === undefined ? {} : { extraRoutes: o.serve.extraRoutes }),
          ...(o.serve.wirePort === undefined ? {} : { wirePort: o.serve.wirePort }),
        });
        o.emit({ event: 'serving', url: engine.server.url });
        if (engine.server.wirePort !== undefined) o.log.info({ wirePort: engine.server.wirePort }, 'serving the peer wire');
      }
    } catch (err) {
      await engine.close();
      throw err;
    }
    return engine;
  }

  /**
   * A new download of `kascade` into `outDir/<filename>` (or `outPath`). A download of the same swarm already in
   * the state, to the same path, is resumed instead (with `adopt`, re-verifying the file first); to another path it
   * is refused (one swarm, one data file). With `adopt`, an existing file of that name is taken over: its good
   * blocks are kept and only the rest fetched (see `adopt`); without one it is a plain download.
   */
  async prepareNew(
    kascade: Kascade,
    where: { outDir: string; outPath?: string; overwrite?: boolean; adopt?: boolean; blockSize?: number },
    peers: string[],
    signal?: AbortSignal,
  ): Promise<Prepared> {
    const dataPath = outputPath(kascade, where.outDir, where.outPath);
    const existing = this.db.getBySwarmId(kascade.swarmId);
    if (existing !== undefined) {
      if (existing.dataPath !== dataPath) {
        throw new KfetchError(
          'KF_E_OUTPUT_EXISTS',
          `this swarm is already downloading to ${existing.dataPath} (download ${existing.id}); ` +
            `\`kfetch resume ${existing.id}\` continues it, \`kfetch remove ${existing.id}\` forgets it`,
          { file: dataPath },
        );
      }
      if (where.blockSize !== undefined && where.blockSize !== existing.blockSize) {
        throw new KfetchError(
          'KF_E_USAGE',
          `download ${existing.id} of this swarm fetches ${existing.blockSize}-byte blocks, not --block-size ${where.blockSize}; ` +
            `\`kfetch resume ${existing.id}\` continues it, \`kfetch remove ${existing.id} --delete-data\` starts over`,
          { file: dataPath, field: '--block-size' },
        );
      }
      return this.prepareResume(existing, peers, signal, { verify: where.adopt === true });
    }
    makeDirs(dirname(dataPath), 'cannot create the output directory');
    if (where.adopt === true && lexists(dataPath)) {
      return this.adopt(kascade, dataPath, { shorter: true, peers, ...(where.blockSize === undefined ? {} : { blockSize: where.blockSize }), ...(signal ? { signal } : {}) });
    }
    checkFreeSpace(dataPath, kascade.filesize);
    // The download is recorded before its file is created (issue 10 point 5): a crash in between leaves a row with
    // nothing safe and no file, which resume and get start afresh; the other order left a file that get refused and
    // resume did not know.
    const row = this.db.addDownload(newDownload(kascade, dataPath, where.blockSize));
    crashPoint('between-record-and-create');
    let dataFile: DataFile;
    try {
      dataFile = createDataFile(dataPath, kascade.filesize, where.overwrite === true ? { overwrite: true } : {});
    } catch (err) {
      this.db.removeDownload(row.id); // nothing left behind: the row goes again
      if (isKfetchError(err) && err.code === 'KF_E_OUTPUT_EXISTS' && lstatSync(dataPath, { throwIfNoEntry: false })?.isFile() === true) {
        throw new KfetchError(
          'KF_E_OUTPUT_EXISTS',
          `${dataPath} already exists: --adopt keeps its blocks that match and fetches only the rest, --overwrite starts it afresh`,
          { file: dataPath, cause: err },
        );
      }
      throw err;
    }
    this.openFiles.push(dataFile);
    const mtimeSec = Math.floor(row.createdAt / 1000);
    futimesSync(dataFile.fd, Date.now() / 1000, mtimeSec);
    return {
      complete: false,
      init: { row, kascade, dataFile, durable: new Bitfield(row.blockCount), peers: this.peerList(row, kascade, peers), mtimeSec },
    };
  }

  /**
   * Continue a download from the state. Checkpointed blocks are trusted without re-hashing unless the data file's
   * size, mtime, device or inode differ from what the last checkpoint recorded (or `verify` asks); then every block
   * is re-verified in the workers (recheck.ts) and only the ones that match are kept. The file is sized to the
   * kascade's size only after that check, so a truncated tail is never trusted.
   */
  async prepareResume(row: DownloadRow, peers: string[], signal?: AbortSignal, opts: { verify?: boolean } = {}): Promise<Prepared> {
    const kascade = parseKascade(row.kascade, `state of download ${row.id}`);
    const mtimeSec = Math.floor(row.createdAt / 1000);
    const verify = opts.verify === true;
    // Recorded but never created (a crash between the two), with nothing safe yet: create it now, nothing is lost.
    // A missing file with safe blocks stays KF_E_DATA_MISSING (never start over silently).
    const neverCreated = row.complete.count === 0 && row.status !== 'complete' && !lexists(row.dataPath);
    let durable = row.complete;
    let hashed = false;
    let identity: { dev: number; ino: number } | undefined;
    // Even with nothing checkpointed a changed file is hashed: it may be one being adopted when kfetch was killed.
    if (!neverCreated) {
      const facts = { size: row.filesize, mtimeMs: mtimeSec * 1000, dev: row.dataDev, ino: row.dataIno };
      const r = await recheck({
        path: row.dataPath,
        kascade,
        blockSize: row.blockSize,
        pool: this.pool,
        trust: verify ? { kind: 'nothing' } : { kind: 'recorded', blocks: row.complete, facts },
        ...(signal ? { signal } : {}),
        onProgress: (done, total) => this.o.emit({ event: 'verify', id: row.id, phase: 'blocks', done, total }),
      });
      if (r.hashed && !verify) this.o.log.warn({ file: row.dataPath }, 'the data file changed since the last checkpoint: it was re-verified');
      ({ durable, hashed, identity } = r);
    }
    // The file checked must be the one opened: one swapped in meanwhile is refused before it is sized or recorded.
    const dataFile = neverCreated ? createDataFile(row.dataPath, row.filesize) : openDataFile(row.dataPath, row.filesize, identity);
    this.openFiles.push(dataFile);
    if (hashed) {
      await dataFile.sync();
      this.db.checkpoint(row.id, { complete: durable, blocks: [], bytesFetched: row.bytesFetched, ...dataFileFacts(dataFile, mtimeSec * 1000) });
      if (row.status === 'complete' && !durable.complete) this.db.setStatus(row.id, 'downloading');
    }
    futimesSync(dataFile.fd, Date.now() / 1000, mtimeSec);
    const fresh = this.db.getDownload(row.id)!;
    return {
      complete: fresh.status === 'complete' && durable.complete,
      init: { row: fresh, kascade, dataFile, durable, peers: this.peerList(fresh, kascade, peers), mtimeSec },
    };
  }

  /**
   * Take over a data file that exists but is not in the state (a seeding box finds files it did not download):
   * record it, verify every block in the workers, and when every block matches check the whole-file SHA-256 too,
   * so a complete file is marked complete without a download session. The file must already have the kascade's
   * size (nothing of a file kfetch did not create is truncated or extended). Its mtime becomes the fixed one kfetch
   * keeps on its data files.
   */
  async prepareAdopt(kascade: Kascade, dataPath: string, signal?: AbortSignal): Promise<Prepared> {
    const p = await this.adopt(kascade, dataPath, { shorter: false, ...(signal ? { signal } : {}) });
    const { dataFile, durable, row } = p.init;
    if (!durable.complete) return p;
    const r = await this.pool.sha256File({ kind: 'sha256-file', fd: dataFile.fd, size: kascade.filesize }, signal);
    if (r.read !== kascade.filesize || r.hex !== kascade.filehash) {
      throw new KfetchError('KF_E_FILE_HASH_MISMATCH', `every block of ${dataPath} matches but the whole-file SHA-256 does not`, {
        file: dataPath,
        field: 'filehash',
      });
    }
    this.db.setStatus(row.id, 'complete');
    return { complete: true, init: { ...p.init, row: this.db.getDownload(row.id)! } };
  }

  /**
   * Record a download of `kascade` into the existing file `dataPath` and keep its blocks that match (hashed in the
   * workers, recorded durable); the rest are fetched. A file longer than the kascade's size is refused (its tail
   * is not ours to cut off); a shorter one is refused too unless `shorter` (get --adopt), which extends it to its
   * size with zeros — nothing in it is lost. Nothing is recorded when the check fails or is aborted.
   */
  private async adopt(
    kascade: Kascade,
    dataPath: string,
    o: { shorter: boolean; blockSize?: number; peers?: string[]; signal?: AbortSignal },
  ): Promise<Prepared> {
    const st = lstatSync(dataPath);
    if (!st.isFile()) throw new KfetchError('KF_E_DATA_MISSING', `the data file ${dataPath} is not a regular file`, { file: dataPath });
    if (st.size > kascade.filesize || (!o.shorter && st.size !== kascade.filesize)) {
      throw new KfetchError(
        'KF_E_INPUT',
        `the data file ${dataPath} has ${st.size} bytes but the kascade says filesize ${kascade.filesize}; ` +
          `it is left as it is: move it away (or use --overwrite) to fetch the file afresh`,
        { file: dataPath, field: 'filesize', detail: { size: st.size, filesize: kascade.filesize } },
      );
    }
    checkFreeSpace(dataPath, kascade.filesize - st.size);
    const row = this.db.addDownload(newDownload(kascade, dataPath, o.blockSize));
    // A crash from here on leaves the row with nothing durable and the file with its own mtime, not kfetch's:
    // resume (or get --adopt again) then sees a changed file and re-verifies it, so its good blocks are kept.
    crashPoint('during-adopt');
    const mtimeSec = Math.floor(row.createdAt / 1000);
    let dataFile: DataFile;
    let durable: Bitfield;
    let identity: { dev: number; ino: number };
    try {
      ({ durable, identity } = await recheck({
        path: dataPath,
        kascade,
        blockSize: row.blockSize,
        pool: this.pool,
        trust: { kind: 'nothing' },
        ...(o.signal ? { signal: o.signal } : {}),
        onProgress: (done, total) => this.o.emit({ event: 'verify', id: row.id, phase: 'blocks', done, total }),
      }));
      dataFile = openDataFile(dataPath, row.filesize, identity);
    } catch (err) {
      this.db.removeDownload(row.id); // the file stays as it was; adopting it again starts over
      throw err;
    }
    this.openFiles.push(dataFile);
    await dataFile.sync();
    this.db.checkpoint(row.id, { complete: durable, blocks: [], bytesFetched: 0, ...dataFileFacts(dataFile, mtimeSec * 1000) });
    futimesSync(dataFile.fd, Date.now() / 1000, mtimeSec);
    const fresh = this.db.getDownload(row.id)!;
    return { complete: false, init: { row: fresh, kascade, dataFile, durable, peers: this.peerList(fresh, kascade, o.peers ?? []), mtimeSec } };
  }

  /**
   * Re-hash every block of a complete download's data file (the box's scrub) without opening it for writing, so
   * a scrub never resizes or writes a file. When blocks no longer match, the state keeps only the ones that do and
   * the download is `downloading` again (dropping claims needs no sync); the recorded file facts are left as they
   * were, so a resume hashes again if the file itself changed. Resolves with the number of blocks that do not match.
   */
  async scrub(row: DownloadRow, signal?: AbortSignal): Promise<number> {
    const kascade = parseKascade(row.kascade, `state of download ${row.id}`);
    const r = await recheck({ path: row.dataPath, kascade, blockSize: row.blockSize, pool: this.pool, trust: { kind: 'nothing' }, ...(signal ? { signal } : {}) });
    if (r.durable.complete && r.size === row.filesize) return 0;
    const mtimeMs = Math.floor(row.createdAt / 1000) * 1000;
    this.db.checkpoint(row.id, {
      complete: r.durable,
      blocks: [],
      bytesFetched: row.bytesFetched,
      dataSize: row.dataSize ?? row.filesize,
      dataMtimeMs: row.dataMtimeMs ?? mtimeMs,
      dataDev: row.dataDev ?? -1,
      dataIno: row.dataIno ?? -1,
    });
    this.db.setStatus(row.id, 'downloading');
    return Math.max(1, row.blockCount - r.durable.count);
  }

  /** Close a prepared session's data file (a seeding box serves finished files through its own fd cache). */
  releaseFile(dataFile: DataFile): void {
    const i = this.openFiles.indexOf(dataFile);
    if (i >= 0) this.openFiles.splice(i, 1);
    dataFile.close();
  }

  /** Peers from the command line, the kascade's `peers`, and those remembered from earlier runs (not banned). */
  private peerList(row: DownloadRow, k: Kascade, cli: string[]): { addr: string; source: string }[] {
    const out = new Map<string, string>();
    for (const p of cli) out.set(p, 'cli');
    for (const p of k.peers) if (!out.has(p)) out.set(p, 'kascade');
    for (const p of this.db.peers(row.id)) {
      if (p.bannedAt !== undefined) out.delete(p.addr);
      else if (!out.has(p.addr)) out.set(p.addr, p.source);
    }
    return [...out].map(([addr, source]) => ({ addr, source }));
  }

  /** Run every prepared session at once under the one global request limit. */
  async run(prepared: Prepared[], signal: AbortSignal): Promise<{ row: DownloadRow; result: SessionResult | KfetchError }[]> {
    // A slot holds one request: one block, or a multi-block range of up to maxRangeBytes.
    const slab = this.newSlab(Math.max(0, ...prepared.map((p) => p.init.row.blockSize)));
    return Promise.all(prepared.map((p) => this.runWith(p, slab, signal)));
  }

  /**
   * Run one prepared session (a seeding box starts and ends sessions as files come and go). Sessions share one set
   * of block buffers; a session whose blocks are larger than those gets its own.
   */
  runOne(p: Prepared, signal: AbortSignal): Promise<{ row: DownloadRow; result: SessionResult | KfetchError }> {
    this.sharedSlab ??= this.newSlab(0);
    const slab = p.init.row.blockSize <= this.sharedSlab.slotBytes ? this.sharedSlab : this.newSlab(p.init.row.blockSize);
    return this.runWith(p, slab, signal);
  }

  private newSlab(blockSize: number): BlockSlab {
    const slotBytes = Math.max(this.o.limits.maxRangeBytes, blockSize);
    const slots = Math.max(4, Math.min(this.o.limits.maxInFlight, Math.floor(this.o.limits.maxInFlightBytes / slotBytes)));
    return new BlockSlab(slots, slotBytes);
  }

  private async runWith(p: Prepared, slab: BlockSlab, signal: AbortSignal): Promise<{ row: DownloadRow; result: SessionResult | KfetchError }> {
    const port = this.server?.port;
    if (p.complete) {
      // Nothing to fetch: say so, and serve it like any finished download.
      const { row, kascade, dataFile, durable } = p.init;
      dataFile.seal(); // nothing writes it now: serving reads check its times too (a rewrite in place is caught)
      this.library.add(new VerifiedServedFile(kascade, dataFile, durable, row.blockSize));
      this.o.emit({ event: 'start', id: row.id, name: row.filename, filehash: row.filehash, size: row.filesize, blocks: row.blockCount, blockSize: row.blockSize, have: durable.count, path: row.dataPath });
      this.o.emit({ event: 'done', id: row.id, name: row.filename, path: row.dataPath, size: row.filesize, filehash: row.filehash, seconds: 0, hashSeconds: 0, bytesPerSecond: 0 });
      return { row, result: { outcome: 'complete', seconds: 0 } };
    }
    const session = new DownloadSession(
      {
        db: this.db,
        workers: this.pool,
        client: this.client,
        queue: this.queue,
        slab,
        log: this.o.log,
        emit: this.o.emit,
        limits: this.o.limits,
        library: this.library,
        ...(port === undefined ? {} : { ourPort: port }),
        ...(this.server?.wirePort === undefined ? {} : { ourWirePort: this.server.wirePort }),
      },
      p.init,
    );
    this.sessions.set(p.init.row.id, session);
    try {
      const result = await session.run(signal);
      if (result.outcome === 'complete') p.init.dataFile.seal(); // as above, from the moment its hash was checked
      return { row: p.init.row, result };
    } catch (err) {
      const e = isKfetchError(err) ? err : new KfetchError('KF_E_INTERNAL', String(err), { cause: err });
      this.o.emit({ event: 'error', id: p.init.row.id, code: e.code, message: e.message, ...(e.file ? { file: e.file } : {}) });
      return { row: p.init.row, result: e };
    } finally {
      if (this.sessions.get(p.init.row.id) === session) this.sessions.delete(p.init.row.id);
    }
  }

  /** The running session of download `rowId` (the box's API reads its peers and block map). */
  /** Every block fetch of this process so far by transport, peer wire or HTTP (the box's /metrics). */
  transport(): TransportCounts {
    return this.client.transport();
  }

  session(rowId: number): DownloadSession | undefined {
    return this.sessions.get(rowId);
  }

  async close(): Promise<void> {
    await this.server?.close().catch(() => undefined);
    await this.client.close().catch(() => undefined);
    await this.pool.destroy().catch(() => undefined);
    for (const f of this.openFiles) f.close();
    this.db.close();
    this.lock.release();
  }
}

/** The state row of a new download of `kascade` into `dataPath`, at `blockSize` (an offered one; default the largest). */
function newDownload(kascade: Kascade, dataPath: string, blockSize: number = kascade.preferredBlockSize): NewDownload {
  return {
    swarmId: kascade.swarmId,
    filehash: kascade.filehash,
    filename: kascade.filename,
    filesize: kascade.filesize,
    blockSize,
    blockCount: kascade.geometry(blockSize).count,
    kascade: serializeKascade(kascade),
    dataPath,
  };
}

/** Whether anything (a file, a link, a directory) is at `path`. */
function lexists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** `<outDir>/<filename>` (or the user's path), checked to stay inside the output directory. */
export function outputPath(k: Kascade, outDir: string, outPath?: string): string {
  if (outPath !== undefined) return resolve(outPath);
  const dir = resolve(outDir);
  const p = resolve(dir, k.filename);
  if (!p.startsWith(dir + sep)) {
    throw new KfetchError('KF_E_KASCADE_NAME', `filename would leave the output directory ${dir}`, { field: 'filename' });
  }
  return p;
}
