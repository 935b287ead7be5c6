// `create`: `kfetch create` (one read pass, MD5 per block + SHA-256) against `md5sum` then `sha256sum` on the same
// warm file, alternated. Target: kfetch ≤ 1.2 × (md5sum + sha256sum). (Folded in from bench/create.ts.)

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runMeasured, type Measured } from '../measure.js';
import { round } from '../report.js';
import { KFETCH, ceilingsFor, rowFrom, testFile, type ScenarioContext, type ScenarioResult } from './common.js';

async function must(cmd: string, args: string[]): Promise<Measured> {
  const m = await runMeasured(cmd, args, { timeoutMs: 600_000 });
  if (m.code !== 0) throw new Error(`${cmd} exited ${m.code ?? m.signal}: ${m.stderr.slice(-600)}`);
  return m;
}

export async function create(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { sizeMiB, runs } = ctx.opts;
  const dir = join(ctx.dir, 'create');
  mkdirSync(dir, { recursive: true });
  const file = testFile(ctx, sizeMiB);
  const out = join(dir, 'create.json');
  const md5: Measured[] = [];
  const sha: Measured[] = [];
  const both: Measured[] = [];
  const kf: Measured[] = [];
  for (let i = 0; i < runs; i++) {
    ctx.log(`create: run ${i + 1}/${runs}`);
    const a = await must('md5sum', [file]);
    const b = await must('sha256sum', [file]);
    md5.push(a);
    sha.push(b);
    both.push({ ...b, seconds: a.seconds + b.seconds, cpuSeconds: a.cpuSeconds + b.cpuSeconds, userSeconds: a.userSeconds + b.userSeconds, sysSeconds: a.sysSeconds + b.sysSeconds, peakRssMiB: Math.max(a.peakRssMiB, b.peakRssMiB) });
    const k = await must(KFETCH, ['create', file, '--tracker', 'http://127.0.0.1:9/announce', '-o', out, '--force']);
    const filehash = /filehash ([0-9a-f]{64})/.exec(k.stdout)?.[1];
    if (filehash !== b.stdout.split(' ')[0]) throw new Error(`kfetch create filehash ${filehash} != sha256sum's`);
    kf.push(k);
  }
  const ceil = ceilingsFor('create', ctx.ceilings);
  const kRow = rowFrom('create', 'kfetch create', sizeMiB, kf, ceil);
  const bothRow = rowFrom('create', 'md5sum + sha256sum', sizeMiB, both);
  const ratio = kRow.seconds! / bothRow.seconds!;
  kRow.ratios = { 'md5sum+sha256sum': round(ratio, 3) };
  return {
    rows: [kRow, bothRow, rowFrom('create', 'md5sum', sizeMiB, md5), rowFrom('create', 'sha256sum', sizeMiB, sha)],
    targets: [{ scenario: 'create', text: `kfetch create ≤ 1.2 × (md5sum + sha256sum) (${sizeMiB} MiB)`, value: `${ratio.toFixed(2)}×`, met: ratio <= 1.2 }],
  };
}
