// `kfetch get <kascade>...`: download each file (several at once under one global request limit), serving
// verified blocks while it runs; exits 0 when every file is complete and its SHA-256 matched, or keeps seeding.

import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { Engine, type Prepared } from '../../client/engine.js';
import { DEFAULT_ENGINE_LIMITS, type EngineLimits } from '../../client/engine-limits.js';
import { KfetchError, fromFsError } from '../../errors.js';
import { loadKascade } from '../../kascade/load.js';
import { intArg, peerArg, secondsOrZeroArg } from '../arg-parsers.js';
import type { CommandContext } from '../context.js';
import { createDownloadView } from '../download-view.js';
import { finishDownloads, seedAfterDownload } from '../download-outcome.js';

export interface DownloadFlags {
  peer?: string[];
  port: number;
  host: string;
  json: boolean;
  seed: boolean;
  serve: boolean;
  threads?: number;
  maxInFlight: number;
  timeout: number;
  checkpointMs: number;
}

interface GetFlags extends DownloadFlags {
  out: string;
  output?: string;
  overwrite: boolean;
}

/** The options `get` and `resume` share. */
export function addDownloadOptions(cmd: Command): Command {
  return cmd
    .option('--peer <host:port>', 'a peer or plain HTTP server holding the file at /<filehash> (repeatable; remembered for resume)', peerArg)
    .option('--port <n>', 'port to serve our verified blocks on while downloading (0: any free port)', intArg(0, 65535), 0)
    .option('--host <addr>', 'address to serve on (0.0.0.0 or :: for every interface)', '127.0.0.1')
    .option('--no-serve', 'do not serve blocks to other peers while downloading')
    .option('--json', 'print newline-delimited JSON events (schema v1, see README) on stdout instead of a progress bar', false)
    .option('--seed', 'keep serving (and announcing) the files after they are complete, until SIGINT/SIGTERM', false)
    .option('--threads <n>', 'worker threads that verify and write blocks (default: the number of cores)', intArg(1, 1024))
    .option('--max-in-flight <n>', 'block requests in flight over all peers and files (each holds one block in memory)', intArg(1, 4096), DEFAULT_ENGINE_LIMITS.maxInFlight)
    .option('--timeout <s>', 'give up (exit 4, resumable) when no block arrived for this many seconds; 0 waits forever', secondsOrZeroArg(86_400 * 30), DEFAULT_ENGINE_LIMITS.stallTimeoutMs / 1000)
    .option('--checkpoint-ms <ms>', 'longest time between checkpoints (fdatasync + state commit)', intArg(10, 60_000), DEFAULT_ENGINE_LIMITS.checkpointMs);
}

export function engineLimits(f: DownloadFlags): EngineLimits {
  return { ...DEFAULT_ENGINE_LIMITS, maxInFlight: f.maxInFlight, stallTimeoutMs: f.timeout * 1000, checkpointMs: f.checkpointMs };
}

export function registerGet(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('get')
    .description('download the files named by .kascade files from the swarm, verifying every block')
    .argument('<kascade...>', '.kascade/.json files to download')
    .option('--out <dir>', 'directory to save into, each file under the filename its kascade names', '.')
    .option('-o, --output <path>', 'save to this path instead (only with one kascade)')
    .option('--overwrite', 'replace an existing output file instead of refusing', false);
  addDownloadOptions(cmd)
    .addHelpText(
      'after',
      '\nPeers come from the tracker, the kascade\'s `peers` list and --peer. Every block is checked against its MD5\n' +
        'before it is written; a peer that sends a bad block is banned. State lives in --home: after a crash or\n' +
        'Ctrl-C, `kfetch resume` continues without fetching again what was already safe.\n' +
        'Exit codes: 0 done, 3 bad input, 4 no peers/network, 5 disk or state, 6 file hash mismatch, 130/143 interrupted.',
    )
    .action(async (paths: string[], flags: GetFlags) => {
      await runGet(paths, flags, ctx);
    });
}

async function runGet(paths: string[], flags: GetFlags, ctx: CommandContext): Promise<void> {
  if (flags.output !== undefined && paths.length !== 1) {
    throw new KfetchError('KF_E_USAGE', '--output names one file; use --out <dir> with several kascades', { field: '--output' });
  }
  // Load and validate every kascade before touching any state: a bad one changes nothing.
  const loaded = [];
  for (const p of paths) {
    const kascade = await loadKascade(p);
    let text: string;
    try {
      text = await readFile(p, 'utf8');
    } catch (err) {
      throw fromFsError(err, p, 'cannot read the kascade');
    }
    loaded.push({ kascade, text });
  }
  const view = createDownloadView({ json: flags.json, out: ctx.out });
  const engine = await Engine.open({
    home: ctx.globals().home,
    log: ctx.log(),
    emit: view.emit,
    limits: engineLimits(flags),
    ...(flags.threads === undefined ? {} : { threads: flags.threads }),
    ...(flags.serve ? { serve: { host: flags.host, port: flags.port } } : {}),
  });
  try {
    const prepared: Prepared[] = [];
    for (const { kascade, text } of loaded) {
      prepared.push(
        await engine.prepareNew(
          kascade,
          text,
          { outDir: flags.out, ...(flags.output === undefined ? {} : { outPath: flags.output }), overwrite: flags.overwrite },
          flags.peer ?? [],
        ),
      );
    }
    const results = await engine.run(prepared, ctx.shutdown);
    view.stop();
    finishDownloads(results, ctx);
    if (flags.seed) await seedAfterDownload(engine, prepared, ctx);
  } finally {
    view.stop();
    await engine.close();
  }
}
