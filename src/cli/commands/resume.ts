// `kfetch resume [<id | filehash | filename>]`: continue every unfinished download in --home (or the one named),
// with the peers it knew plus the tracker's, trusting checkpointed blocks unless the data file changed.

import type { Command } from 'commander';
import { Engine, type Prepared } from '../../client/engine.js';
import { KfetchError } from '../../errors.js';
import type { CommandContext } from '../context.js';
import { createDownloadView } from '../download-view.js';
import { finishDownloads, seedAfterDownload } from '../download-outcome.js';
import { addDownloadOptions, engineLimits, type DownloadFlags } from './get.js';

export function registerResume(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('resume')
    .description('continue unfinished downloads from the state in --home (all of them, or the one named)')
    .argument('[download]', 'a download id, filehash (or a prefix of 8+ hex digits) or filename, as `kfetch status` shows');
  addDownloadOptions(cmd)
    .addHelpText(
      'after',
      '\nCheckpointed blocks are trusted without re-hashing unless the data file\'s size or mtime changed since the\n' +
        'last checkpoint; then the file is re-verified in the workers first and only bad or missing blocks are fetched.\n' +
        'Peers given with --peer are remembered for later resumes.',
    )
    .action(async (query: string | undefined, flags: DownloadFlags) => {
      await runResume(query, flags, ctx);
    });
}

async function runResume(query: string | undefined, flags: DownloadFlags, ctx: CommandContext): Promise<void> {
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
    const all = engine.db.listDownloads();
    const rows = query === undefined ? all.filter((r) => r.status !== 'complete') : engine.db.findDownloads(query);
    if (query !== undefined && rows.length === 0) {
      throw new KfetchError('KF_E_INPUT', `no download matches "${query}" (see kfetch status)`, { field: 'download' });
    }
    if (query !== undefined && rows.length > 1) {
      throw new KfetchError('KF_E_INPUT', `"${query}" matches ${rows.length} downloads; give its id`, { field: 'download' });
    }
    if (rows.length === 0) {
      ctx.log().info('nothing to resume: every download is complete');
      return;
    }
    const prepared: Prepared[] = [];
    for (const row of rows) prepared.push(await engine.prepareResume(row, flags.peer ?? [], ctx.shutdown));
    const results = await engine.run(prepared, ctx.shutdown);
    view.stop();
    finishDownloads(results, ctx);
    if (flags.seed) await seedAfterDownload(engine, prepared, ctx);
  } finally {
    view.stop();
    await engine.close();
  }
}
