// `peer-wire` (issue 14 point 4, the peer half): the binary peer wire against HTTP from one `kfetch` block server
// (a child process, its wire on) on loopback, with single-block requests at 4 KiB, 64 KiB and 256 KiB and runs of
// 64 blocks at 4 KiB: throughput and CPU-s per GiB at both ends (bench/wire-vs-http.ts, nothing verified or
// written: the transfer path alone). Targets: the wire at 4 KiB single blocks ≥ 2 × HTTP's throughput; at 256 KiB
// not worse than HTTP (≥ 0.95 ×, the run-to-run noise here).

import { round, type Row, type Target } from '../report.js';
import type { ScenarioContext, ScenarioResult } from './common.js';
import type { WireRow } from '../wire-vs-http.js';
import { runMeasure } from './wire-bench-child.js';

export async function peerWire(ctx: ScenarioContext): Promise<ScenarioResult> {
  const quick = ctx.opts.quick;
  const args = quick ? ['--size-mib', '64', '--bytes-4k-mib', '16', '--bytes-256k-mib', '128', '--json'] : ['--size-mib', '256', '--json'];
  ctx.log(`peer-wire: one seeder, loopback, ${quick ? 'quick' : '256 MiB file'}`);
  const r = await runMeasure<{ sizeMiB: number; conc: number; rows: WireRow[] }>('wire-vs-http', args, quick ? 120_000 : 600_000);
  const rows: Row[] = r.rows.map((x) => ({
    scenario: 'peer-wire',
    tool: `${x.path === 'wire' ? 'peer wire' : 'HTTP'}, ${x.blockSize / 1024} KiB blocks, ${x.perRequest} per request`,
    sizeMiB: 0,
    MiBps: round(x.mibPerSec, 0),
    extra: {
      'requests/s': round(x.requestsPerSec, 0),
      'client CPU-s/GiB': round(x.clientCpuPerGiB, 2),
      'seeder CPU-s/GiB': round(x.seederCpuPerGiB, 2),
    },
  }));
  const find = (path: string, bs: number, per = 1): WireRow | undefined => r.rows.find((x) => x.path === path && x.blockSize === bs && x.perRequest === per);
  const targets: Target[] = [];
  const ratio = (bs: number): { v: number; text: string } | undefined => {
    const h = find('http', bs);
    const w = find('wire', bs);
    if (h === undefined || w === undefined) return undefined;
    const v = w.mibPerSec / h.mibPerSec;
    return { v, text: `${w.mibPerSec.toFixed(0)} vs ${h.mibPerSec.toFixed(0)} MiB/s = ${v.toFixed(2)}× (CPU-s/GiB client ${w.clientCpuPerGiB.toFixed(2)} vs ${h.clientCpuPerGiB.toFixed(2)}, seeder ${w.seederCpuPerGiB.toFixed(2)} vs ${h.seederCpuPerGiB.toFixed(2)})` };
  };
  const r4 = ratio(4096);
  if (r4 !== undefined) targets.push({ scenario: 'peer-wire', text: 'peer wire ≥ 2 × HTTP throughput, 4 KiB single-block requests', value: r4.text, met: r4.v >= 2 });
  const r256 = ratio(262144);
  if (r256 !== undefined) targets.push({ scenario: 'peer-wire', text: 'peer wire not worse than HTTP at 256 KiB (≥ 0.95 ×)', value: r256.text, met: r256.v >= 0.95 });
  return {
    rows,
    targets,
    notes: [
      `peer-wire: one block server in a child process, ${r.conc} requests in flight, a ${r.sizeMiB} MiB file in the page cache; blocks land in reused buffers (no MD5, no write): the transfer path alone. 4 seeders: not measured yet`,
    ],
  };
}
