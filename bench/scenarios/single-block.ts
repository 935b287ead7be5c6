// `single-block`: peers that take one block per request, as every original 2015 Kascade peer does (issue 9): 4
// static servers that answer 416 to any range that is not exactly one aligned block, 4 KiB blocks, 20 ms added
// before each response. `kfetch get` with default flags against the same with `--max-range-bytes 4096` (which
// never asks for more than one block), alternated A B A B. Also the mean requests in flight, as the peers saw them
// (time-weighted open requests over the transfer). Target: default flags at least as fast as --max-range-bytes 4096.

import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_ENGINE_LIMITS } from '../../src/client/engine-limits.js';
import type { Measured } from '../measure.js';
import { round, type Row } from '../report.js';
import { startStaticServer, type StaticServer } from '../static-server.js';
import { kfetchMeasured, makeKascade, rowFrom, testFile, type ScenarioContext, type ScenarioResult } from './common.js';

const BLOCK = 4096;
const DELAY_MS = 20;
const PEERS = 4;
/** Within this of the single-block flag's time counts as "as fast" (run-to-run noise measured here: 2–4%). */
const TOLERANCE = 1.05;

interface Run {
  m: Measured;
  meanInFlight: number;
}

export async function singleBlock(ctx: ScenarioContext): Promise<ScenarioResult> {
  // The size option does not apply: the scenario is about latency, not bulk (4 MiB is the figure).
  const sizeMiB = ctx.opts.quick ? 4 : 16;
  const dir = join(ctx.dir, 'single-block');
  mkdirSync(dir, { recursive: true });
  const file = testFile(ctx, sizeMiB);
  const k = makeKascade(file, join(dir, 'single.json'), 'http://127.0.0.1:9/announce', BLOCK);
  const servers: StaticServer[] = [];
  const variants = [
    { name: 'default flags', args: [] as string[] },
    { name: '--max-range-bytes 4096', args: ['--max-range-bytes', String(BLOCK)] },
  ];
  const runs: Run[][] = variants.map(() => []);
  try {
    for (let i = 0; i < PEERS; i++) servers.push(await startStaticServer({ file, id: k.filehash, delayMs: DELAY_MS, singleBlock: BLOCK }));
    for (let r = 0; r < ctx.opts.runs; r++) {
      for (const [v, variant] of variants.entries()) {
        const home = join(dir, `home-${r}-${v}`);
        const out = join(dir, 'out');
        rmSync(out, { recursive: true, force: true });
        const args = ['get', k.path, '--out', out, '--json', '--timeout', '120', ...variant.args];
        for (const s of servers) args.push('--peer', s.addr);
        ctx.log(`single-block: kfetch get, ${variant.name}, run ${r + 1}/${ctx.opts.runs}`);
        const before = servers.map((s) => ({ ...s.inFlight(), served: s.served.length, first: s.firstRequestAt() }));
        const m = await kfetchMeasured(args, home, 600_000);
        // The transfer window: from the first request of this run to the last response handed to a socket.
        let start = Infinity;
        let end = -Infinity;
        let integral = 0;
        servers.forEach((s, j) => {
          integral += s.inFlight().integralMs - before[j]!.integralMs;
          const fresh = s.served.slice(before[j]!.served);
          if (fresh.length > 0) {
            end = Math.max(end, fresh[fresh.length - 1]!.at);
            start = Math.min(start, fresh[0]!.at - DELAY_MS);
          }
        });
        runs[v]!.push({ m, meanInFlight: end > start ? integral / (end - start) : 0 });
        rmSync(home, { recursive: true, force: true });
        rmSync(out, { recursive: true, force: true });
      }
    }
  } finally {
    for (const s of servers) await s.close();
  }
  const rows: Row[] = variants.map((variant, v) => {
    const row = rowFrom('single-block', `kfetch get, ${variant.name} (${PEERS} single-block peers, ${DELAY_MS} ms)`, sizeMiB, runs[v]!.map((r) => r.m));
    const inflight = runs[v]!.map((r) => r.meanInFlight).sort((a, b) => a - b);
    row.extra = {
      ...row.extra,
      'mean in flight': round(inflight[Math.floor(inflight.length / 2)]!, 1),
      'in-flight cap': Math.min(DEFAULT_ENGINE_LIMITS.maxInFlight, PEERS * DEFAULT_ENGINE_LIMITS.peer.maxSlots),
    };
    return row;
  });
  const dflt = rows[0]!.seconds!;
  const single = rows[1]!.seconds!;
  rows[0]!.ratios = { 'vs --max-range-bytes 4096': round(dflt / single, 3) };
  return {
    rows,
    targets: [
      {
        scenario: 'single-block',
        text: `default flags at least as fast as --max-range-bytes 4096 (within ${Math.round((TOLERANCE - 1) * 100)}%), ${PEERS} single-block peers, ${BLOCK / 1024} KiB blocks, ${DELAY_MS} ms`,
        value: `${dflt.toFixed(2)} s vs ${single.toFixed(2)} s (${(dflt / single).toFixed(2)}×); mean in flight ${rows[0]!.extra!['mean in flight']} vs ${rows[1]!.extra!['mean in flight']}`,
        met: dflt <= single * TOLERANCE,
      },
    ],
  };
}
