// `kfetch get <kascade>...`: download each file (several at once under one global request limit), serving
// verified blocks while it runs; exits 0 when every file is complete and its SHA-256 matched, or keeps seeding.

import type { Command } from 'commander';
import type { Prepared } from '../../client/engine.js';
import { KfetchError } from '../../errors.js';
import type { Kascade } from '../../kascade/kascade.js';
import { loadKascade } from '../../kascade/load.js';
import { intArg } from '../arg-parsers.js';
import type { CommandContext } from '../context.js';
import { addDownloadOptions, runDownloads, type DownloadFlags } from '../download-run.js';

interface GetFlags extends DownloadFlags {
  out: string;
  output?: string;
  overwrite: boolean;
  adopt: boolean;
  blockSize?: number;
}

export function registerGet(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('get')
    .description('download the files named by .kascade files from the swarm, verifying every block')
    .argument('<kascade...>', '.kascade/.json files to download')
    .option('--out <dir>', 'directory to save into, each file under the filename its kascade names', '.')
    .option('-o, --output <path>', 'save to this path instead (only with one kascade)')
    .option('--overwrite', 'replace an existing output file instead of refusing', false)
    .option(
      '--adopt',
      'take over an existing output file (say after a damaged state database): verify its blocks, keep those that match, ' +
        'fetch the rest; a shorter file is extended, a longer one refused (never cut); no file: a plain download',
      false,
    )
    .option(
      '--block-size <bytes>',
      'fetch and verify in blocks of this size, one the kascade offers (default the largest offered: fewest requests; ' +
        'pick 1024 or 4096 to fetch a --compat-2015 file from original 2015 peers that serve only those)',
      intArg(1, 2 ** 32),
    );
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
  if (flags.adopt && flags.overwrite) {
    throw new KfetchError('KF_E_USAGE', '--adopt keeps an existing file\'s good blocks and --overwrite discards them: give one', { field: '--adopt' });
  }
  // Load and validate every kascade before touching any state: a bad one changes nothing.
  const kascades: Kascade[] = [];
  for (const p of paths) {
    const k = await loadKascade(p);
    if (flags.blockSize !== undefined && !k.offers(flags.blockSize)) {
      throw new KfetchError(
        'KF_E_USAGE',
        `--block-size ${flags.blockSize} is not offered; its blockhashes offer ${k.blockSizes.join(', ')}`,
        { file: p, field: '--block-size' },
      );
    }
    kascades.push(k);
  }
  const where = {
    outDir: flags.out,
    ...(flags.output === undefined ? {} : { outPath: flags.output }),
    overwrite: flags.overwrite,
    adopt: flags.adopt,
    ...(flags.blockSize === undefined ? {} : { blockSize: flags.blockSize }),
  };
  await runDownloads(flags, ctx, async (engine) => {
    const prepared: Prepared[] = [];
    for (const k of kascades) prepared.push(await engine.prepareNew(k, where, flags.peer ?? [], ctx.shutdown));
    return prepared;
  });
}
