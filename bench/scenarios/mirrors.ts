// `mirrors`: the same file at /<filehash> on N plain HTTP servers (nginx, else the Node static server);
// `kfetch get --peer ...` (MD5 of every block + final SHA-256) against `aria2c -x4 -s16 -k16M --checksum=sha-256`
// from the same servers, alternated A B A B. aria2c runs in the fastest of a fixed set of write configurations
// (calibrate.ts: file allocation and disk cache), picked by one calibration download each at the start and printed.
// Targets (issue 11): kfetch's time ≤ 0.5 × aria2c's at 1 GiB, 4 nginx, both checking the SHA-256; the downloader
// ≤ 3.5 CPU-s per GiB; peak RSS ≤ 130 MiB.

import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { cpuOf, runMeasured, type Measured } from '../measure.js';
import type { Row, Target } from '../report.js';
import { round } from '../report.js';
import { ARIA2_WRITE_CONFIGS, calibrate, calibrationNote, type AnchorConfig, type Calibration } from './calibrate.js';
import {
  MiB, ceilingsFor, downloaderPerGiB, kfetchMeasured, makeKascade, rowFrom, servedPerGiB, testFile,
  type KfetchMeasured, type ScenarioContext, type ScenarioResult,
} from './common.js';
import { startHttpServers } from './servers.js';

/** The calibration downloads are at most this large (about 3 s each for aria2c here). */
const CALIBRATION_MAX_MIB = 512;

