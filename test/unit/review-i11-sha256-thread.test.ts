// Review of issue 11's SHA-256 thread (sha256-thread.ts): the running hash lives in the thread, so once that
// thread is gone the hash is gone too. A request after the thread died must fail (the prefix hasher then gives up
// and the final check hashes the whole file), never go to a new thread that starts a new hash from zero.

import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterAll, expect, it } from 'vitest';
import { Sha256Thread } from '../../src/client/sha256-thread.js';
import { until } from '../helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'kfetch-review-sha-'));
const fds: number[] = [];
const threads: Sha256Thread[] = [];
afterAll(async () => {
  for (const t of threads) await t.close();
  for (const fd of fds) closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
});

it('after its thread died, the running hash is lost: later requests fail, no fresh hash is started', async () => {
  const data = randomBytes(64 * 1024);
  writeFileSync(join(dir, 'f'), data);
  const fd = openSync(join(dir, 'f'), 'r');
  fds.push(fd);
  const t = new Sha256Thread(fd);
  threads.push(t);
  expect(await t.hashFile(0, 32 * 1024)).toBe(32 * 1024);
  // The thread dies between two requests (nothing in flight): its half of the hash is gone with it.
  const w = (t as unknown as { worker: Worker }).worker;
  let exited = false;
  w.once('exit', () => void (exited = true));
  await w.terminate();
  await until(() => exited, 10_000, 'the SHA-256 thread gone');
  const rest = await t.hashFile(32 * 1024, 32 * 1024).then(
    (n) => n,
    () => 'rejected' as const,
  );
  const hex = rest === 'rejected' ? 'rejected' : await t.digest().catch(() => 'rejected');
  // Today a new thread hashes the second half alone and digest() gives sha256(data[32K..64K)).
  expect(hex).not.toBe(createHash('sha256').update(data.subarray(32 * 1024)).digest('hex'));
  expect(rest).toBe('rejected');
});
