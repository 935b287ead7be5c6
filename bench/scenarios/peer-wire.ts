// `peer-wire` (issue 14 point 4, the peer half): the binary peer wire against HTTP from one `kfetch` block server
// (a child process, its wire on) on loopback, with single-block requests at 4 KiB, 64 KiB and 256 KiB and runs of
// 64 blocks at 4 KiB: throughput and CPU-s per GiB at both ends (bench/wire-vs-http.ts, nothing verified or
// written: the transfer path alone). Three rounds (one with --quick), each size's wire and HTTP rows in alternating
// order (ABBA), so a machine that speeds up or slows down during the run does not favour one side; rows are medians
// over the rounds and each target the median of the rounds' ratios, with their spread. Targets: the wire at 4 KiB
// single blocks ≥ 2 × HTTP's throughput; at 256 KiB not worse than HTTP (≥ 0.95 ×, the run-to-run noise here).

import { loadavg } from 'node:os';
import { median } from '../measure.js';
import { round, type Row, type Target } from '../report.js';
import type { ScenarioContext, ScenarioResult } from './common.js';
import type { WireRow } from '../wire-vs-http.js';
import { runMeasure } from './wire-bench-child.js';

type Measured = { sizeMiB: number; conc: number; rows: WireRow[] };

const keyOf = (x: WireRow): string => `${x.path}/${x.blockSize}/${x.perRequest}`;

export async function peerWire(ctx: ScenarioContext): Promise<ScenarioResult> {
  const quick = ctx.opts.quick;
  const args = quick ? ['--size-mib', '64', '--bytes-4k-mib', '16', '--bytes-256k-mib', '128', '--json'] : ['--size-mib', '256', '--json'];
  const rounds = quick ? 1 : 3;
  const loadBefore = loadavg().map((x) => x.toFixed(2)).join('/');
  const runs: Measured[] = [];
  for (let i = 0; i < rounds; i++) {
    ctx.log(`peer-wire: one seeder, loopback, ${quick ? 'quick' : '256 MiB file'}, round ${i + 1}/${rounds}${i % 2 === 1 ? ' (wire first)' : ''}`);
    runs.push(await runMeasure<Measured>('wire-vs-http', i % 2 === 1 ? [...args, '--wire-first'] : args, quick ? 120_000 : 600_000));
  }
  const loadAfter = loadavg().map((x) => x.toFixed(2)).join('/');
  // Medians per row over the rounds, in the first round's row order.
  const byKey = new Map<string, WireRow[]>();
  for (const r of runs) for (const x of r.rows) byKey.set(keyOf(x), [...(byKey.get(keyOf(x)) ?? []), x]);
  const med: WireRow[] = [...byKey.values()].map((xs) => ({
    ...xs[0]!,
    mibPerSec: median(xs.map((x) => x.mibPerSec)),
    requestsPerSec: median(xs.map((x) => x.requestsPerSec)),
    clientCpuPerGiB: median(xs.map((x) => x.clientCpuPerGiB)),
    seederCpuPerGiB: median(xs.map((x) => x.seederCpuPerGiB)),
  }));
  const rows: Row[] = med.map((x) => ({
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
  const find = (rs: WireRow[], path: string, bs: number): WireRow | undefined => rs.find((x) => x.path === path && x.blockSize === bs && x.perRequest === 1);
  const targets: Target[] = [];
  const ratio = (bs: number): { v: number; text: string } | undefined => {
    const each = runs.map((r) => {
      const h = find(r.rows, 'http', bs);
      const w = find(r.rows, 'wire', bs);
      return h === undefined || w === undefined ? undefined : w.mibPerSec / h.mibPerSec;
    });
    const h = find(med, 'http', bs);
    const w = find(med, 'wire', bs);
    if (h === undefined || w === undefined || each.some((x) => x === undefined)) return undefined;
    const vs = each as number[];
    const v = median(vs);
    const spread = rounds > 1 ? ` (rounds ${vs.map((x) => x.toFixed(2)).join(', ')})` : '';
    return {
      v,
      text: `median ${v.toFixed(2)}×${spread}; ${w.mibPerSec.toFixed(0)} vs ${h.mibPerSec.toFixed(0)} MiB/s (CPU-s/GiB client ${w.clientCpuPerGiB.toFixed(2)} vs ${h.clientCpuPerGiB.toFixed(2)}, seeder ${w.seederCpuPerGiB.toFixed(2)} vs ${h.seederCpuPerGiB.toFixed(2)})`,
    };
  };
  const r4 = ratio(4096);
  if (r4 !== undefined) targets.push({ scenario: 'peer-wire', text: 'peer wire ≥ 2 × HTTP throughput, 4 KiB single-block requests', value: r4.text, met: r4.v >= 2 });
  const r256 = ratio(262144);
  if (r256 !== undefined) targets.push({ scenario: 'peer-wire', text: 'peer wire not worse than HTTP at 256 KiB (≥ 0.95 ×)', value: r256.text, met: r256.v >= 0.95 });
  const first = runs[0]!;
  return {
    rows,
    targets,
    notes: [
      `peer-wire: one block server in a child process, ${first.conc} requests in flight, a ${first.sizeMiB} MiB file in the page cache; blocks land in reused buffers (no MD5, no write): the transfer path alone; ${rounds} round(s), medians; load average ${loadBefore} before, ${loadAfter} after (1/5/15 min). From 4 seeders and through the whole engine: the peer-wire-swarm scenario`,
    ],
  };
}
