// `mirrors`: the same file at /<filehash> on N plain HTTP servers (nginx, else the Node static server);
// `kfetch get --peer ...` (MD5 of every block + final SHA-256) against `aria2c -x4 -s16 -k16M --checksum=sha-256`
// from the same servers, alternated A B A B. Target: kfetch's time ≤ 0.67 × aria2c's at 1 GiB, 4 nginx.

import { mkdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { cpuOf, median, runMeasured, type Measured } from '../measure.js';
import type { Row, Target } from '../report.js';
import { round } from '../report.js';
import { ceilingsFor, kfetchMeasured, makeKascade, rowFrom, testFile, type ScenarioContext, type ScenarioResult } from './common.js';
import { startHttpServers } from './servers.js';

export async function mirrors(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { sizeMiB, peers, runs } = ctx.opts;
  const dir = join(ctx.dir, 'mirrors');
  mkdirSync(dir, { recursive: true });
  const file = testFile(ctx, sizeMiB);
  // No tracker: the kascade names a closed port; the servers come from --peer.
  const k = makeKascade(file, join(dir, 'mirrors.json'), 'http://127.0.0.1:9/announce');
  const servers = await startHttpServers(dir, file, k.filehash, peers, ctx.anchors.nginx);
  const notes = [`mirrors: ${peers} × ${servers.kind}${ctx.anchors.nginx === undefined ? ' (nginx not installed)' : ''}`];
  const out = join(dir, 'out');
  const name = basename(file);
  const kf: Measured[] = [];
  const ar: Measured[] = [];
  /** CPU the servers spent during each run of each downloader (they serve the whole file once per run). */
  const served = { kfetch: [] as { user: number; sys: number }[], aria2c: [] as { user: number; sys: number }[] };
  const measuredServing = async (into: { user: number; sys: number }[], run: () => Promise<Measured>): Promise<Measured> => {
    const before = cpuOf(servers.pids());
    const m = await run();
    const after = cpuOf(servers.pids());
    into.push({ user: after.user - before.user, sys: after.sys - before.sys });
    return m;
  };
  try {
    for (let i = 0; i < runs; i++) {
      rmSync(out, { recursive: true, force: true });
      const home = join(dir, `home-${i}`);
      const args = ['get', k.path, '--out', out, '--json', '--timeout', '60'];
      for (const p of servers.ports) args.push('--peer', `127.0.0.1:${p}`);
      ctx.log(`mirrors: kfetch run ${i + 1}/${runs}`);
      kf.push(await measuredServing(served.kfetch, () => kfetchMeasured(args, home, 600_000)));
      rmSync(home, { recursive: true, force: true });
      const aria2c = ctx.anchors.aria2c;
      if (aria2c !== undefined) {
        rmSync(out, { recursive: true, force: true });
        ctx.log(`mirrors: aria2c run ${i + 1}/${runs}`);
        const a = await measuredServing(served.aria2c, () => runMeasured(
          aria2c,
          [
            '-x4', '-s16', '-k16M', `--checksum=sha-256=${k.filehash}`,
            '-d', out, '-o', name, '--allow-overwrite=true', '--auto-file-renaming=false',
            '--file-allocation=none', '--summary-interval=0', '--console-log-level=warn', '--enable-dht=false',
            ...servers.ports.map((p) => `http://127.0.0.1:${p}/${k.filehash}`),
          ],
          { timeoutMs: 600_000 },
        ));
        if (a.code !== 0) throw new Error(`aria2c exited ${a.code ?? a.signal}: ${a.stdout.slice(-600)} ${a.stderr.slice(-600)}`);
        ar.push(a);
      }
    }
  } finally {
    servers.stop();
    rmSync(out, { recursive: true, force: true });
  }
  const ceil = ceilingsFor('download', ctx.ceilings);
  const rows: Row[] = [];
  const kRow = rowFrom('mirrors', `kfetch get (${peers} ${servers.kind === 'nginx' ? 'nginx' : 'node'})`, sizeMiB, kf, ceil);
  rows.push(kRow);
  const serverAccount = (runs: { user: number; sys: number }[]): Record<string, number> => ({
    'servers CPU-s/GiB served user': round(median(runs.map((c) => c.user)) / (sizeMiB / 1024), 2),
    'servers CPU-s/GiB served sys': round(median(runs.map((c) => c.sys)) / (sizeMiB / 1024), 2),
  });
  kRow.extra = { ...kRow.extra, ...serverAccount(served.kfetch) };
  const targets: Target[] = [];
  if (ar.length > 0) {
    const aRow = rowFrom('mirrors', 'aria2c -x4 -s16 -k16M', sizeMiB, ar, ceil);
    aRow.extra = { ...aRow.extra, ...serverAccount(served.aria2c) };
    rows.push(aRow);
    const ratio = kRow.seconds! / aRow.seconds!;
    kRow.ratios = { 'aria2c': round(ratio, 3) };
    targets.push({ scenario: 'mirrors', text: `kfetch time ≤ 0.67 × aria2c (${sizeMiB} MiB, ${peers} servers)`, value: `${ratio.toFixed(2)}×`, met: ratio <= 0.67 });
  } else {
    rows.push({ scenario: 'mirrors', tool: 'aria2c', sizeMiB, skipped: 'aria2c not installed (scripts/install-anchors.sh)' });
    targets.push({ scenario: 'mirrors', text: 'kfetch time ≤ 0.67 × aria2c', value: 'aria2c missing', met: null });
  }
  targets.push({ scenario: 'mirrors', text: `kfetch peak RSS ≤ 150 MiB (${sizeMiB} MiB file)`, value: `${kRow.peakRssMiB} MiB`, met: kRow.peakRssMiB! <= 150 });
  return { rows, targets, notes };
}
