// Invariant (DESIGN.md): SQLite never marks a block complete before the data file was synced after that block's
// write. The checkpointer runs against a real StateDb (a SQLite file in a temp dir) and a real data file whose
// sync() is wrapped to record the order of events and to fail on demand (DataFile is the checkpointer's own
// dependency, so this is a seam, not a mock of our module). Checked red by deleting the `sync()` call and by moving
// the `db.checkpoint(...)` before it (issue 10).

import { writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Checkpointer, dataFileFacts, type CheckpointerOptions } from '../../src/client/checkpointer.js';
import { KfetchError } from '../../src/errors.js';
import { createDataFile, type DataFile } from '../../src/store/data-file.js';
import { StateDb } from '../../src/store/state-db.js';
import { Bitfield } from '../../src/util/bitfield.js';
import { testScope } from '../helpers/test-scope.js';
import { until } from '../helpers/wait.js';

const scope = testScope();
const BLOCK = 4096;
const BLOCKS = 4;
const MTIME_MS = 1_700_000_000_000;

afterEach(() => {
  vi.useRealTimers();
});

/** What a test observes, in order: each block write, and each sync's start (with what SQLite claims then) and end. */
type Event = { kind: 'write'; idx: number } | { kind: 'sync-start'; recorded: number[]; durable: number[] } | { kind: 'sync-end' };

interface World {
  db: StateDb;
  downloadId: number;
  file: DataFile;
  durable: Bitfield;
  events: Event[];
  /** The next sync fails with this error (then syncs work again). */
  failNextSync: (err: Error) => void;
  /** The next sync waits until the returned function is called. */
  holdNextSync: () => () => void;
  syncs: () => number;
  write: (idx: number) => void;
  recorded: () => number[];
  checkpointer: (o?: Partial<CheckpointerOptions>) => Checkpointer;
}

function held(b: Bitfield): number[] {
  const out: number[] = [];
  for (let i = 0; i < b.length; i++) if (b.has(i)) out.push(i);
  return out;
}

function world(): World {
  const dir = scope.dir('kfetch-checkpointer-');
  const db = StateDb.open(dir);
  const dataPath = join(dir, 'f.bin');
  const row = db.addDownload({
    swarmId: 'a'.repeat(64),
    filehash: 'a'.repeat(64),
    filename: 'f.bin',
    filesize: BLOCK * BLOCKS,
    blockSize: BLOCK,
    blockCount: BLOCKS,
    kascade: '{}',
    dataPath,
  });
  const real = createDataFile(dataPath, BLOCK * BLOCKS);
  scope.keep({ close: async () => { real.close(); db.close(); } });
  const durable = new Bitfield(BLOCKS);
  const events: Event[] = [];
  let failure: Error | undefined;
  let hold: Promise<void> | undefined;
  let syncs = 0;
  const recorded = (): number[] => held(db.getDownload(row.id)!.complete);
  const file: DataFile = {
    ...real,
    async sync(): Promise<void> {
      syncs++;
      events.push({ kind: 'sync-start', recorded: recorded(), durable: held(durable) });
      const wait = hold;
      hold = undefined;
      if (wait !== undefined) await wait;
      const err = failure;
      failure = undefined;
      if (err !== undefined) throw err;
      await real.sync();
      events.push({ kind: 'sync-end' });
    },
  };
  return {
    db,
    downloadId: row.id,
    file,
    durable,
    events,
    failNextSync: (err) => {
      failure = err;
    },
    holdNextSync: () => {
      let release!: () => void;
      hold = new Promise<void>((r) => (release = r));
      return release;
    },
    syncs: () => syncs,
    write: (idx) => {
      writeSync(real.fd, Buffer.alloc(BLOCK, idx + 1), 0, BLOCK, idx * BLOCK);
      events.push({ kind: 'write', idx });
    },
    recorded,
    checkpointer: (o = {}) =>
      new Checkpointer({
        db,
        downloadId: row.id,
        dataFile: file,
        durable,
        mtimeMs: MTIME_MS,
        everyBlocks: 1000,
        everyMs: 60_000,
        bytesFetched: () => 12_345,
        ...o,
      }),
  };
}

/** Every block SQLite claims has a completed sync after its last write (the checkpoint rule, read off the log). */
function expectSyncedAfterWrite(w: World): void {
  for (const idx of w.recorded()) {
    const lastWrite = w.events.findLastIndex((e) => e.kind === 'write' && e.idx === idx);
    expect(lastWrite, `block ${idx} was recorded without being written`).toBeGreaterThanOrEqual(0);
    const syncEnd = w.events.findIndex((e, i) => i > lastWrite && e.kind === 'sync-end');
    expect(syncEnd, `block ${idx} was recorded with no sync after its write`).toBeGreaterThan(lastWrite);
  }
}

