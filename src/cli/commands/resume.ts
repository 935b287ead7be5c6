// `kfetch resume [<id | filehash | filename>]`: continue every unfinished download in --home (or the one named),
// with the peers it knew plus the tracker's, trusting checkpointed blocks unless the data file changed.

import type { Command } from 'commander';
import type { Prepared } from '../../client/engine.js';
import { KfetchError } from '../../errors.js';
import type { CommandContext } from '../context.js';
import { addDownloadOptions, runDownloads, type DownloadFlags } from '../download-run.js';

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
  const failed: KfetchError[] = [];
  await runDownloads(flags, ctx, async (engine) => {
    const rows = query === undefined ? engine.db.listDownloads().filter((r) => r.status !== 'complete') : engine.db.findDownloads(query);
    if (query !== undefined && rows.length === 0) {
      throw new KfetchError('KF_E_INPUT', `no download matches "${query}" (see kfetch status)`, { field: 'download' });
    }
    if (query !== undefined && rows.length > 1) {
      throw new KfetchError('KF_E_INPUT', `"${query}" matches ${rows.length} downloads; give its id`, { field: 'download' });
    }
    if (rows.length === 0) {
      const any = query === undefined && engine.db.listDownloads().length > 0;
      ctx.log().info(any ? 'nothing to resume: every download is complete' : `no downloads in ${ctx.globals().home}`);
    }
    const prepared: Prepared[] = [];
    for (const row of rows) {
      try {
        prepared.push(await engine.prepareResume(row, flags.peer ?? [], ctx.shutdown));
      } catch (err) {
        // One unusable download (its data file gone, say) must not keep the others from resuming.
        if (!(err instanceof KfetchError) || rows.length === 1) throw err;
        failed.push(err);
        ctx.log().error({ code: err.code, download: row.id, file: err.file }, `cannot resume download ${row.id}: ${err.message}`);
      }
    }
    if (prepared.length === 0 && failed[0] !== undefined) throw failed[0];
    return prepared;
  });
  // The others ran; the command still reports the download it could not resume.
  if (failed[0] !== undefined) throw failed[0];
}
