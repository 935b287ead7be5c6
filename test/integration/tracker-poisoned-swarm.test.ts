// Issue 10 point 11 end to end: `kfetch get` with a live seeder in a swarm poisoned with huge bitfields finishes.
// - Real tracker (`kfetch tracker`): two attackers announce maximal bitfields first (they set the swarm's geometry);
//   every reply stays within the tracker's budget, below the client's cap (before: each reply carried 2 MiB of
//   bitfields and every announce failed with KF_E_TRACKER_RESPONSE).
// - Adversarial tracker: a 3 MiB reply, oversized entries around the seeder's; the client keeps the seeder.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { LIMITS } from '../../src/limits.js';
import { VERSION } from '../../src/version.js';
import { startAdversarialTracker } from '../helpers/adversarial-tracker.js';
import { runCli, startCli } from '../helpers/cli.js';
import { kascadeJsonFor, payloadBytes, writeKascade } from '../helpers/make-file.js';
import { testScope } from '../helpers/test-scope.js';
import { trackerStoreArgs } from '../helpers/tracker-store.js';

const BLOCK = 4096;
const scope = testScope();
const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/** A payload, its .kascade announcing to `tracker(filehash)`, and a data dir holding it. */
function payload(dir: string, tracker: (filehash: string) => string) {
  const bytes = payloadBytes(0, 48 * BLOCK - 100, 'poisoned-swarm');
  const k = kascadeJsonFor(bytes, { filename: 'payload.bin', tracker: 'http://127.0.0.1:1/', blockSizes: [BLOCK] });
  const filehash = k.filehash as string;
  k.tracker = tracker(filehash);
  const kascadePath = writeKascade(join(dir, 'payload.json'), k);
  const data = join(dir, 'data');
  mkdirSync(data);
  writeFileSync(join(data, 'payload.bin'), bytes);
  return { kascadePath, filehash, data };
}

async function seed(kascadePath: string, data: string): Promise<number> {
  const run = startCli(['seed', kascadePath, '--data', data, '--port', '0', '--trust']);
  return Number(new URL((await run.waitForLine(/^listening on (http:\/\/\S+)$/))[1]!).port);
}

it('issue 10 point 11: a swarm poisoned with maximal bitfields on kfetch tracker still serves `kfetch get`', async () => {
  const dir = scope.dir('kfetch-poison-');
  const t = startCli(['tracker', '--port', '0', ...trackerStoreArgs(), '--min-interval', '1']);
  const base = (await t.waitForLine(/^listening on (http:\/\/\S+)$/))[1]!;
  const { kascadePath, filehash, data } = payload(dir, (h) => `${base}/peers/${h}.json`);
  const url = `${base}/peers/${filehash}.json`;
  // The longest bitfield an announce may carry (2^22 blocks at 512 bytes: 1 MiB of hex), twice.
  for (const port of ['9001', '9002']) {
    const r = await fetch(url, {
      method: 'POST',
      headers: { 'user-agent': `kfetch/${VERSION}` },
      body: new URLSearchParams({ port, progress: '1', blocks: 'ff'.repeat(LIMITS.maxBlocksPerSize / 8), blocksize: '512' }),
      signal: AbortSignal.timeout(20_000),
    });
    expect(r.status).toBe(200);
    await r.arrayBuffer();
  }
  await seed(kascadePath, data);
  const r = await runCli(['get', kascadePath, '--out', join(dir, 'out'), '--json', '--timeout', '30'], { timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  expect(sha256(join(dir, 'out', 'payload.bin'))).toBe(filehash);
  expect(r.stdout).not.toContain('KF_E_TRACKER_RESPONSE');
}, 90_000);

it('issue 10 point 11: `kfetch get` keeps the seeder from a 3 MiB reply of oversized entries', async () => {
  const dir = scope.dir('kfetch-poison-');
  const adv = scope.keep(await startAdversarialTracker({ kind: 'body', body: '[]' }));
  const { kascadePath, filehash, data } = payload(dir, () => adv.url);
  const port = await seed(kascadePath, data);
  const poison = (i: number) => ({ ip: '127.0.0.1', port: 1 + i, progress: 1, feeder: true, blocks: 'ff'.repeat(768 * 1024), blocksize: BLOCK });
  const seeder = { ip: '127.0.0.1', port, progress: 1, feeder: true };
  const body = JSON.stringify([poison(1), seeder, poison(2)]);
  expect(body.length).toBeGreaterThan(3 * LIMITS.trackerReplyMaxBytes);
  adv.setMode({ kind: 'body', body });
  const r = await runCli(['get', kascadePath, '--out', join(dir, 'out'), '--json', '--timeout', '30'], { timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  expect(sha256(join(dir, 'out', 'payload.bin'))).toBe(filehash);
}, 90_000);
