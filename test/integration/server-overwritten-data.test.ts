// Issue 10 point 1: a data file overwritten in place while it is served (same size, mtime restored with utimes)
// must never be answered with 206 and the new bytes, whichever command serves it: plain `kfetch seed`,
// `kfetch get --seed` after its download, and the seeding box. All three share one re-check after every read
// (store/data-file.ts); the changed file answers 400 "block not held now" and is not served any more.
// Real child processes, real files, honest peers on loopback.

import { closeSync, mkdirSync, openSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startAdversarialPeer } from '../helpers/adversarial-peer.js';
import { startCli } from '../helpers/cli.js';
import { until } from '../helpers/wait.js';
import { kascadeJsonFor, payloadBytes, writeKascade } from '../helpers/make-file.js';
import { testScope } from '../helpers/test-scope.js';

const BLOCK = 16 * 1024;
const SIZE = 8 * BLOCK + 100; // 9 blocks, the last one short
const scope = testScope();

/** Rewrite every byte of `path` in place (same inode, same size) with `bytes`, then put the old times back. */
function overwriteInPlace(path: string, bytes: Buffer): void {
  const before = statSync(path);
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, 0);
  } finally {
    closeSync(fd);
  }
  utimesSync(path, before.atimeMs / 1000, before.mtimeMs / 1000); // exact: whole seconds (see wholeSecondTimes)
  const after = statSync(path);
  expect([after.size, after.mtimeMs, after.ino]).toEqual([before.size, before.mtimeMs, before.ino]);
}

/** Give a file whole-second times, so a test can put them back exactly (a Date or a float loses the nanoseconds). */
function wholeSecondTimes(path: string): void {
  utimesSync(path, 1_700_000_000, 1_700_000_000);
}

async function block(url: string, id: string, i: number): Promise<{ status: number; body: Buffer; text: string }> {
  const first = i * BLOCK;
  const last = Math.min(SIZE, first + BLOCK) - 1;
  const res = await fetch(`${url}/${id}`, { headers: { Range: `bytes=${first}-${last}` } });
  const body = Buffer.from(await res.arrayBuffer());
  // The text only of an error reply: a failing assertion must not print a block of binary bytes.
  return { status: res.status, body, text: res.status === 206 ? `${body.length} bytes` : body.toString('utf8') };
}

/** After the overwrite: no 206 at all (the old bytes are gone too), a 400 "not held now" first, then still no 206. */
async function expectNotServed(url: string, id: string): Promise<void> {
  const r = await block(url, id, 2);
  expect(r.status, r.text).toBe(400);
  expect(r.text).toMatch(/block not held now/);
  for (const i of [2, 0, 8]) expect((await block(url, id, i)).status).not.toBe(206);
}

function world(seed: string): { dir: string; data: string; bytes: Buffer; other: Buffer; k: Record<string, unknown>; id: string } {
  const dir = scope.dir('kfetch-overwrite-');
  const bytes = payloadBytes(0, SIZE, seed);
  const other = payloadBytes(0, SIZE, `${seed}-other`);
  const k = kascadeJsonFor(bytes, { filename: 'p.bin', tracker: 'http://127.0.0.1:9/peers/x.json', blockSizes: [BLOCK] });
  return { dir, data: join(dir, 'p.bin'), bytes, other, k, id: k.filehash as string };
}

describe('a data file overwritten in place while served (issue 10 point 1)', () => {
  it('kfetch seed: 400 "block not held now", never 206 with the new bytes', async () => {
    const w = world('seed');
    writeFileSync(w.data, w.bytes);
    wholeSecondTimes(w.data);
    const kascadePath = writeKascade(join(w.dir, 'p.json'), w.k);
    const run = startCli(['seed', kascadePath, '--data', w.dir, '--port', '0']);
    const url = (await run.waitForLine(/^listening on (http:\/\/\S+)$/, 20_000))[1]!;
    const ok = await block(url, w.id, 2);
    expect(ok.status).toBe(206);
    expect(ok.body.equals(w.bytes.subarray(2 * BLOCK, 3 * BLOCK))).toBe(true);

    overwriteInPlace(w.data, w.other);
    await expectNotServed(url, w.id);
    expect(run.stderr()).toMatch(/data file changed/);
  });

  it('kfetch get --seed: after the download, the same', async () => {
    const w = world('get');
    const peer = scope.keep(await startAdversarialPeer({ bytes: w.bytes, id: w.id, blockSize: BLOCK, mode: () => 'honest' }));
    const kascadePath = writeKascade(join(w.dir, 'p.json'), w.k);
    const out = join(w.dir, 'out');
    const run = startCli(['get', kascadePath, '--out', out, '--peer', peer.addr, '--json', '--seed', '--port', '0']);
    const url = (await run.waitForLine(/"event":"serving","url":"([^"]+)"/))[1]!;
    await run.waitForLine(/"event":"done"/, 30_000);
    expect((await block(url, w.id, 2)).status).toBe(206);

    overwriteInPlace(join(out, 'p.bin'), w.other);
    await expectNotServed(url, w.id);
  });

  it('the seeding box: the same (its after-read check sees the change, not only its scrub)', async () => {
    const w = world('box');
    const watch = join(w.dir, 'watch');
    const data = join(w.dir, 'data');
    mkdirSync(watch);
    mkdirSync(data);
    writeFileSync(join(data, 'p.bin'), w.bytes); // the box adopts it and gives it kfetch's whole-second mtime
    writeKascade(join(watch, 'p.kascade'), w.k);
    const run = startCli(['seed', '--watch', watch, '--data', data, '--port', '0', '--scrub-interval', '0']);
    const url = (await run.waitForLine(/^listening on (http:\/\/\S+)/))[1]!;
    const deadline = Date.now() + 20_000;
    let r = await block(url, w.id, 2);
    while (r.status !== 206 && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 100));
      r = await block(url, w.id, 2);
    }
    expect(r.status).toBe(206);

    overwriteInPlace(join(data, 'p.bin'), w.other);
    const after = await block(url, w.id, 2);
    expect(after.status, after.text).toBe(400);
    expect(after.text).toMatch(/block not held now/);
    // The box logs why after it has answered (the response does not wait for the log line).
    await until(() => /data file changed while seeding/.test(run.stderr()), 10_000, 'the box to log the changed data file');
  });
});