describe('checkpointer: fdatasync, then one SQLite transaction', () => {
  it('records no block complete before the sync that follows its write', async () => {
    const w = world();
    const cp = w.checkpointer();
    w.write(0);
    cp.written(0, '127.0.0.1:1');
    w.write(2);
    cp.written(2, '127.0.0.1:2');
    expect(w.recorded()).toEqual([]);
    await cp.flush();
    // The sync ran with nothing claimed yet, neither in SQLite nor in the bitfield the block server serves from.
    expect(w.events).toEqual([
      { kind: 'write', idx: 0 },
      { kind: 'write', idx: 2 },
      { kind: 'sync-start', recorded: [], durable: [] },
      { kind: 'sync-end' },
    ]);
    expect(w.recorded()).toEqual([0, 2]);
    expect(held(w.durable)).toEqual([0, 2]);
    expectSyncedAfterWrite(w);

    w.write(1);
    cp.written(1, '127.0.0.1:1');
    await cp.flush();
    expect(w.events.slice(4)).toEqual([{ kind: 'write', idx: 1 }, { kind: 'sync-start', recorded: [0, 2], durable: [0, 2] }, { kind: 'sync-end' }]);
    expect(w.recorded()).toEqual([0, 1, 2]);
    expectSyncedAfterWrite(w);
  });

  it('leaves a block written while a sync runs to the next checkpoint (that sync may not cover its write)', async () => {
    const w = world();
    const cp = w.checkpointer();
    w.write(0);
    cp.written(0, 'p');
    const release = w.holdNextSync();
    const first = cp.flush();
    await until(() => w.syncs() === 1);
    w.write(1);
    cp.written(1, 'p');
    const second = cp.flush(); // queues behind the running one
    release();
    await first;
    await second;
    expect(w.syncs()).toBe(2);
    expect(w.events.map((e) => e.kind)).toEqual(['write', 'sync-start', 'write', 'sync-end', 'sync-start', 'sync-end']);
    expect(w.events[4]).toEqual({ kind: 'sync-start', recorded: [0], durable: [0] });
    expect(w.recorded()).toEqual([0, 1]);
    expectSyncedAfterWrite(w);
  });

  it('records what a checkpoint says about the file and who sent each block', async () => {
    const w = world();
    const seen: { idx: number; peer: string }[][] = [];
    const cp = w.checkpointer({ onCheckpoint: (blocks, ms) => {
      expect(ms).toBeGreaterThanOrEqual(0);
      seen.push(blocks.map((b) => ({ idx: b.idx, peer: b.peer })));
    } });
    w.write(3);
    const before = Date.now();
    cp.written(3, '127.0.0.1:7');
    const t0 = performance.now();
    await cp.flush();
    const took = performance.now() - t0;
    const row = w.db.getDownload(w.downloadId)!;
    const facts = dataFileFacts(w.file, MTIME_MS);
    expect({ size: row.dataSize, mtime: row.dataMtimeMs, dev: row.dataDev, ino: row.dataIno }).toEqual({
      size: BLOCK * BLOCKS,
      mtime: MTIME_MS,
      dev: facts.dataDev,
      ino: facts.dataIno,
    });
    expect(facts.dataSize).toBe(BLOCK * BLOCKS);
    expect(row.bytesFetched).toBe(12_345);
    const prov = w.db.provenance(w.downloadId);
    expect(prov.map((p) => [p.idx, p.peer])).toEqual([[3, '127.0.0.1:7']]);
    expect(prov[0]!.completedAt).toBeGreaterThanOrEqual(before);
    expect(prov[0]!.completedAt).toBeLessThanOrEqual(Date.now());
    expect(seen).toEqual([[{ idx: 3, peer: '127.0.0.1:7' }]]);
    expect(cp.lastMs).toBeGreaterThanOrEqual(0);
    expect(cp.lastMs).toBeLessThanOrEqual(took);
    expect(cp.pendingCount).toBe(0);
  });

  it('does nothing when nothing was written since the last checkpoint', async () => {
    const w = world();
    const cp = w.checkpointer();
    await cp.flush();
    await cp.stop();
    expect(w.syncs()).toBe(0);
  });

  it('records nothing when the sync fails, surfaces the error, and never records those writes later', async () => {
    const w = world();
    const errors: unknown[] = [];
    const cp = w.checkpointer({ everyBlocks: 2, onError: (e) => errors.push(e) });
    const eio = new KfetchError('KF_E_IO', 'fdatasync failed: EIO', { file: w.file.path });
    w.failNextSync(eio);
    w.write(0);
    cp.written(0, 'p');
    w.write(1);
    cp.written(1, 'p'); // the second block reaches everyBlocks: a checkpoint starts and its sync fails
    await until(() => errors.length === 1);
    expect(errors[0]).toBe(eio);
    expect(w.recorded()).toEqual([]);
    expect(held(w.durable)).toEqual([]);
    expect(cp.pendingCount).toBe(0);
    // Linux may have dropped the failed pages: a later sync that succeeds proves nothing about them.
    w.write(2);
    cp.written(2, 'p');
    await expect(cp.flush()).rejects.toBe(eio);
    await expect(cp.stop()).rejects.toBe(eio);
    expect(w.syncs()).toBe(1);
    expect(w.recorded()).toEqual([]);
    expect(held(w.durable)).toEqual([]);
  });

  it('puts the blocks back and clears their durable bits when the transaction fails', async () => {
    const w = world();
    // A download id with no row: the provenance insert breaks its foreign key, so the real transaction fails.
    const cp = w.checkpointer({ downloadId: w.downloadId + 100 });
    w.write(0);
    cp.written(0, 'p');
    w.write(1);
    cp.written(1, 'p');
    const err: unknown = await cp.flush().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KfetchError);
    expect(held(w.durable)).toEqual([]);
    expect(cp.pendingCount).toBe(2);
    w.write(2);
    cp.written(2, 'p');
    expect(cp.pendingCount).toBe(3);
    // The data was synced, so the checkpointer is not broken: the next flush syncs and tries again.
    await expect(cp.flush()).rejects.toBeInstanceOf(KfetchError);
    expect(w.syncs()).toBe(2);
    expect(cp.pendingCount).toBe(3);
  });

  it('checkpoints every N blocks without being asked', async () => {
    const w = world();
    const done: number[][] = [];
    const cp = w.checkpointer({ everyBlocks: 2, onCheckpoint: (b) => done.push(b.map((x) => x.idx)) });
    w.write(0);
    cp.written(0, 'p');
    expect(cp.pendingCount).toBe(1);
    expect(w.syncs()).toBe(0);
    w.write(1);
    cp.written(1, 'p');
    await until(() => done.length === 1);
    expect(done).toEqual([[0, 1]]);
    expect(w.recorded()).toEqual([0, 1]);
    expectSyncedAfterWrite(w);
  });

  it('checkpoints every T ms while blocks are pending, and stop() makes the last one', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const w = world();
    const done: number[][] = [];
    const cp = w.checkpointer({ everyMs: 50, onCheckpoint: (b) => done.push(b.map((x) => x.idx)) });
    cp.start();
    vi.advanceTimersByTime(200);
    expect(w.syncs()).toBe(0); // nothing pending: no empty checkpoints
    w.write(0);
    cp.written(0, 'p');
    vi.advanceTimersByTime(49);
    expect(w.syncs()).toBe(0);
    vi.advanceTimersByTime(1);
    await until(() => done.length === 1);
    expect(w.recorded()).toEqual([0]);
    w.write(1);
    cp.written(1, 'p');
    await cp.stop();
    expect(done).toEqual([[0], [1]]);
    expect(w.recorded()).toEqual([0, 1]);
    vi.advanceTimersByTime(500); // the timer is gone
    w.write(2);
    cp.written(2, 'p');
    vi.advanceTimersByTime(500);
    expect(w.syncs()).toBe(2);
    expectSyncedAfterWrite(w);
  });

  it('surfaces a failed sync of a timed checkpoint, once, and then no empty ones', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const w = world();
    const errors: unknown[] = [];
    const cp = w.checkpointer({ everyMs: 50, onError: (e) => errors.push(e) });
    cp.start();
    const eio = new KfetchError('KF_E_IO', 'fdatasync failed: EIO', { file: w.file.path });
    w.failNextSync(eio);
    w.write(0);
    cp.written(0, 'p');
    vi.advanceTimersByTime(50);
    await until(() => errors.length === 1);
    expect(errors[0]).toBe(eio);
    vi.advanceTimersByTime(500); // nothing pending: the broken checkpointer is not asked again
    await new Promise((r) => setImmediate(r));
    expect(errors).toHaveLength(1);
    expect(w.recorded()).toEqual([]);
    await expect(cp.stop()).rejects.toBe(eio);
  });

  it('a failed timed checkpoint with no onError is no unhandled rejection', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const w = world();
    const cp = w.checkpointer({ everyMs: 50 });
    cp.start();
    const eio = new KfetchError('KF_E_IO', 'fdatasync failed: EIO', { file: w.file.path });
    w.failNextSync(eio);
    w.write(0);
    cp.written(0, 'p');
    vi.advanceTimersByTime(50);
    await until(() => w.syncs() === 1);
    await expect(cp.stop()).rejects.toBe(eio);
    expect(w.recorded()).toEqual([]);
  });

  it('a failed checkpoint with no onError is still a rejection of the next flush, not an unhandled one', async () => {
    const w = world();
    const cp = w.checkpointer({ everyBlocks: 1 });
    const eio = new KfetchError('KF_E_IO', 'fdatasync failed: EIO', { file: w.file.path });
    w.failNextSync(eio);
    w.write(0);
    cp.written(0, 'p');
    await expect(cp.flush()).rejects.toBe(eio);
    expect(w.recorded()).toEqual([]);
  });
});
