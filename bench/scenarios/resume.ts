// `resume`: how long `kfetch resume` takes to start fetching on a large download that is 99% complete. The
// download is made 99% durable cheaply: `kfetch get` from a server that only has the first 99% of the file,
// SIGINT once `durable` reaches that (it checkpoints and exits 130). Then `kfetch resume --json` with a full
// server, timed from spawn to the server's first block request (the target: within 1 s, 4 GiB) and to the first
// `progress` event with `received` > 0 (progress events come at most 4 a second, so that one is coarser).

import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runMeasured } from '../measure.js';
import { round } from '../report.js';
import { startStaticServer } from '../static-server.js';
import { KFETCH, kfetchMeasured, makeKascade, rowFrom, testFile, type ScenarioContext, type ScenarioResult } from './common.js';

const BLOCK = 262_144;

interface Progress {
  event: string;
  received?: number;
  durable?: number;
  size?: number;
}

export async function resume(ctx: ScenarioContext): Promise<ScenarioResult> {
  const sizeMiB = ctx.opts.quick ? ctx.opts.sizeMiB : Math.max(ctx.opts.sizeMiB, 4096);
  const dir = join(ctx.dir, 'resume');
  mkdirSync(dir, { recursive: true });
  const file = testFile(ctx, sizeMiB);
  const k = makeKascade(file, join(dir, 'resume.json'), 'http://127.0.0.1:9/announce', BLOCK);
  const blocks = Math.ceil(statSync(file).size / BLOCK);
  const have = Math.floor(blocks * 0.99);
  const partial = await startStaticServer({ file, id: k.filehash, limit: have * BLOCK });
  const home = join(dir, 'home');
  const out = join(dir, 'out');
  ctx.log(`resume: making a ${sizeMiB} MiB download ${have}/${blocks} blocks complete`);
  let interrupted = false;
  try {
    const first = await runMeasured(
      KFETCH,
      ['get', k.path, '--out', out, '--json', '--timeout', '120', '--peer', partial.addr, '--home', home],
      {
        env: { KFETCH_HOME: home },
        timeoutMs: 900_000,
        onLine: (line, _ms, proc) => {
          if (interrupted || !line.startsWith('{')) return;
          const e = JSON.parse(line) as Progress;
          if (e.event === 'progress' && (e.durable ?? 0) >= have * BLOCK) {
            interrupted = true;
            proc.kill('SIGINT');
          }
        },
      },
    );
    if (first.code !== 130) throw new Error(`resume: the first get exited ${first.code ?? first.signal}, not 130: ${first.stderr.slice(-600)}`);
  } finally {
    await partial.close();
  }
  const full = await startStaticServer({ file, id: k.filehash });
  let firstFetchMs = NaN;
  const t0 = performance.now();
  try {
    ctx.log('resume: kfetch resume');
    const m = await kfetchMeasured(['resume', '--json', '--peer', full.addr], home, 600_000, (line, ms) => {
      if (!Number.isNaN(firstFetchMs) || !line.startsWith('{')) return;
      const e = JSON.parse(line) as Progress;
      if (e.event === 'progress' && (e.received ?? 0) > 0) firstFetchMs = ms;
    });
    const row = rowFrom('resume', 'kfetch resume (1% left)', sizeMiB, [m]);
    delete row.MiBps; // it fetches 1% of the file: a rate over the whole size would mean nothing
    const firstRequestMs = (full.firstRequestAt() ?? NaN) - t0;
    const firstServedMs = (full.served[0]?.at ?? NaN) - t0;
    row.extra = { ...row.extra, 'first request ms': round(firstRequestMs, 0), 'first block served ms': round(firstServedMs, 0), 'first progress received>0 ms': round(firstFetchMs, 0) };
    const s = firstRequestMs / 1000;
    return {
      rows: [row],
      targets: [{ scenario: 'resume', text: `fetching again within 1 s of starting (first block request; ${sizeMiB} MiB, 99% done)`, value: `${s.toFixed(2)} s`, met: s <= 1 }],
    };
  } finally {
    await full.close();
    rmSync(out, { recursive: true, force: true });
  }
}
