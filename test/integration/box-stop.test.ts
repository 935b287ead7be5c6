// Issue 10 point 7: SIGTERM or SIGINT while box downloads are queued, running or verifying. Every stop path must
// settle: exit 0 (not 13, Node's "unsettled top-level await", which p-queue's clear() caused by dropping queued
// tasks unsettled), the clean close runs (the database closed, the home lock released), and box.json is removed.

import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { BLOCK, boxPayload, boxWorld, startBox, waitBoxStatus, type BoxWorld } from '../helpers/box-world.js';
import { kascadeJsonFor, writeKascade } from '../helpers/make-file.js';
import { testScope } from '../helpers/test-scope.js';

const scope = testScope();

/** After the box exited: no box.json, no -wal left (SQLite removes it on the last clean close), the home free. */
async function expectCleanClose(w: BoxWorld, stderr: string): Promise<void> {
  expect(existsSync(join(w.home, 'box.json'))).toBe(false);
  expect(existsSync(join(w.home, 'state.sqlite-wal'))).toBe(false);
  expect(stderr).toMatch(/box: stopped/);
  expect(stderr).not.toMatch(/stop deadline reached/); // everything settled: nothing was left behind unsettled
  const st = await runCli(['status'], { home: w.home });
  expect(st.code).toBe(0);
  expect(st.stdout).not.toMatch(/^box: running/m);
}

/** Kascades no peer can serve (no peers listed, a tracker on a closed port): they wait in the download queue. */
function unservable(w: BoxWorld, names: string[]): void {
  for (const n of names) writeKascade(join(w.watch, `${n}.kascade`), boxPayload(`${n}.bin`, n).k);
}

describe('issue 10 point 7: the box stops cleanly whatever its downloads are doing', () => {
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    it(`${sig} with one download running and two queued: exit 0, database closed, box.json removed`, async () => {
      const w = boxWorld(scope);
      unservable(w, ['a', 'b', 'c']);
      const box = await startBox(w, ['--max-downloads', '1']);
      await waitBoxStatus(box.url, (s) => s.kascades.downloading === 1 && s.kascades.queued === 2, 'one downloading, two queued');
      expect(existsSync(join(w.home, 'box.json'))).toBe(true);
      box.run.child.kill(sig);
      expect(await box.run.exited(15_000)).toBe(0);
      await expectCleanClose(w, box.run.stderr());
    });
  }

  it('SIGTERM while data files are being verified (one verifying, the rest waiting to): exit 0, clean close', async () => {
    const w = boxWorld(scope);
    // Large data files (zeros, cheap to make) so verification is still running when the signal lands.
    const size = 512 * BLOCK;
    for (let i = 0; i < 4; i++) {
      const bytes = Buffer.alloc(size);
      bytes[0] = i + 1;
      writeFileSync(join(w.data, `v${i}.bin`), bytes);
      writeKascade(join(w.watch, `v${i}.kascade`), kascadeJsonFor(bytes, { filename: `v${i}.bin`, tracker: 'http://127.0.0.1:9', blockSizes: [BLOCK] }));
    }
    const box = await startBox(w, ['--threads', '1']);
    await waitBoxStatus(box.url, (s) => (s.kascades.verifying ?? 0) >= 2, 'verifying');
    box.run.child.kill('SIGTERM');
    expect(await box.run.exited(15_000)).toBe(0);
    await expectCleanClose(w, box.run.stderr());
  });
});
