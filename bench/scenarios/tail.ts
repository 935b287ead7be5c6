// `tail`: the time of the last 1% of the blocks against the median 1%, with one slow peer among fast ones (as in
// test/integration/get-tail.test.ts, which checks only that the endgame takes the last block from a fast peer):
// 3 peers answering each request after 25 ms, one after 4 s. Block arrival times are when each peer handed a
// block's response to its socket. Targets: last 1% ≤ 3 × the median 1%, and under a quarter of the slow delay.

import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { round } from '../report.js';
import { startStaticServer, type StaticServer } from '../static-server.js';
import { kfetchMeasured, makeKascade, rowFrom, testFile, type ScenarioContext, type ScenarioResult } from './common.js';

const BLOCK = 16 * 1024;
const FAST_MS = 25;
const SLOW_MS = 4000;

export async function tail(ctx: ScenarioContext): Promise<ScenarioResult> {
  // 400 blocks (6.25 MiB) quick, 1600 (25 MiB) otherwise; the size option does not apply (it is about time).
  const sizeMiB = ctx.opts.quick ? 6.25 : 25;
  const blocks = (sizeMiB * 1024 * 1024) / BLOCK;
  const dir = join(ctx.dir, 'tail');
  mkdirSync(dir, { recursive: true });
  const file = testFile(ctx, sizeMiB);
  const k = makeKascade(file, join(dir, 'tail.json'), 'http://127.0.0.1:9/announce', BLOCK);
  const servers: StaticServer[] = [];
  const home = join(dir, 'home');
  try {
    for (let i = 0; i < 3; i++) servers.push(await startStaticServer({ file, id: k.filehash, delayMs: FAST_MS }));
    const slow = await startStaticServer({ file, id: k.filehash, delayMs: SLOW_MS });
    servers.push(slow);
    // One block per request: the scenario times block arrivals, which multi-block ranges would bunch up.
    const args = ['get', k.path, '--out', join(dir, 'out'), '--json', '--timeout', '60', '--max-in-flight', '12', '--max-range-bytes', String(BLOCK)];
    for (const s of servers) args.push('--peer', s.addr);
    ctx.log('tail: kfetch get with one slow peer');
    const m = await kfetchMeasured(args, home, 300_000);
    const first = new Map<number, number>();
    for (const s of servers) {
      for (const r of s.served) {
        for (let b = Math.floor(r.first / BLOCK); b <= Math.floor(r.last / BLOCK); b++) {
          if (!first.has(b) || first.get(b)! > r.at) first.set(b, r.at);
        }
      }
    }
    if (first.size !== blocks) throw new Error(`tail: ${first.size} of ${blocks} blocks seen served`);
    const times = [...first.values()].sort((a, b) => a - b);
    const per = blocks / 100;
    const pct = (q: number): number => times[Math.round(q * per) - 1]!;
    const slices: number[] = [];
    for (let q = 2; q <= 100; q++) slices.push(pct(q) - pct(q - 1));
    const med = [...slices].sort((a, b) => a - b)[Math.floor(slices.length / 2)]!;
    const last = pct(100) - pct(99);
    const ratio = last / Math.max(med, 1);
    const row = rowFrom('tail', 'kfetch get (3 × 25 ms + 1 × 4 s peer)', sizeMiB, [m]);
    row.extra = { ...row.extra, 'last 1% ms': round(last, 1), 'median 1% ms': round(med, 1), 'slow peer requests': slow.requests() };
    return {
      rows: [row],
      targets: [
        { scenario: 'tail', text: 'last 1% ≤ 3 × median 1% (one slow peer)', value: `${last.toFixed(0)} / ${med.toFixed(0)} ms = ${ratio.toFixed(1)}×`, met: ratio <= 3 },
        { scenario: 'tail', text: `last 1% < ¼ of the slow peer's ${SLOW_MS} ms`, value: `${last.toFixed(0)} ms`, met: last < SLOW_MS / 4 },
      ],
    };
  } finally {
    for (const s of servers) await s.close();
    rmSync(home, { recursive: true, force: true });
  }
}
