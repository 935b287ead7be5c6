// `rss`: the downloader's peak RSS must be flat in the file size: `kfetch get` of S and 4 × S (1 and 4 GiB; quick:
// 64 and 256 MiB) from the same plain HTTP servers. Target: both ≤ 130 MiB (issue 11).

import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Measured } from '../measure.js';
import type { Row, Target } from '../report.js';
import { ceilingsFor, kfetchMeasured, makeKascade, rowFrom, testFile, type ScenarioContext, type ScenarioResult } from './common.js';
import { startHttpServers } from './servers.js';

export async function rss(ctx: ScenarioContext): Promise<ScenarioResult> {
  const rows: Row[] = [];
  const targets: Target[] = [];
  const ceil = ceilingsFor('download', ctx.ceilings);
  for (const sizeMiB of [ctx.opts.sizeMiB, ctx.opts.sizeMiB * 4]) {
    const dir = join(ctx.dir, `rss-${sizeMiB}`);
    mkdirSync(dir, { recursive: true });
    const file = testFile(ctx, sizeMiB);
    const k = makeKascade(file, join(dir, 'rss.json'), 'http://127.0.0.1:9/announce');
    const servers = await startHttpServers(dir, file, k.filehash, ctx.opts.peers, ctx.anchors.nginx);
    let m: Measured;
    try {
      const args = ['get', k.path, '--out', join(dir, 'out'), '--json', '--timeout', '60'];
      for (const p of servers.ports) args.push('--peer', `127.0.0.1:${p}`);
      ctx.log(`rss: kfetch get ${sizeMiB} MiB`);
      m = await kfetchMeasured(args, join(dir, 'home'), 900_000);
    } finally {
      servers.stop();
      rmSync(join(dir, 'out'), { recursive: true, force: true });
    }
    const row = rowFrom('rss', `kfetch get (${ctx.opts.peers} ${servers.kind === 'nginx' ? 'nginx' : 'node'})`, sizeMiB, [m], ceil);
    rows.push(row);
    targets.push({ scenario: 'rss', text: `downloader peak RSS ≤ 130 MiB (${sizeMiB} MiB file)`, value: `${row.peakRssMiB} MiB`, met: row.peakRssMiB! <= 130 });
  }
  return { rows, targets };
}
