// Issue 9 point 9: against peers that take one block per request (every original Kascade peer), a peer's requests in
// flight are sized from the bytes of each request and its latency, and memory from the bytes asked for — not one
// 1 MiB slot per 4 KiB block. Before the fix the whole download had at most 8 requests in flight (8 MiB of 1 MiB
// slots) and a peer 1–2; here the peers must see many more at once, and the file must be right.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { startAdversarialPeer, type AdversarialPeer } from '../helpers/adversarial-peer.js';
import { runCli } from '../helpers/cli.js';
import { kascadeJsonFor, payloadBytes, writeKascade } from '../helpers/make-file.js';
import { testScope } from '../helpers/test-scope.js';

const BLOCK = 4096;
const BLOCKS = 1024;
const DELAY_MS = 20;
const scope = testScope();

it('issue 9: single-block peers with 20 ms latency get many requests in flight with default flags', async () => {
  const dir = scope.dir('kfetch-single-');
  const bytes = payloadBytes(0, BLOCKS * BLOCK, 'single-block');
  const k = kascadeJsonFor(bytes, { filename: 'single.bin', tracker: 'http://127.0.0.1:1/x', blockSizes: [BLOCK] });
  const path = writeKascade(join(dir, 'single.json'), k);
  const args = ['get', path, '--out', join(dir, 'out'), '--timeout', '60', '--json'];
  const peers: AdversarialPeer[] = [];
  for (let i = 0; i < 4; i++) {
    const p = scope.keep(await startAdversarialPeer({ bytes, id: k.filehash as string, blockSize: BLOCK, delayMs: DELAY_MS, singleBlockOnly: true }));
    peers.push(p);
    args.push('--peer', p.addr);
  }
  const r = await runCli(args, { timeoutMs: 90_000 });
  expect(r.code, r.stderr).toBe(0);
  expect(createHash('sha256').update(readFileSync(join(dir, 'out', 'single.bin'))).digest('hex')).toBe(k.filehash);
  const perPeer = peers.map((p) => p.maxConcurrent);
  // Most requests open at once over all four peers (their open/close logs merged in time order).
  const events = peers.flatMap((p) => p.openLog).sort((a, b) => a.at - b.at || a.delta - b.delta);
  let open = 0;
  let total = 0;
  for (const e of events) total = Math.max(total, (open += e.delta));
  console.log(`single-block: most requests open at once ${total}; per peer ${perPeer.join(', ')}`);
  // The old sizing capped the whole download at 8 (8 MiB of 1 MiB slots) and each peer at its 4 initial slots.
  expect(total).toBeGreaterThan(16);
  expect(Math.max(...perPeer)).toBeGreaterThan(8);
  // Nothing beyond the per-peer ceiling (32 connections).
  expect(Math.max(...perPeer)).toBeLessThanOrEqual(32);
}, 120_000);

it('a plain HTTP server with a shorter file (it clamps ranges past its end) is used for what it has, never dropped', async () => {
  const { createServer } = await import('node:http');
  const dir = scope.dir('kfetch-partial-');
  const block = 16 * 1024;
  const bytes = payloadBytes(0, 80 * block, 'partial-server');
  const k = kascadeJsonFor(bytes, { filename: 'partial.bin', tracker: 'http://127.0.0.1:1/x', blockSizes: [block] });
  const path = writeKascade(join(dir, 'partial.json'), k);
  // Holds the first 50.5 blocks; a range past that is clamped (206 with the shorter Content-Range), past the end 416.
  const have = bytes.subarray(0, 50 * block + block / 2);
  const statuses: number[] = [];
  const srv = createServer((req, res) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (req.url !== `/${k.filehash as string}` || m === null || Number(m[1]) >= have.length) {
      statuses.push(416);
      return void res.writeHead(416).end();
    }
    const first = Number(m[1]);
    const last = Math.min(Number(m[2]), have.length - 1);
    statuses.push(206);
    res.writeHead(206, { 'Content-Range': `bytes ${first}-${last}/${have.length}`, 'Content-Length': last - first + 1 });
    res.end(have.subarray(first, last + 1));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const full = scope.keep(await startAdversarialPeer({ bytes, id: k.filehash as string, blockSize: block, delayMs: 150 }));
  try {
    const addr = `127.0.0.1:${(srv.address() as { port: number }).port}`;
    const r = await runCli(['get', path, '--out', join(dir, 'out'), '--timeout', '30', '--json', '--peer', addr, '--peer', full.addr], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(createHash('sha256').update(readFileSync(join(dir, 'out', 'partial.bin'))).digest('hex')).toBe(k.filehash);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    // The clamped 206 is "it has only this much", not a protocol error or a failure that backs off and strikes.
    expect(events.filter((e) => e.peer === addr && e.code === 'KF_E_PEER_PROTOCOL')).toEqual([]);
    expect(events.filter((e) => e.event === 'peer' && e.peer === addr && e.action === 'dropped')).toEqual([]);
    expect(statuses.filter((s) => s === 206).length).toBeGreaterThan(5);
  } finally {
    srv.closeAllConnections();
    await new Promise<void>((r) => srv.close(() => r()));
  }
}, 90_000);

it('a peer assumed to hold everything that answers "not here" to every block is asked a bounded number of times', async () => {
  const dir = scope.dir('kfetch-nothere-');
  const block = 4096;
  const bytes = payloadBytes(0, 400 * block, 'not-here');
  const k = kascadeJsonFor(bytes, { filename: 'nothere.bin', tracker: 'http://127.0.0.1:1/x', blockSizes: [block] });
  const path = writeKascade(join(dir, 'nothere.json'), k);
  // No /blocks and a 400 "not held" for every block (a server without the file); the other peer is slow, so the
  // empty one keeps getting picked while it is thought to hold everything.
  const empty = scope.keep(await startAdversarialPeer({ bytes, id: k.filehash as string, blockSize: block, mode: () => 'lie-bitfield' }));
  const full = scope.keep(await startAdversarialPeer({ bytes, id: k.filehash as string, blockSize: block, delayMs: 20 }));
  const r = await runCli(['get', path, '--out', join(dir, 'out'), '--timeout', '30', '--json', '--peer', empty.addr, '--peer', full.addr], { timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  expect(createHash('sha256').update(readFileSync(join(dir, 'out', 'nothere.bin'))).digest('hex')).toBe(k.filehash);
  // 16 single "not here" answers, plus the multi-block ones and those already in flight: far from one per block.
  const gets = empty.openLog.filter((e) => e.delta === 1).length;
  console.log(`not-here peer: ${gets} requests for ${bytes.length / block} blocks`);
  expect(gets).toBeLessThan(60);
  expect(r.stdout).toMatch(/"action":"dropped","reason":"answered \\"not here\\" 16 times and served no block"/);
}, 90_000);
