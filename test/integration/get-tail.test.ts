// The tail of a download with one slow peer (issue 3): the download must not wait for the slow peer's answers at
// the end. The endgame asks a fast peer for what the slow one holds, so the block that completes the download was
// never left to the slow peer alone. How long the tail takes (last 1% against the median 1%) is a speed figure:
// `npm run bench -- tail` prints it with its target (issue 10: no wall-clock ratios in tests).

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { startAdversarialPeer, type AdversarialPeer } from '../helpers/adversarial-peer.js';
import { runCli } from '../helpers/cli.js';
import { kascadeJsonFor, payloadBytes, writeKascade } from '../helpers/make-file.js';
import { testScope } from '../helpers/test-scope.js';

const BLOCK = 16 * 1024;
const BLOCKS = 400;
// Below the 5 s shortest request deadline (peer-stats.ts), so only the endgame can keep the download from waiting.
const SLOW_MS = 4000;
const scope = testScope();

it('with one slow peer, the block that completes the download is also asked of a fast peer (endgame)', async () => {
  const dir = scope.dir('kfetch-tail-');
  const bytes = payloadBytes(0, BLOCKS * BLOCK, 'tail');
  const k = kascadeJsonFor(bytes, { filename: 'tail.bin', tracker: 'http://127.0.0.1:1/x', blockSizes: [BLOCK] });
  const path = writeKascade(join(dir, 'tail.json'), k);
  // One block per request: the test follows single blocks, which multi-block ranges would bunch up.
  const args = ['get', path, '--out', join(dir, 'out'), '--timeout', '60', '--max-in-flight', '12', '--max-range-bytes', String(BLOCK)];
  const fast: AdversarialPeer[] = [];
  for (let i = 0; i < 3; i++) {
    const p = scope.keep(await startAdversarialPeer({ bytes, id: k.filehash as string, blockSize: BLOCK, delayMs: 25, bitfield: true }));
    fast.push(p);
    args.push('--peer', p.addr);
  }
  const slow = scope.keep(await startAdversarialPeer({ bytes, id: k.filehash as string, blockSize: BLOCK, delayMs: SLOW_MS, bitfield: true }));
  args.push('--peer', slow.addr);
  const r = await runCli(args, { timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  expect(createHash('sha256').update(readFileSync(join(dir, 'out', 'tail.bin'))).digest('hex')).toBe(k.filehash);

  // The slow peer was asked for blocks, yet none of them held up the download: the block that arrived last
  // (by the peers' logs of when each response was handed to the socket) was asked of a fast peer too.
  expect(slow.requests.length).toBeGreaterThan(0);
  const first = new Map<number, number>();
  for (const p of [...fast, slow]) for (const s of p.served) if (!first.has(s.block) || first.get(s.block)! > s.at) first.set(s.block, s.at);
  expect(first.size).toBe(BLOCKS);
  const [lastBlock] = [...first].reduce((a, b) => (b[1] > a[1] ? b : a));
  expect(fast.some((p) => p.requests.includes(lastBlock)), `block ${lastBlock} was left to the slow peer`).toBe(true);
}, 90_000);
