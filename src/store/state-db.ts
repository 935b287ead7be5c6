// The kfetch state database (better-sqlite3, WAL, synchronous=FULL) under --home: downloads, which blocks are
// durable (a bitfield per download, written only by checkpoints), block provenance, peers and bans.
// Owned by the coordinator thread alone; workers never touch it. Callers take the home lock first.

import { existsSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { KfetchError } from '../errors.js';
import { Bitfield } from '../util/bitfield.js';

export const STATE_FILE = 'state.sqlite';
// 2: box_paused (issue 12). Every statement is IF NOT EXISTS, so a version-1 database gains it in place.
const SCHEMA_VERSION = 2;

export type DownloadStatus = 'downloading' | 'verifying' | 'complete' | 'failed' | 'stopped';

export interface DownloadRow {
  id: number;
  swarmId: string;
  filehash: string;
  filename: string;
  filesize: number;
  blockSize: number;
  blockCount: number;
  /** The .kascade JSON as it was added. */
  kascade: string;
  dataPath: string;
  status: DownloadStatus;
  /** Blocks durable on disk as of the last checkpoint. */
  complete: Bitfield;
  /** The data file's size and mtime recorded by the last checkpoint (undefined before the first). */
  dataSize: number | undefined;
  dataMtimeMs: number | undefined;
  /** Device and inode of the data file at the last checkpoint: a copy or a replacement shows as a change. */
  dataDev: number | undefined;
  dataIno: number | undefined;
  bytesFetched: number;
  badBlocks: number;
  error: string | undefined;
  createdAt: number;
  updatedAt: number;
}

/** What a new download is created with; the rest of its row starts empty. */
export type NewDownload = Pick<DownloadRow, 'swarmId' | 'filehash' | 'filename' | 'filesize' | 'blockSize' | 'blockCount' | 'kascade' | 'dataPath'>;

export interface CheckpointBlock {
  idx: number;
  /** The peer (host:port) that supplied the block, or `local` for a re-verified one. */
  peer: string;
  at: number;
}

export interface Checkpoint {
  complete: Bitfield;
  blocks: readonly CheckpointBlock[];
  dataSize: number;
  dataMtimeMs: number;
  dataDev: number;
  dataIno: number;
  bytesFetched: number;
}

export interface PeerRow {
  addr: string;
  source: string;
  bannedAt: number | undefined;
  banReason: string | undefined;
}

interface RawDownload {
  id: number;
  swarm_id: string;
  filehash: string;
  filename: string;
  filesize: number;
  block_size: number;
  block_count: number;
  kascade: string;
  data_path: string;
  status: DownloadStatus;
  complete_bits: Buffer;
  data_size: number | null;
  data_mtime_ms: number | null;
  data_dev: number | null;
  data_ino: number | null;
  bytes_fetched: number;
  bad_blocks: number;
  error: string | null;
  created_at: number;
  updated_at: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS downloads (
  id INTEGER PRIMARY KEY,
  swarm_id TEXT NOT NULL UNIQUE,
  filehash TEXT NOT NULL,
  filename TEXT NOT NULL,
  filesize INTEGER NOT NULL,
  block_size INTEGER NOT NULL,
  block_count INTEGER NOT NULL,
  kascade TEXT NOT NULL,
  data_path TEXT NOT NULL,
  status TEXT NOT NULL,
  complete_bits BLOB NOT NULL,
  data_size INTEGER,
  data_mtime_ms REAL,
  data_dev INTEGER,
  data_ino INTEGER,
  bytes_fetched INTEGER NOT NULL DEFAULT 0,
  bad_blocks INTEGER NOT NULL DEFAULT 0,
  error TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS block_provenance (
  download_id INTEGER NOT NULL REFERENCES downloads(id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  peer TEXT NOT NULL,
  completed_at INTEGER NOT NULL,
  checkpoint_at INTEGER NOT NULL,
  PRIMARY KEY (download_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bad_blocks (
  id INTEGER PRIMARY KEY,
  download_id INTEGER NOT NULL REFERENCES downloads(id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  peer TEXT NOT NULL,
  expected TEXT NOT NULL,
  actual TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS peers (
  download_id INTEGER NOT NULL REFERENCES downloads(id) ON DELETE CASCADE,
  addr TEXT NOT NULL,
  source TEXT NOT NULL,
  banned_at INTEGER,
  ban_reason TEXT,
  PRIMARY KEY (download_id, addr)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS box_paused (
  filehash TEXT PRIMARY KEY,
  paused_at INTEGER NOT NULL
) WITHOUT ROWID;
`;

const CORRUPT_CODES = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_CORRUPT_INDEX', 'SQLITE_CORRUPT_SEQUENCE']);

/** Map a better-sqlite3 error to a KfetchError naming the database file. */
export function fromSqliteError(err: unknown, file: string, what: string): KfetchError {
  if (err instanceof KfetchError) return err;
  const code = (err as { code?: string } | undefined)?.code ?? '';
  const msg = err instanceof Error ? err.message : String(err);
  if (CORRUPT_CODES.has(code)) return new KfetchError('KF_E_STATE_CORRUPT', `${what}: ${msg}`, { file, cause: err });
  if (code.startsWith('SQLITE_READONLY')) {
    return new KfetchError('KF_E_STATE_READONLY', `${what}: ${msg} (${file}); fix its permissions or the file system`, { file, cause: err });
  }
  if (code === 'SQLITE_FULL') return new KfetchError('KF_E_DISK_FULL', `${what}: ${msg}`, { file, cause: err });
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new KfetchError('KF_E_HOME_LOCKED', `${what}: the database is locked by another process`, { file, cause: err });
  }
  return new KfetchError('KF_E_IO', `${what}: ${msg} (${code || 'no code'})`, { file, cause: err });
}

export class StateDb {
  readonly path: string;
  private readonly db: Database.Database;
  /** Called with the seconds each checkpoint transaction took (the seeding box's latency metric). */
  onCheckpointCommitted: ((seconds: number) => void) | undefined;

  private constructor(path: string, db: Database.Database) {
    this.path = path;
    this.db = db;
  }

  /**
   * Open (or create) the database in `home`. A damaged database is moved aside together with its -wal and -shm
   * (timestamped names) and KF_E_STATE_CORRUPT names where it went; nothing is guessed.
   */
  static open(home: string, opts: { readonly?: boolean } = {}): StateDb {
    const path = join(home, STATE_FILE);
    // A database file that already holds pages but no kfetch schema lost what it had (its -wal, say): damaged.
    let existed = false;
    try {
      existed = statSync(path).size > 0;
    } catch {
      // a new home
    }
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
      db.pragma('busy_timeout = 2000');
      if (!opts.readonly) {
        db.pragma('journal_mode = WAL');
        // FULL: a checkpoint that committed survives a power cut, so blocks that were safe are never fetched again.
        db.pragma('synchronous = FULL');
        db.pragma('foreign_keys = ON');
      }
      const check = db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw Object.assign(new Error(`quick_check: ${String(check)}`), { code: 'SQLITE_CORRUPT' });
      if (existed && !hasSchema(db)) {
        throw Object.assign(new Error('it holds no kfetch tables (a lost -wal file, or not a kfetch database)'), { code: 'SQLITE_CORRUPT' });
      }
      if (!opts.readonly) {
        migrate(db);
        checkpointWal(db); // the schema in the main file: from here it alone always knows every download
      }
      return new StateDb(path, db);
    } catch (err) {
      db?.close();
      const e = fromSqliteError(err, path, 'cannot open the state database');
      if (e.code === 'KF_E_STATE_CORRUPT' && !opts.readonly) {
        const aside = moveAside(path);
        throw new KfetchError(
          'KF_E_STATE_CORRUPT',
          `the state database was damaged (${(err as Error).message}); it was moved to ${aside}. ` +
            'Recover with `kfetch get --adopt <kascade>` for each download: the existing data file is re-verified and only its bad or missing blocks are fetched',
          { file: path, detail: { movedTo: aside }, cause: err },
        );
      }
      throw e;
    }
  }

  close(): void {
    if (!this.db.open) return;
    // A clean stop leaves everything in the main file (closing the last connection checkpoints too; this says so).
    if (!this.db.readonly) {
      try {
        checkpointWal(this.db);
      } catch {
        // closing still checkpoints what it can; an error here must not hide the caller's own
      }
    }
    this.db.close();
  }

  /** Run `fn` in one transaction; SQLite errors become KfetchErrors naming the database. */
  private tx<T>(what: string, fn: () => T): T {
    try {
      return this.db.transaction(fn)();
    } catch (err) {
      throw fromSqliteError(err, this.path, what);
    }
  }

  addDownload(d: NewDownload): DownloadRow {
    const now = Date.now();
    const id = this.tx('cannot add the download', () => {
      const r = this.db
        .prepare(
          `INSERT INTO downloads (swarm_id, filehash, filename, filesize, block_size, block_count, kascade, data_path,
             status, complete_bits, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'downloading', ?, ?, ?)`,
        )
        .run(d.swarmId, d.filehash, d.filename, d.filesize, d.blockSize, d.blockCount, d.kascade, d.dataPath,
          Buffer.from(new Bitfield(d.blockCount).toBytes()), now, now);
      return Number(r.lastInsertRowid);
    });
    // The new row into the main file at once: a crash that also loses the -wal must not forget the download.
    this.checkpointWal('cannot checkpoint the new download');
    return this.getDownload(id)!;
  }

  /** Copy the WAL into the main database file (after a new download, at completion, at a clean stop). */
  private checkpointWal(what: string): void {
    try {
      checkpointWal(this.db);
    } catch (err) {
      throw fromSqliteError(err, this.path, what);
    }
  }

  getDownload(id: number): DownloadRow | undefined {
    const r = this.read('cannot read downloads', () =>
      this.db.prepare('SELECT * FROM downloads WHERE id = ?').get(id) as RawDownload | undefined,
    );
    return r === undefined ? undefined : toRow(r);
  }

  getBySwarmId(swarmId: string): DownloadRow | undefined {
    const r = this.read('cannot read downloads', () =>
      this.db.prepare('SELECT * FROM downloads WHERE swarm_id = ?').get(swarmId) as RawDownload | undefined,
    );
    return r === undefined ? undefined : toRow(r);
  }

  listDownloads(): DownloadRow[] {
    return this.read('cannot read downloads', () =>
      (this.db.prepare('SELECT * FROM downloads ORDER BY id').all() as RawDownload[]).map(toRow),
    );
  }

  /** Downloads matching an id, a filehash/swarm id (or a unique prefix of at least 8 hex digits) or a filename. */
  findDownloads(query: string): DownloadRow[] {
    const all = this.listDownloads();
    const q = query.toLowerCase();
    if (/^\d+$/.test(query)) {
      const byId = all.filter((d) => d.id === Number(query));
      if (byId.length > 0) return byId;
    }
    if (/^[0-9a-f]{8,}$/.test(q)) {
      const byHash = all.filter((d) => d.filehash.startsWith(q) || d.swarmId.startsWith(q));
      if (byHash.length > 0) return byHash;
    }
    return all.filter((d) => d.filename === query);
  }

  /**
   * Record a checkpoint in one transaction. The caller has fdatasync'ed the data file after every write
   * of `blocks` (the checkpoint rule), so SQLite never claims a block that is not on disk.
   */
  checkpoint(id: number, c: Checkpoint): void {
    const now = Date.now();
    const t0 = performance.now();
    this.tx('cannot record the checkpoint', () => {
      this.db
        .prepare(
          `UPDATE downloads SET complete_bits = ?, data_size = ?, data_mtime_ms = ?, data_dev = ?, data_ino = ?,
             bytes_fetched = ?, updated_at = ?
           WHERE id = ?`,
        )
        .run(Buffer.from(c.complete.toBytes()), c.dataSize, c.dataMtimeMs, c.dataDev, c.dataIno, c.bytesFetched, now, id);
      const ins = this.db.prepare(
        `INSERT INTO block_provenance (download_id, idx, peer, completed_at, checkpoint_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (download_id, idx) DO UPDATE SET peer = excluded.peer, completed_at = excluded.completed_at,
           checkpoint_at = excluded.checkpoint_at`,
      );
      for (const b of c.blocks) ins.run(id, b.idx, b.peer, b.at, now);
    });
    this.onCheckpointCommitted?.((performance.now() - t0) / 1000);
  }

  setStatus(id: number, status: DownloadStatus, error?: string): void {
    this.tx('cannot update the download status', () => {
      this.db
        .prepare('UPDATE downloads SET status = ?, error = ?, updated_at = ? WHERE id = ?')
        .run(status, error ?? null, Date.now(), id);
    });
    if (status === 'complete') this.checkpointWal('cannot checkpoint the completed download');
  }

  /** Evidence of a block whose hash did not match, and the peer that sent it. */
  recordBadBlock(id: number, b: { idx: number; peer: string; expected: string; actual: string }): void {
    this.tx('cannot record a bad block', () => {
      this.db
        .prepare('INSERT INTO bad_blocks (download_id, idx, peer, expected, actual, at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(id, b.idx, b.peer, b.expected, b.actual, Date.now());
      this.db.prepare('UPDATE downloads SET bad_blocks = bad_blocks + 1 WHERE id = ?').run(id);
    });
  }

  badBlocks(id: number): { idx: number; peer: string; expected: string; actual: string; at: number }[] {
    return this.read('cannot read bad blocks', () =>
      this.db
        .prepare('SELECT idx, peer, expected, actual, at FROM bad_blocks WHERE download_id = ? ORDER BY id')
        .all(id) as { idx: number; peer: string; expected: string; actual: string; at: number }[],
    );
  }

  /** Provenance of checkpointed blocks: which peer supplied each and when it was checkpointed. */
  provenance(id: number): { idx: number; peer: string; completedAt: number; checkpointAt: number }[] {
    return this.read('cannot read provenance', () =>
      (
        this.db
          .prepare('SELECT idx, peer, completed_at, checkpoint_at FROM block_provenance WHERE download_id = ? ORDER BY idx')
          .all(id) as { idx: number; peer: string; completed_at: number; checkpoint_at: number }[]
      ).map((r) => ({ idx: r.idx, peer: r.peer, completedAt: r.completed_at, checkpointAt: r.checkpoint_at })),
    );
  }

  /** Remember peers for later resumes (one transaction for the lot). */
  rememberPeers(id: number, peers: readonly { addr: string; source: string }[]): void {
    if (peers.length === 0) return;
    this.tx('cannot remember peers', () => {
      const ins = this.db.prepare('INSERT INTO peers (download_id, addr, source) VALUES (?, ?, ?) ON CONFLICT DO NOTHING');
      for (const p of peers) ins.run(id, p.addr, p.source);
    });
  }

  banPeer(id: number, addr: string, reason: string): void {
    this.tx('cannot record a ban', () => {
      this.db
        .prepare(
          `INSERT INTO peers (download_id, addr, source, banned_at, ban_reason) VALUES (?, ?, 'swarm', ?, ?)
           ON CONFLICT (download_id, addr) DO UPDATE SET banned_at = excluded.banned_at, ban_reason = excluded.ban_reason`,
        )
        .run(id, addr, Date.now(), reason);
    });
  }

  peers(id: number): PeerRow[] {
    return this.read('cannot read peers', () =>
      (
        this.db.prepare('SELECT addr, source, banned_at, ban_reason FROM peers WHERE download_id = ? ORDER BY addr').all(id) as {
          addr: string;
          source: string;
          banned_at: number | null;
          ban_reason: string | null;
        }[]
      ).map((r) => ({ addr: r.addr, source: r.source, bannedAt: r.banned_at ?? undefined, banReason: r.ban_reason ?? undefined })),
    );
  }

  /** Filehashes the seeding box keeps paused (across restarts). */
  pausedFilehashes(): Set<string> {
    return this.read('cannot read the paused kascades', () => {
      const rows = this.db.prepare('SELECT filehash FROM box_paused').all() as { filehash: string }[];
      return new Set(rows.map((r) => r.filehash));
    });
  }

  setPaused(filehash: string, paused: boolean): void {
    this.tx('cannot record the pause', () => {
      if (paused) this.db.prepare('INSERT OR REPLACE INTO box_paused (filehash, paused_at) VALUES (?, ?)').run(filehash, Date.now());
      else this.db.prepare('DELETE FROM box_paused WHERE filehash = ?').run(filehash);
    });
  }

  removeDownload(id: number): void {
    this.tx('cannot remove the download', () => {
      this.db.prepare('DELETE FROM downloads WHERE id = ?').run(id);
    });
  }

  private read<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw fromSqliteError(err, this.path, what);
    }
  }
}

/** Whether kfetch's schema is there (its downloads table). */
function hasSchema(db: Database.Database): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'downloads'").get() !== undefined;
}

/** Move the WAL's pages into the main file (TRUNCATE: the -wal is emptied, so losing it loses nothing). */
function checkpointWal(db: Database.Database): void {
  db.pragma('wal_checkpoint(TRUNCATE)');
}

function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new KfetchError('KF_E_IO', `the state database has schema ${version}, newer than this kfetch (${SCHEMA_VERSION})`);
  }
  if (version < SCHEMA_VERSION) db.exec(SCHEMA);
  // Always written (the same value when current): a database that cannot be written fails here, at open, with
  // KF_E_STATE_READONLY, not at the first checkpoint of a download.
  db.pragma(`user_version = ${SCHEMA_VERSION}`);
}

function toRow(r: RawDownload): DownloadRow {
  return {
    id: r.id,
    swarmId: r.swarm_id,
    filehash: r.filehash,
    filename: r.filename,
    filesize: r.filesize,
    blockSize: r.block_size,
    blockCount: r.block_count,
    kascade: r.kascade,
    dataPath: r.data_path,
    status: r.status,
    complete: new Bitfield(r.block_count, new Uint8Array(r.complete_bits)),
    dataSize: r.data_size ?? undefined,
    dataMtimeMs: r.data_mtime_ms ?? undefined,
    dataDev: r.data_dev ?? undefined,
    dataIno: r.data_ino ?? undefined,
    bytesFetched: r.bytes_fetched,
    badBlocks: r.bad_blocks,
    error: r.error ?? undefined,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Move the database and its -wal/-shm aside to `<name>.corrupt-<timestamp>`; returns the new database path. */
function moveAside(path: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const aside = `${path}.corrupt-${stamp}`;
  for (const suffix of ['', '-wal', '-shm']) {
    if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix);
  }
  return aside;
}
