// The tail of a download with one slow peer (issue 3): thanks to the endgame, the last 1% of the blocks must
// not take much longer than a median 1%, and far less than the slow peer's own delay. Times come from the
// peers' logs of when each block's response was handed to the socket.

import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { startAdversarialPeer, type AdversarialPeer } from '../helpers/adversarial-peer.js';
import { killAllChildren, runCli } from '../helpers/cli.js';
import { kascadeJsonFor, payloadBytes, writeKascade } from '../helpers/make-file.js';

const BLOCK = 16 * 1024;
const BLOCKS = 400;
const SLOW_MS = 4000;
const peers: AdversarialPeer[] = [];
const dirs: string[] = [];
afterEach(async () => {
  killAllChildren();
  for (const p of peers.splice(0)) await p.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

it('the last 1% with one slow peer takes about a median 1%, not the slow peer\'s delay', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kfetch-tail-'));
  dirs.push(dir);
  const bytes = payloadBytes(0, BLOCKS * BLOCK, 'tail');
  const k = kascadeJsonFor(bytes, { filename: 'tail.bin', tracker: 'http://127.0.0.1:1/x', blockSizes: [BLOCK] });
  const path = writeKascade(join(dir, 'tail.json'), k);
  // One block per request: the test measures block arrival times, which multi-block ranges would bunch up.
  const args = ['get', path, '--out', join(dir, 'out'), '--timeout', '30', '--max-in-flight', '12', '--max-range-bytes', String(BLOCK)];
  for (let i = 0; i < 3; i++) {
    const p = await startAdversarialPeer({ bytes, id: k.filehash as string, blockSize: BLOCK, delayMs: 25, bitfield: true });
    peers.push(p);
    args.push('--peer', p.addr);
  }
  const slow = await startAdversarialPeer({ bytes, id: k.filehash as string, blockSize: BLOCK, delayMs: SLOW_MS, bitfield: true });
  peers.push(slow);
  args.push('--peer', slow.addr);
  const r = await runCli(args, { timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  expect(createHash('sha256').update(readFileSync(join(dir, 'out', 'tail.bin'))).digest('hex')).toBe(k.filehash);

  // Time at which each block first arrived, from every peer's log.
  const first = new Map<number, number>();
  for (const p of peers) for (const s of p.served) if (!first.has(s.block) || first.get(s.block)! > s.at) first.set(s.block, s.at);
  expect(first.size).toBe(BLOCKS);
  const times = [...first.values()].sort((a, b) => a - b);
  const per = BLOCKS / 100;
  const pct = (k: number): number => times[Math.round(k * per) - 1]!;
  const slices = [];
  for (let k = 2; k <= 100; k++) slices.push(pct(k) - pct(k - 1));
  const median = [...slices].sort((a, b) => a - b)[Math.floor(slices.length / 2)]!;
  const last = pct(100) - pct(99);
  console.log(`tail: last 1% ${last.toFixed(1)} ms, median 1% ${median.toFixed(1)} ms, ratio ${(last / Math.max(median, 1)).toFixed(1)}`);
  // The slow peer got requests, yet the download did not wait for it.
  expect(slow.requests.length).toBeGreaterThan(0);
  expect(last).toBeLessThan(SLOW_MS / 4);
  expect(last).toBeLessThan(Math.max(median, 5) * 10);
}, 90_000);
