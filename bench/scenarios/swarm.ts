// `swarm`: the kfetch tracker + N `kfetch seed` processes + one `kfetch get`; and, when installed, a swarm of the
// same size with aria2 (BitTorrent, a local tracker) and with WebTorrent as anchors, each with its own seeders.
// Runs alternate kfetch / anchors; aria2c's write configuration is calibrated first (torrent-anchors.ts). Targets
// (issue 11): ≥ 2.5 × aria2 BitTorrent's throughput and ≥ 3 × WebTorrent's; the downloader ≤ 3.5 CPU-s per GiB;
// the kfetch seeders ≤ 0.8 CPU-s per GiB served (all of them together over the GiB downloaded: each serves its share);
// peak RSS ≤ 130 MiB.

import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Child } from '../../src/cli/local-swarm.js';
import { stopChildren } from '../../src/cli/local-swarm.js';
import { cpuOf, type Measured } from '../measure.js';
import type { Row, Target } from '../report.js';
import { round } from '../report.js';
import { torrentAnchors, type TorrentAnchor } from './torrent-anchors.js';
import {
  ceilingsFor, downloaderPerGiB, kfetchMeasured, makeKascade, rowFrom, servedPerGiB, startKfetch, testFile,
  type KfetchMeasured, type ScenarioContext, type ScenarioResult,
} from './common.js';

