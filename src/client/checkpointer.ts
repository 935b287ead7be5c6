// The checkpoint rule (DESIGN.md): blocks written since the last checkpoint become *complete* only after an
// fdatasync of the data file that follows their writes, recorded in one SQLite transaction, every N blocks or T ms.

import type { DataFile } from '../store/data-file.js';
import type { CheckpointBlock, StateDb } from '../store/state-db.js';
import type { Bitfield } from '../util/bitfield.js';
import { crashPoint } from './crash-point.js';

export interface CheckpointerOptions {
  db: StateDb;
  downloadId: number;
  dataFile: DataFile;
  /** Durable blocks; the checkpointer sets bits here only after sync + commit. */
  durable: Bitfield;
  /** The mtime workers keep on the data file (DataFile writes restore it), recorded with each checkpoint. */
  mtimeMs: number;
  everyBlocks: number;
  everyMs: number;
  /** Total bytes received so far, recorded with each checkpoint. */
  bytesFetched: () => number;
  onCheckpoint?: (blocks: readonly CheckpointBlock[], ms: number) => void;
  onError?: (err: unknown) => void;
  /** Runs the commit (default: calls it): the session times it for its CPU account. */
  timeCommit?: <T>(commit: () => T) => T;
}

/** What a checkpoint records about the data file (the mtime is the fixed one kfetch keeps on it). */
export function dataFileFacts(dataFile: DataFile, mtimeMs: number): { dataSize: number; dataMtimeMs: number; dataDev: number; dataIno: number } {
  const st = dataFile.stat();
  return { dataSize: st.size, dataMtimeMs: mtimeMs, dataDev: st.dev, dataIno: st.ino };
}

export class Checkpointer {
  private pending: CheckpointBlock[] = [];
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly o: CheckpointerOptions;
  /** Milliseconds the last checkpoint took (sync + commit). */
  lastMs = 0;
  /**
   * Set when fdatasync failed. Linux may mark the failed pages clean, so a later fdatasync on the same fd can
   * succeed without the data being on disk: nothing written before the failure may ever be recorded.
   */
  private broken: unknown;

  constructor(o: CheckpointerOptions) {
    this.o = o;
  }

  start(): void {
    this.timer = setInterval(() => {
      if (this.pending.length > 0) this.flush().catch((err: unknown) => this.o.onError?.(err));
    }, this.o.everyMs);
    this.timer.unref();
  }

  /** Blocks written (verified, on the page cache) but not yet durable. */
  get pendingCount(): number {
    return this.pending.length;
  }

  /** A block's write finished; it becomes complete at the next checkpoint. */
  written(idx: number, peer: string): void {
    this.pending.push({ idx, peer, at: Date.now() });
    if (this.pending.length >= this.o.everyBlocks) this.flush().catch((err: unknown) => this.o.onError?.(err));
  }

  /** Make everything written so far durable and recorded. Concurrent calls queue behind each other. */
  async flush(): Promise<void> {
    while (this.running !== undefined) await this.running.catch(() => undefined);
    if (this.broken !== undefined) throw this.broken;
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.running = this.commit(batch);
    try {
      await this.running;
    } catch (err) {
      // Not recorded. After a failed sync the batch is dropped for good (see `broken`); after a failed commit the
      // data is on disk, so the blocks go back for a later checkpoint.
      if (this.broken === undefined) this.pending = batch.concat(this.pending);
      throw err;
    } finally {
      this.running = undefined;
    }
  }

  private async commit(batch: CheckpointBlock[]): Promise<void> {
    const t0 = performance.now();
    crashPoint('after-write-before-fsync');
    try {
      await this.o.dataFile.sync();
    } catch (err) {
      this.broken = err;
      this.pending = [];
      throw err;
    }
    crashPoint('after-fsync-before-commit');
    for (const b of batch) this.o.durable.set(b.idx);
    try {
      const record = (): void =>
        this.o.db.checkpoint(this.o.downloadId, {
          complete: this.o.durable,
          blocks: batch,
          ...dataFileFacts(this.o.dataFile, this.o.mtimeMs),
          bytesFetched: this.o.bytesFetched(),
        });
      if (this.o.timeCommit === undefined) record();
      else this.o.timeCommit(record);
    } catch (err) {
      for (const b of batch) this.o.durable.set(b.idx, false);
      throw err;
    }
    crashPoint('after-commit');
    this.lastMs = performance.now() - t0;
    this.o.onCheckpoint?.(batch, this.lastMs);
  }

  /** Stop the timer and make a final checkpoint. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
