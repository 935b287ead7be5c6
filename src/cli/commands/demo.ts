// `kfetch demo`: the main job on an embedded default. Makes a test file in a temporary directory, starts the
// tracker and three seeders as child processes on 127.0.0.1, downloads the file with the progress bar, prints the
// throughput and the verified hash, and removes everything it made.

import { randomFillSync } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { Engine } from '../../client/engine.js';
import { DEFAULT_ENGINE_LIMITS } from '../../client/engine-limits.js';
import { createKascade } from '../../hashing/create-kascade.js';
import { createHashPool } from '../../hashing/pool.js';
import { loadKascade } from '../../kascade/load.js';
import { serializeKascade } from '../../kascade/serialize.js';
import { LIMITS } from '../../limits.js';
import { intArg } from '../arg-parsers.js';
import type { CommandContext } from '../context.js';
import { createDownloadView } from '../download-view.js';
import { finishDownloads } from '../download-run.js';
import { startKfetchChild, stopChildren, type Child } from '../local-swarm.js';
import { createProgress } from '../progress.js';

interface DemoFlags {
  size: number;
  seeders: number;
  json: boolean;
  keep: boolean;
}

const MiB = 1024 * 1024;

export function registerDemo(program: Command, ctx: CommandContext): void {
  program
    .command('demo')
    .description('download a generated file from a local tracker and seeders (child processes on 127.0.0.1), then clean up')
    .option('--size <MiB>', 'size of the generated file in MiB', intArg(1, 65_536), 256)
    .option('--seeders <n>', 'number of seeder processes', intArg(1, 32), 3)
    .option('--json', 'print download events as JSON lines instead of a progress bar', false)
    .option('--keep', 'keep the temporary directory (printed at the end) instead of removing it', false)
    .action(async (flags: DemoFlags) => {
      await runDemo(flags, ctx);
    });
}

async function runDemo(flags: DemoFlags, ctx: CommandContext): Promise<void> {
  const say = (s: string): void => {
    if (!flags.json) ctx.out.write(`${s}\n`);
  };
  const dir = mkdtempSync(join(tmpdir(), 'kfetch-demo-'));
  const children: Child[] = [];
  try {
    const seedDir = join(dir, 'seed');
    mkdirSync(seedDir);
    const dataPath = join(seedDir, 'demo.bin');
    say(`making a ${flags.size} MiB test file in ${dir}`);
    writeRandomFile(dataPath, flags.size * MiB);

    const tracker = await startKfetchChild(['tracker', '--port', '0'], { KFETCH_HOME: join(dir, 'home-tracker') });
    children.push(tracker);
    say(`tracker   ${tracker.url}`);

    const pool = createHashPool();
    let kascadePath: string;
    try {
      const bar = createProgress({ label: 'hashing', total: flags.size * MiB, unit: 'bytes', json: false });
      const k = await createKascade({ path: dataPath, tracker: tracker.url, blockSizes: [LIMITS.defaultBlockSize], pool, onProgress: (d) => bar.update(d) });
      bar.stop();
      kascadePath = join(dir, 'demo.json');
      writeFileSync(kascadePath, serializeKascade(k));
    } finally {
      await pool.destroy();
    }

    for (let i = 0; i < flags.seeders; i++) {
      const s = await startKfetchChild(['seed', kascadePath, '--data', seedDir, '--port', '0', '--trust'], { KFETCH_HOME: join(dir, `home-seed-${i}`) });
      children.push(s);
      say(`seeder ${i + 1}  ${s.url}`);
    }

    const view = createDownloadView({ json: flags.json, out: ctx.out });
    const engine = await Engine.open({
      home: join(dir, 'home-get'),
      log: ctx.log(),
      emit: view.emit,
      limits: DEFAULT_ENGINE_LIMITS,
      serve: { host: '127.0.0.1', port: 0 },
    });
    try {
      const prepared = await engine.prepareNew(await loadKascade(kascadePath), { outDir: join(dir, 'download') }, []);
      const t0 = performance.now();
      const results = await engine.run([prepared], ctx.shutdown);
      const secs = (performance.now() - t0) / 1000;
      view.stop();
      finishDownloads(results, ctx);
      say(`\ndownloaded ${flags.size} MiB from ${flags.seeders} seeders in ${secs.toFixed(2)} s: ${(flags.size / secs).toFixed(0)} MiB/s`);
      say(`sha256 ${prepared.init.row.filehash} verified (every block's MD5 checked too)`);
    } finally {
      view.stop();
      await engine.close();
    }
  } finally {
    await stopChildren(children);
    if (flags.keep) say(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

/** Random bytes, written 4 MiB at a time (never the whole file in memory). */
function writeRandomFile(path: string, size: number): void {
  const fd = openSync(path, 'w');
  try {
    const buf = Buffer.allocUnsafe(Math.min(4 * MiB, size));
    for (let off = 0; off < size; off += buf.length) {
      const n = Math.min(buf.length, size - off);
      randomFillSync(buf, 0, n);
      writeSync(fd, buf, 0, n, off);
    }
  } finally {
    closeSync(fd);
  }
}
