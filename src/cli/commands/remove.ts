// `kfetch remove <download>`: forget a download kept in --home (its state, checkpoints, peers); the data file
// stays unless --delete-data. The way out for a download whose data file is gone or that is not wanted any more.

import { rmSync } from 'node:fs';
import type { Command } from 'commander';
import { KfetchError } from '../../errors.js';
import { lockHome } from '../../store/home-lock.js';
import { StateDb } from '../../store/state-db.js';
import type { CommandContext } from '../context.js';

export function registerRemove(program: Command, ctx: CommandContext): void {
  program
    .command('remove')
    .description('forget a download kept in --home (the data file stays unless --delete-data)')
    .argument('<download>', 'a download id, filehash (or a prefix of 8+ hex digits) or filename, as `kfetch status` shows')
    .option('--delete-data', 'also delete the data file', false)
    .action((query: string, flags: { deleteData: boolean }) => {
      const home = ctx.globals().home;
      const lock = lockHome(home);
      const db = StateDb.open(home);
      try {
        const rows = db.findDownloads(query);
        if (rows.length !== 1) {
          throw new KfetchError('KF_E_INPUT', rows.length === 0 ? `no download matches "${query}" (see kfetch status)` : `"${query}" matches ${rows.length} downloads; give its id`, { field: 'download' });
        }
        const row = rows[0]!;
        db.removeDownload(row.id);
        if (flags.deleteData) rmSync(row.dataPath, { force: true });
        ctx.out.write(`removed download ${row.id} (${row.filename})${flags.deleteData ? `, deleted ${row.dataPath}` : `; data file kept at ${row.dataPath}`}\n`);
      } finally {
        db.close();
        lock.release();
      }
    });
}
