// The write batcher (issue 11): runs submitted while every worker is busy go out together in one worker task, each
// run still gets its own outcome, and with a worker free the runs of one event-loop turn go out together at the
// turn's end (issue 14: the pipelined peer-wire replies of one turn's reads share a task). The real hashing pool
// (built workers) writing a real temp file.

import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { VerifyWriteBatchResult } from '../../workers/block-write.js';
import { WriteBatcher, type WriteRun } from '../../src/client/write-batcher.js';
import { createHashPool } from '../../src/hashing/pool.js';
import { testScope } from '../helpers/test-scope.js';

const scope = testScope();
const pool = createHashPool({ threads: 1 });
afterAll(() => pool.destroy());

const BLOCK = 4096;
const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');

describe('write batcher', () => {
  it('sends runs that wait for a busy worker in one task, and gives each run its own outcome', async () => {
    const path = join(scope.dir('kfetch-batcher-'), 'f.bin');
    const n = 10;
    writeFileSync(path, Buffer.alloc(n * BLOCK));
    const fd = openSync(path, 'r+');
    try {
      const shared = new SharedArrayBuffer(n * BLOCK);
      const mem = Buffer.from(shared);
      for (let i = 0; i < n; i++) mem.fill(i + 1, i * BLOCK, (i + 1) * BLOCK);
      const tasks: VerifyWriteBatchResult[] = [];
      const b = new WriteBatcher({ pool, fd, mtimeSec: 1_600_000_000, maxTasks: 1, maxTaskBytes: 6 * BLOCK, onTask: (r) => tasks.push(r) });
      const run = (i: number, bad = false): WriteRun => ({
        shared,
        byteOffset: i * BLOCK,
        blocks: [{ offset: i * BLOCK, length: BLOCK, expectedMd5: bad ? md5(Buffer.from('no')) : md5(mem.subarray(i * BLOCK, (i + 1) * BLOCK)) }],
      });
      // The first alone (it goes out at the end of its turn), then the rest in one later turn while it runs: they
      // wait for the one worker and go out six blocks' worth at a time.
      const first = b.submit(run(0));
      await new Promise<void>((resolve) => setImmediate(resolve));
      const outcomes = await Promise.all([first, ...[...Array(n - 1).keys()].map((k) => b.submit(run(k + 1, k + 1 === 4)))]);
      expect(tasks.map((t) => t.runs.length)).toEqual([1, 6, 3]);
      outcomes.forEach((o, i) => expect(o.blocks[0]!.status).toBe(i === 4 ? 'bad' : 'written'));
      const disk = readFileSync(path);
      for (let i = 0; i < n; i++) expect(disk[i * BLOCK]).toBe(i === 4 ? 0 : i + 1);
      // Nothing waiting: a run goes out on its own, at once.
      expect((await b.submit(run(0))).blocks).toEqual([{ status: 'written' }]);
      expect(tasks.at(-1)!.runs.length).toBe(1);
    } finally {
      closeSync(fd);
    }
  });

  it('issue 14: runs submitted in one event-loop turn with a worker free share one task (not one task each)', async () => {
    const path = join(scope.dir('kfetch-batcher-'), 'f.bin');
    const n = 8;
    writeFileSync(path, Buffer.alloc(n * BLOCK));
    const fd = openSync(path, 'r+');
    try {
      const shared = new SharedArrayBuffer(n * BLOCK);
      const mem = Buffer.from(shared);
      for (let i = 0; i < n; i++) mem.fill(0x40 + i, i * BLOCK, (i + 1) * BLOCK);
      const tasks: VerifyWriteBatchResult[] = [];
      // Two tasks may be in flight and the pool is idle: without the end-of-turn gathering, the first two runs
      // would each go out alone.
      const b = new WriteBatcher({ pool, fd, mtimeSec: 1_600_000_000, maxTasks: 2, maxTaskBytes: n * BLOCK, onTask: (r) => tasks.push(r) });
      const outcomes = await Promise.all(
        [...Array(n).keys()].map((i) =>
          b.submit({ shared, byteOffset: i * BLOCK, blocks: [{ offset: i * BLOCK, length: BLOCK, expectedMd5: md5(mem.subarray(i * BLOCK, (i + 1) * BLOCK)) }] }),
        ),
      );
      expect(tasks.map((t) => t.runs.length)).toEqual([n]);
      for (const o of outcomes) expect(o.blocks).toEqual([{ status: 'written' }]);
      expect(readFileSync(path).equals(mem)).toBe(true);
    } finally {
      closeSync(fd);
    }
  });
});