/** The SHA-256 (hex) of a file, read in 8 MiB pieces. */
function sha256Of(path: string): string {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(8 * MiB);
  const fd = openSync(path, 'r');
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

export async function mirrors(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { sizeMiB, peers, runs } = ctx.opts;
  const dir = join(ctx.dir, 'mirrors');
  mkdirSync(dir, { recursive: true });
  const file = testFile(ctx, sizeMiB);
  // No tracker: the kascade names a closed port; the servers come from --peer.
  const k = makeKascade(file, join(dir, 'mirrors.json'), 'http://127.0.0.1:9/announce');
  const servers = await startHttpServers(dir, file, k.filehash, peers, ctx.anchors.nginx);
  const serversName = `${peers} ${servers.kind === 'nginx' ? 'nginx' : 'node'}`;
  const notes = [`mirrors: ${peers} × ${servers.kind}${ctx.anchors.nginx === undefined ? ' (nginx not installed)' : ''}`];
  const out = join(dir, 'out');
  const kf: KfetchMeasured[] = [];
  const ar: Measured[] = [];
  /** CPU the servers spent during each run of each downloader (they serve the whole file once per run). */
  const served = { kfetch: [] as { user: number; sys: number }[], aria2c: [] as { user: number; sys: number }[] };
  const measuredServing = async <M extends Measured>(into: { user: number; sys: number }[], run: () => Promise<M>): Promise<M> => {
    const before = cpuOf(servers.pids());
    const m = await run();
    const after = cpuOf(servers.pids());
    into.push({ user: after.user - before.user, sys: after.sys - before.sys });
    return m;
  };
  const aria2c = ctx.anchors.aria2c;
  /** One aria2c download of `/<id>` (the file `name`) from every server into `out`, checking its SHA-256. */
  const aria2Download = async (c: AnchorConfig, id: string, name: string): Promise<Measured> => {
    rmSync(out, { recursive: true, force: true });
    const a = await runMeasured(
      aria2c!,
      [
        '-x4', '-s16', '-k16M', `--checksum=sha-256=${id}`, ...c.args,
        '-d', out, '-o', name, '--allow-overwrite=true', '--auto-file-renaming=false',
        '--summary-interval=0', '--console-log-level=warn', '--enable-dht=false',
        ...servers.ports.map((p) => `http://127.0.0.1:${p}/${id}`),
      ],
      { timeoutMs: 600_000 },
    );
    rmSync(out, { recursive: true, force: true });
    if (a.code !== 0) throw new Error(`aria2c exited ${a.code ?? a.signal}: ${a.stdout.slice(-600)} ${a.stderr.slice(-600)}`);
    return a;
  };
  let cal: Calibration | undefined;
  let aria2Problem: string | undefined = aria2c === undefined ? 'aria2c not installed (scripts/install-anchors.sh)' : undefined;
  try {
    if (aria2c !== undefined) {
      // The calibration file: the scenario's own when it is small enough (or the servers serve only it).
      const calMiB = Math.min(sizeMiB, CALIBRATION_MAX_MIB);
      let calFile = file;
      let calId = k.filehash;
      if (calMiB < sizeMiB && !ctx.opts.quick) {
        const f = testFile(ctx, calMiB);
        const id = sha256Of(f);
        if (servers.add(f, id)) [calFile, calId] = [f, id];
      }
      const calSize = calFile === file ? sizeMiB : calMiB;
      try {
        if (ctx.opts.quick) {
          // --quick (CI's smoke test, kept short): the usual winner, not calibrated.
          cal = { best: ARIA2_WRITE_CONFIGS[2]!, sizeMiB: 0, runs: [] };
          notes.push(`mirrors: aria2c ${cal.best.label} (not calibrated under --quick)`);
        } else {
          cal = await calibrate('mirrors: aria2c', ARIA2_WRITE_CONFIGS, calSize, (c) => aria2Download(c, calId, basename(calFile)), ctx.log);
          notes.push(calibrationNote(`mirrors: aria2c -x4 -s16 -k16M --checksum=sha-256`, cal));
        }
      } catch (err) {
        // A failing anchor is reported, not a failure of the bench.
        aria2Problem = `FAILED: ${(err instanceof Error ? err.message : String(err)).slice(0, 200)}`;
      }
    }
    for (let i = 0; i < runs; i++) {
      rmSync(out, { recursive: true, force: true });
      const home = join(dir, `home-${i}`);
      const args = ['get', k.path, '--out', out, '--json', '--timeout', '60'];
      for (const p of servers.ports) args.push('--peer', `127.0.0.1:${p}`);
      ctx.log(`mirrors: kfetch run ${i + 1}/${runs}`);
      kf.push(await measuredServing(served.kfetch, () => kfetchMeasured(args, home, 600_000)));
      rmSync(home, { recursive: true, force: true });
      if (cal !== undefined && aria2Problem === undefined) {
        ctx.log(`mirrors: aria2c run ${i + 1}/${runs}`);
        try {
          ar.push(await measuredServing(served.aria2c, () => aria2Download(cal!.best, k.filehash, basename(file))));
        } catch (err) {
          aria2Problem = `FAILED: ${(err instanceof Error ? err.message : String(err)).slice(0, 200)}`;
        }
      }
    }
  } finally {
    servers.stop();
    rmSync(out, { recursive: true, force: true });
  }
  const ceil = ceilingsFor('download', ctx.ceilings);
  const rows: Row[] = [];
  const kRow = rowFrom('mirrors', `kfetch get (${serversName})`, sizeMiB, kf, ceil);
  rows.push(kRow);
  const kServed = servedPerGiB(serversName, served.kfetch, sizeMiB);
  if (kRow.cpu !== undefined && kServed !== undefined) kRow.cpu.served = kServed;
  const targets: Target[] = [];
  if (aria2Problem === undefined && ar.length > 0) {
    const aRow = rowFrom('mirrors', `aria2c -x4 -s16 -k16M --checksum=sha-256 ${cal!.best.label}`, sizeMiB, ar, ceil);
    const aServed = servedPerGiB(serversName, served.aria2c, sizeMiB);
    if (aRow.cpu !== undefined && aServed !== undefined) aRow.cpu.served = aServed;
    rows.push(aRow);
    const ratio = kRow.seconds! / aRow.seconds!;
    kRow.ratios = { aria2c: round(ratio, 3) };
    targets.push({
      scenario: 'mirrors',
      text: `kfetch time ≤ 0.5 × aria2c's (${cal!.best.label}; both check the SHA-256; ${sizeMiB} MiB, ${serversName})`,
      value: `${kRow.seconds!.toFixed(2)} / ${aRow.seconds!.toFixed(2)} s = ${ratio.toFixed(2)}×`,
      met: ratio <= 0.5,
    });
  } else {
    rows.push({ scenario: 'mirrors', tool: 'aria2c', sizeMiB, skipped: aria2Problem ?? 'no run' });
    targets.push({ scenario: 'mirrors', text: 'kfetch time ≤ 0.5 × aria2c', value: `aria2c ${aria2Problem ?? 'missing'}`, met: null });
  }
  const perGiB = downloaderPerGiB(kRow);
  targets.push({
    scenario: 'mirrors',
    text: `downloader ≤ 3.5 CPU-s per GiB (${sizeMiB} MiB)`,
    value: perGiB === undefined ? 'file under 64 MiB' : `${perGiB.toFixed(2)} CPU-s/GiB`,
    met: perGiB === undefined ? null : perGiB <= 3.5,
  });
  targets.push({ scenario: 'mirrors', text: `kfetch peak RSS ≤ 130 MiB (${sizeMiB} MiB file)`, value: `${kRow.peakRssMiB} MiB`, met: kRow.peakRssMiB! <= 130 });
  return { rows, targets, notes };
}
