// `md5`: the CPU cost of the blocks' MD5 (issue 11 item 3), in-process on one thread: OpenSSL one block at a time
// (what the workers did) against workers/md5-multi.ts (the md5x addon, one block per SIMD lane) at 4, 8 and 16
// blocks per call, for 256 KiB and 1 MiB blocks. The blocks cycle through a 64 MiB pool of random bytes, so they
// come from memory rather than the cache, as a downloaded block mostly does. --size MiB are hashed per row (at most
// 1024), median of --runs.

import { createHash, randomFillSync } from 'node:crypto';
import { md5FallbackReason, md5Implementation, md5Many } from '../../workers/md5-multi.js';
import { median } from '../measure.js';
import { round, type Row } from '../report.js';
import { MiB, type ScenarioContext, type ScenarioResult } from './common.js';

const POOL_BYTES = 64 * MiB;
const BLOCK_SIZES = [256 * 1024, MiB];
const PER_CALL = [4, 8, 16];

/** CPU seconds of this thread (user + system) to hash `total` bytes of `pool` in blocks of `size`, `perCall` at once. */
function cpuSeconds(pool: Buffer, size: number, perCall: number, total: number, openssl: boolean): number {
  const blocks = Array.from({ length: pool.length / size }, (_, k) => pool.subarray(k * size, (k + 1) * size));
  const out = Buffer.alloc(16 * perCall);
  const calls = Math.max(1, Math.round(total / (size * perCall)));
  const t0 = process.cpuUsage();
  let next = 0;
  for (let c = 0; c < calls; c++) {
    const views = blocks.slice(next, next + perCall);
    next = next + perCall >= blocks.length ? 0 : next + perCall;
    if (openssl) for (const v of views) createHash('md5').update(v).digest();
    else md5Many(views, out);
  }
  const u = process.cpuUsage(t0);
  return (u.user + u.system) / 1e6;
}

export async function md5(ctx: ScenarioContext): Promise<ScenarioResult> {
  const pool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES));
  const totalMiB = Math.min(ctx.opts.sizeMiB, 1024);
  const impl = md5Implementation();
  const rows: Row[] = [];
  const variants: { tool: string; perCall: number; openssl: boolean }[] = [
    { tool: 'OpenSSL createHash, one block at a time', perCall: 16, openssl: true },
    ...(impl === 'openssl' ? [] : PER_CALL.map((n) => ({ tool: `md5x ${impl}, ${n} blocks per call`, perCall: n, openssl: false }))),
  ];
  for (const size of BLOCK_SIZES) {
    for (const v of variants) {
      if (ctx.signal.aborted) throw new Error('md5: aborted');
      const all = Array.from({ length: ctx.opts.runs }, () => cpuSeconds(pool, size, v.perCall, totalMiB * MiB, v.openssl));
      const s = median(all);
      const perGiB = (s * 1024) / totalMiB;
      const MBps = (totalMiB * MiB) / 1e6 / s;
      ctx.log(`md5: ${v.tool}, ${size / 1024} KiB blocks: ${MBps.toFixed(0)} MB/s per core, ${perGiB.toFixed(3)} CPU-s per GiB`);
      rows.push({
        scenario: 'md5',
        tool: `${v.tool} (${size / 1024} KiB blocks)`,
        sizeMiB: totalMiB,
        cpuSeconds: round(s, 3),
        extra: { 'MB/s per core': round(MBps, 0), 'CPU-s per GiB': round(perGiB, 3), 'block KiB': size / 1024, 'blocks per call': v.openssl ? 1 : v.perCall },
      });
    }
  }
  const reason = md5FallbackReason();
  return { rows, targets: [], notes: reason === undefined ? [] : [`md5: the md5x addon is not in use: ${reason}`] };
}
