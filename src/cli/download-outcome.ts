// What `get` and `resume` do once the sessions end: report each outcome, turn failures and interruptions into
// the command's error (and so its exit code), and with --seed keep serving and announcing until a signal.

import type { Engine, Prepared } from '../client/engine.js';
import type { SessionResult } from '../client/download-session.js';
import { KfetchError } from '../errors.js';
import type { DownloadRow } from '../store/state-db.js';
import { Announcer } from '../tracker/announcer.js';
import type { CommandContext } from './context.js';

export function finishDownloads(results: { row: DownloadRow; result: SessionResult | KfetchError }[], ctx: CommandContext): void {
  const failed = results.filter((r): r is { row: DownloadRow; result: KfetchError } => r.result instanceof KfetchError);
  for (const f of failed.slice(1)) ctx.log().error({ code: f.result.code, file: f.row.dataPath }, f.result.message);
  if (failed[0] !== undefined) throw failed[0].result;
  if (results.some((r) => !(r.result instanceof KfetchError) && r.result.outcome === 'stopped')) {
    throw new KfetchError('KF_E_INTERRUPTED', 'interrupted; progress is checkpointed — run `kfetch resume` to continue');
  }
}

/** --seed: keep the block server up and announce each complete file with progress 1.0 until SIGINT/SIGTERM. */
export async function seedAfterDownload(engine: Engine, prepared: Prepared[], ctx: CommandContext): Promise<void> {
  const port = engine.server?.port;
  if (port === undefined) return;
  const announcers = prepared.map(
    (p) =>
      new Announcer({
        url: p.init.kascade.tracker,
        log: ctx.log(),
        state: () => ({ port, progress: 1, blocks: { blockSize: p.init.row.blockSize, bitfield: p.init.durable } }),
      }),
  );
  for (const a of announcers) a.start();
  ctx.log().info({ port, files: prepared.length }, 'seeding until SIGINT/SIGTERM');
  if (!ctx.shutdown.aborted) await new Promise((res) => ctx.shutdown.addEventListener('abort', res, { once: true }));
  await Promise.all(announcers.map((a) => a.stop()));
}
