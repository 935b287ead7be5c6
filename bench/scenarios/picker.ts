// `picker`: the cost of one pick among a million waiting blocks (1 GiB at 1 KiB blocks), rarest-first and
// low-first (a peer holding every other block), each pick followed by the block's removal as a request would.
// In-process, no children: the median over --runs of 1000 picks each. Target (issue 10, moved here from
// test/unit/client-picker.test.ts, where it was a wall-clock bound): under 1 ms per pick — in practice microseconds.

import { performance } from 'node:perf_hooks';
import { RarityBuckets } from '../../src/client/rarity-buckets.js';
import { median } from '../measure.js';
import { round, type Row, type Target } from '../report.js';
import type { ScenarioContext, ScenarioResult } from './common.js';

const BLOCKS = 1 << 20;
const PICKS = 1000;
const TARGET_MS = 1;

const variants: { name: string; holds: (i: number) => boolean; lowFirst: boolean }[] = [
  { name: 'rarest first, peer holds all', holds: () => true, lowFirst: false },
  { name: 'low first, peer holds every other block', holds: (i) => i % 2 === 0, lowFirst: true },
];

/** Milliseconds per pick (+ remove) over PICKS picks from a fresh table of BLOCKS blocks held by 4 peers. */
function msPerPick(holds: (i: number) => boolean, lowFirst: boolean): number {
  const b = new RarityBuckets(BLOCKS);
  for (let i = 0; i < BLOCKS; i++) b.add(i, 4);
  const t0 = performance.now();
  for (let k = 0; k < PICKS; k++) {
    const i = b.pick(holds, Math.random, lowFirst);
    if (i === undefined) throw new Error('picker: nothing to pick');
    b.remove(i);
  }
  return (performance.now() - t0) / PICKS;
}

export async function picker(ctx: ScenarioContext): Promise<ScenarioResult> {
  const rows: Row[] = [];
  const targets: Target[] = [];
  for (const v of variants) {
    if (ctx.signal.aborted) throw new Error('picker: aborted');
    const all = Array.from({ length: ctx.opts.runs }, () => msPerPick(v.holds, v.lowFirst));
    const ms = median(all);
    ctx.log(`picker: ${v.name}: ${(ms * 1000).toFixed(1)} µs per pick`);
    rows.push({ scenario: 'picker', tool: `RarityBuckets.pick (${v.name})`, sizeMiB: 0, extra: { 'µs per pick': round(ms * 1000, 1), blocks: BLOCKS } });
    targets.push({ scenario: 'picker', text: `one pick among ${BLOCKS} blocks < ${TARGET_MS} ms (${v.name})`, value: `${(ms * 1000).toFixed(1)} µs`, met: ms < TARGET_MS });
  }
  return { rows, targets };
}