export async function swarm(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { sizeMiB, peers, runs } = ctx.opts;
  const dir = join(ctx.dir, 'swarm');
  mkdirSync(dir, { recursive: true });
  const file = testFile(ctx, sizeMiB);
  const children: Child[] = [];
  const notes: string[] = [];
  const kf: KfetchMeasured[] = [];
  const seeders: Child[] = [];
  /** CPU the seeders spent during each kfetch run (they serve the whole file once per run). */
  const seederCpu: { user: number; sys: number }[] = [];
  const seedersNow = (): { user: number; sys: number } => cpuOf(seeders.flatMap((c) => (c.proc.pid === undefined ? [] : [c.proc.pid])));
  const anchors: TorrentAnchor[] = [];
  const anchorRuns = new Map<string, Measured[]>();
  /** The anchors' seeders' CPU during each of their downloads. */
  const anchorSeederCpu = new Map<string, { user: number; sys: number }[]>();
  const failedAnchors = new Set<string>();
  try {
    const tracker = await startKfetch(['tracker', '--port', '0', '--host', '127.0.0.1'], join(dir, 'home-tracker'));
    children.push(tracker);
    const k = makeKascade(file, join(dir, 'swarm.json'), tracker.url);
    // The anchors first: their seed dirs hold hard links of the file, and a link made after a kfetch seeder opened
    // it changes its identity (link count, ctime), so the seeder would rightly stop serving it.
    // --quick (CI's smoke test, kept short): no calibration (aria2c's BitTorrent start-up alone is seconds a run;
    // falloc, the usual winner) and no WebTorrent (its seeders verify the file at start).
    const quick = ctx.opts.quick;
    if (quick) notes.push('skip: WebTorrent: not under --quick');
    for (const a of await torrentAnchors(ctx, file, join(dir, 'bt'), peers, notes, quick ? { calibrate: false, only: ['aria2'] } : {})) {
      anchors.push(a);
      try {
        await a.prepare();
      } catch (err) {
        failedAnchors.add(a.name);
        notes.push(`skip: ${a.name}: FAILED: ${(err instanceof Error ? err.message : String(err)).slice(0, 200)}`);
      }
    }
    for (let i = 0; i < peers; i++) {
      const seeder = await startKfetch(['seed', k.path, '--data', dirname(file), '--port', '0', '--trust'], join(dir, `home-seed-${i}`));
      children.push(seeder);
      seeders.push(seeder);
    }
    for (let i = 0; i < runs; i++) {
      const out = join(dir, 'out');
      const home = join(dir, `home-get-${i}`);
      ctx.log(`swarm: kfetch run ${i + 1}/${runs}`);
      const before = seedersNow();
      kf.push(await kfetchMeasured(['get', k.path, '--out', out, '--json', '--timeout', '60'], home, 600_000));
      const after = seedersNow();
      seederCpu.push({ user: after.user - before.user, sys: after.sys - before.sys });
      rmSync(out, { recursive: true, force: true });
      rmSync(home, { recursive: true, force: true });
      for (const a of anchors) {
        if (failedAnchors.has(a.name)) continue;
        ctx.log(`swarm: ${a.name} run ${i + 1}/${runs}`);
        try {
          const before = cpuOf(a.seederPids());
          const m = await a.download(join(dir, `out-${a.key}-${i}`));
          const after = cpuOf(a.seederPids());
          anchorRuns.set(a.name, [...(anchorRuns.get(a.name) ?? []), m]);
          anchorSeederCpu.set(a.name, [...(anchorSeederCpu.get(a.name) ?? []), { user: after.user - before.user, sys: after.sys - before.sys }]);
        } catch (err) {
          // An anchor that fails is reported and dropped; kfetch's figures still count.
          failedAnchors.add(a.name);
          anchorRuns.delete(a.name);
          notes.push(`skip: ${a.name}: FAILED: ${(err instanceof Error ? err.message : String(err)).slice(0, 200)}`);
        }
        rmSync(join(dir, `out-${a.key}-${i}`), { recursive: true, force: true });
      }
    }
  } finally {
    for (const a of anchors) await a.stop();
    await stopChildren(children);
  }
  const ceil = ceilingsFor('download', ctx.ceilings);
  const kRow = rowFrom('swarm', `kfetch get (${peers} kfetch seeders)`, sizeMiB, kf, ceil);
  // All the seeders' CPU over the bytes downloaded: with N seeders each serves about 1/N of the file.
  const served = servedPerGiB(`${peers} kfetch seed`, seederCpu, sizeMiB);
  if (kRow.cpu !== undefined && served !== undefined) kRow.cpu.served = served;
  const rows: Row[] = [kRow];
  const targets: Target[] = [];
  kRow.ratios = {};
  const want: Record<string, number> = { 'aria2 BitTorrent': 2.5, WebTorrent: 3 };
  for (const [name, need] of Object.entries(want)) {
    const ms = anchorRuns.get(name);
    const anchor = anchors.find((a) => a.name === name);
    if (ms === undefined || anchor === undefined) {
      targets.push({ scenario: 'swarm', text: `kfetch throughput ≥ ${need} × ${name}`, value: `${name} skipped`, met: null });
      continue;
    }
    const r = rowFrom('swarm', `${name} (${peers} own seeders; ${anchor.config()})`, sizeMiB, ms, ceil);
    const aServed = servedPerGiB(`${peers} ${name} seeders`, anchorSeederCpu.get(name) ?? [], sizeMiB);
    if (r.cpu !== undefined && aServed !== undefined) r.cpu.served = aServed;
    rows.push(r);
    const speedup = r.seconds! / kRow.seconds!;
    kRow.ratios[`${name} speed`] = round(speedup, 2);
    targets.push({
      scenario: 'swarm',
      text: `kfetch throughput ≥ ${need} × ${name} (${anchor.config()}; ${sizeMiB} MiB, ${peers} seeders each)`,
      value: `${kRow.MiBps!.toFixed(0)} / ${r.MiBps!.toFixed(0)} MiB/s = ${speedup.toFixed(2)}×`,
      met: speedup >= need,
    });
  }
  for (const n of notes) if (n.startsWith('skip:')) rows.push({ scenario: 'swarm', tool: n.slice(5).split(':')[0]!.trim(), sizeMiB, skipped: n.split(':').slice(2).join(':').trim() });
  const perGiB = downloaderPerGiB(kRow);
  targets.push({
    scenario: 'swarm',
    text: `downloader ≤ 3.5 CPU-s per GiB (${sizeMiB} MiB)`,
    value: perGiB === undefined ? 'file under 64 MiB' : `${perGiB.toFixed(2)} CPU-s/GiB`,
    met: perGiB === undefined ? null : perGiB <= 3.5,
  });
  const seedPerGiB = kRow.cpu?.served === undefined ? undefined : round(kRow.cpu.served.user + kRow.cpu.served.sys, 2);
  targets.push({
    scenario: 'swarm',
    text: `kfetch seeders ≤ 0.8 CPU-s per GiB served (all ${peers} together / GiB downloaded)`,
    value: seedPerGiB === undefined ? 'file under 64 MiB' : `${seedPerGiB.toFixed(2)} CPU-s/GiB`,
    met: seedPerGiB === undefined ? null : seedPerGiB <= 0.8,
  });
  targets.push({ scenario: 'swarm', text: `kfetch peak RSS ≤ 130 MiB (${sizeMiB} MiB file)`, value: `${kRow.peakRssMiB} MiB`, met: kRow.peakRssMiB! <= 130 });
  return { rows, targets, notes: notes.filter((n) => !n.startsWith('skip:')) };
}
