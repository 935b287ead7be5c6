// `kfetch tracker`: run the Kascade tracker kfetch ships (src/tracker/tracker-server.ts) until SIGINT/SIGTERM.
// Prints `listening on http://HOST:PORT` (the real port) as its first stdout line, for scripts and tests.

import type { Command } from 'commander';
import { LIMITS } from '../../limits.js';
import { startTracker } from '../../tracker/tracker-server.js';
import { intArg, secondsArg as secondsArgOf } from '../arg-parsers.js';
import type { CommandContext } from '../context.js';

const portArg = intArg(0, 65535);
const secondsArg = secondsArgOf(86_400);

interface TrackerFlags {
  host: string;
  port: number;
  interval: number;
  minInterval?: number;
  expiry?: number;
}

export function registerTracker(program: Command, ctx: CommandContext): void {
  program
    .command('tracker')
    .description('run a Kascade tracker: peers announce to http://HOST:PORT/peers/<filehash>.json (POST or PUT)')
    .option('--host <addr>', 'address to listen on (0.0.0.0 or :: for every interface)', '127.0.0.1')
    .option('--port <n>', 'port to listen on; 0 picks a free one (printed on the first line)', portArg, 7000)
    .option('--interval <s>', 'announce interval the tracker expects, in seconds', secondsArg, LIMITS.trackerIntervalMs / 1000)
    .option(
      '--min-interval <s>',
      `shortest gap between two announces of one peer; sooner gets 403 + Retry-After (default ${LIMITS.trackerMinIntervalMs / 1000}, at most --interval)`,
      secondsArg,
    )
    .option(
      '--expiry <s>',
      `drop peers not heard from for this long (default ${LIMITS.trackerExpiryIntervals} × --interval)`,
      secondsArg,
    )
    .addHelpText(
      'after',
      '\nReplies list at most ' +
        `${LIMITS.trackerReplyPeers} random other peers of the swarm as JSON. event=stopped removes the caller.\n` +
        'Runs until SIGINT or SIGTERM, then closes and exits 0.',
    )
    .action(async (flags: TrackerFlags) => {
      const log = ctx.log();
      const intervalMs = Math.round(flags.interval * 1000);
      const tracker = await startTracker({
        host: flags.host,
        port: flags.port,
        log,
        intervalMs,
        ...(flags.minInterval === undefined ? {} : { minIntervalMs: Math.round(flags.minInterval * 1000) }),
        ...(flags.expiry === undefined ? {} : { expiryMs: Math.round(flags.expiry * 1000) }),
      });
      try {
        ctx.out.write(`listening on ${tracker.url}\n`);
        await new Promise<void>((resolve) => {
          if (ctx.shutdown.aborted) return resolve();
          ctx.shutdown.addEventListener('abort', () => resolve(), { once: true });
        });
        log.info({ signal: String(ctx.shutdown.reason) }, 'tracker: shutting down');
      } finally {
        await tracker.close();
      }
    });
}
