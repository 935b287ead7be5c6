// `kfetch seed <kascade>... --data <dir>`: verify each data file in the hash workers (unless --trust), serve the good
// blocks with the block server, and announce every swarm to its tracker until SIGINT/SIGTERM.
// Prints `listening on http://HOST:PORT` on stdout once serving (the first line without --json), for scripts and tests.

import { basename, join } from 'node:path';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { KfetchError } from '../../errors.js';
import { createHashPool, type HashPool } from '../../hashing/pool.js';
import { verifyFile } from '../../hashing/verify-file.js';
import type { Kascade } from '../../kascade/kascade.js';
import { loadKascade } from '../../kascade/load.js';
import { LIMITS } from '../../limits.js';
import { startBlockServer, type BlockServer } from '../../server/block-server.js';
import { Library, VerifiedServedFile } from '../../server/library.js';
import { openDataFileToSeed, type DataChangedError, type DataFile } from '../../store/data-file.js';
import { Announcer } from '../../tracker/announcer.js';
import { Bitfield } from '../../util/bitfield.js';
import { cidrArg, hostNameArg, originArg, intArg, rateArg, secondsArg as secondsArgOf, secondsOrZeroArg } from '../arg-parsers.js';
import type { BoxFlags } from '../box-run.js';
import type { CommandContext } from '../context.js';
import { createProgress } from '../progress.js';

interface SeedFlags extends Omit<BoxFlags, 'watch'> {
  watch?: string;
  data: string;
  port: number;
  host: string;
  trust: boolean;
  json: boolean;
  threads?: number;
  announceInterval?: number;
  maxConcurrent: number;
  maxPerClient: number;
}

/** Bad block indices listed in a warning; the count is always given in full. */
const LIST_BAD_BLOCKS = 20;

const secondsArg = secondsArgOf(86_400);

export function registerSeed(program: Command, ctx: CommandContext): void {
  program
    .command('seed')
    .description(
      'serve complete (or partly good) data files to other peers and announce them to their trackers; with --watch, ' +
        'run a seeding box that serves (and fetches) every kascade in a folder',
    )
    .argument('[kascade...]', 'one or more .kascade/.json files; each is served from <data>/<its filename> (not with --watch)')
    .requiredOption('--data <dir>', 'directory holding the data files, each under the filename its kascade names')
    .option('--watch <dir>', 'box mode: serve every *.kascade / *.json in this folder, picking up files added or removed while running; missing data is downloaded into --data')
    .option('--port <n>', 'port to serve blocks on; 0 picks a free one (printed in the `listening on` line)', intArg(0, 65535), 7001)
    .option('--host <addr>', 'address to listen on (0.0.0.0 or :: for every interface; loopback refuses foreign Host headers)', '127.0.0.1')
    .option('--trust', 'skip verifying the data files against the block hashes (only for files you know are good; not in box mode, which verifies a data file once and remembers)', false)
    .option('--json', 'print verification progress and a `seeding` summary as JSON lines on stdout (box: one `box` line once the folder is read)', false)
    .option('--threads <n>', 'hashing worker threads for verification (default: the number of cores)', intArg(1, 1024))
    .option(
      '--announce-interval <s>',
      `seconds between announces when the tracker names no interval; also the shortest tracker interval accepted ` +
        `(default ${LIMITS.announceIntervalDefaultMs / 1000})`,
      secondsArg,
    )
    .option(
      '--wire-port <n>',
      'also serve the binary peer wire (docs/spec-peer-wire.md) on this port, advertised to kfetch clients in an ' +
        'X-Kascade-Wire header; 0 picks a free one (printed as `wire on HOST:PORT`). Off by default',
      intArg(0, 65535),
    )
    .option('--max-concurrent <n>', 'block requests served at once, overall; more get 503 + Retry-After', intArg(1, 100_000), LIMITS.serverMaxConcurrent)
    .option('--max-per-client <n>', 'block requests served at once per client address', intArg(1, 100_000), LIMITS.serverMaxPerClient)
    .option('--max-upload <rate>', 'total upload rate, bytes/s with K/M/G suffixes (1024-based), shared fairly between clients; 0 = no limit', rateArg, 0)
    .option('--max-peers <n>', 'client addresses served at once; more get 503 + Retry-After', intArg(1, 100_000), LIMITS.serverMaxClients)
    .option('--max-downloads <n>', 'box: downloads running at once (the rest wait their turn)', intArg(1, 1000), LIMITS.boxMaxDownloads)
    .option('--stall-timeout <s>', 'box: a download with no verified block for this long gives its slot up and waits its turn again (back-off 30 s doubling to 1 h); 0 = never', secondsOrZeroArg(86_400 * 30), LIMITS.boxStallTimeoutMs / 1000)
    .option('--max-open-files <n>', 'box: data files kept open at once (idle ones close after a minute)', intArg(1, 100_000), LIMITS.boxMaxOpenFiles)
    .option('--rescan-interval <s>', 'box: rescan the watch folder this often besides file-system events (SIGHUP rescans at once)', secondsArgOf(86_400), LIMITS.boxRescanMs / 1000)
    .option('--scrub-interval <s>', 'box: re-verify one complete file this often, least recently checked first, so bit rot is caught before peers ban us; 0 = never', secondsOrZeroArg(86_400 * 365), LIMITS.boxScrubMs / 1000)
    .option('--metrics-allow <addr/cidr>', 'box: also let these addresses read /metrics and /status (repeatable; loopback always may)', cidrArg)
    .option(
      '--on-done <cmd>',
      'box: run this command each time a kascade becomes complete (downloaded or verified); its facts are in KFETCH_* ' +
        'environment variables. Split into words like a shell would, without a shell or any expansion; the program ' +
        'is an absolute path or found on PATH',
    )
    .option('--on-error <cmd>', 'box: run this command each time a kascade fails (KFETCH_ERROR says why); as --on-done')
    .option('--api-port <n>', 'box: serve the control API (/api/v1/) and page (/ui/) on this port instead of the box\'s own (0 picks one)', intArg(0, 65535))
    .option('--api-allow <addr/cidr>', 'box: also let these addresses use the control API and page (repeatable; loopback always may; a token is still needed)', cidrArg)
    .option('--api-host <name>', 'box: a Host name the API accepts besides IP addresses and localhost, e.g. behind a reverse proxy (repeatable; guards against DNS rebinding)', hostNameArg)
    .option('--api-cors <origin>', 'box: let a web page from this origin call the API (e.g. https://dash.example:8443); off by default', originArg)
    .addHelpText(
      'after',
      '\nEach data file is opened once, read-only, never through a symlink, and must have the kascade\'s filesize.\n' +
        'Without --trust every block is re-hashed first; bad blocks are reported and not served.\n' +
        'Runs until SIGINT or SIGTERM, then tells the trackers (event=stopped), closes and exits 0.\n\n' +
        'Box mode (--watch): one process for a whole library, for months. Kascades that fail to parse, or repeat\n' +
        'another\'s filehash, are reported and skipped. Files complete in the state are served without re-hashing,\n' +
        'opened only when a request needs them. A data file found in --data is verified once; a missing one is\n' +
        'downloaded. GET /metrics (Prometheus) and GET /status (JSON) on the same port, from loopback or\n' +
        '--metrics-allow. SIGHUP re-reads the folder; SIGINT/SIGTERM stops within a few seconds and exits 0.',
    )
    .action(async (paths: string[], flags: SeedFlags) => {
      if (flags.watch === undefined) {
        // Box-only flags are refused without --watch, never silently ignored.
        const boxOnly: [string, unknown][] = [
          ['--on-done', flags.onDone],
          ['--on-error', flags.onError],
          ['--api-port', flags.apiPort],
          ['--api-allow', flags.apiAllow],
          ['--api-host', flags.apiHost],
          ['--api-cors', flags.apiCors],
        ];
        const given = boxOnly.find(([, v]) => v !== undefined);
        if (given !== undefined) {
          const what = given[0].startsWith('--on-') ? 'hooks need' : 'the control API needs';
          throw new KfetchError('KF_E_USAGE', `${what} box mode (--watch <dir>)`, { field: given[0] });
        }
      }
      if (flags.watch !== undefined) {
        if (paths.length > 0) throw new KfetchError('KF_E_USAGE', 'give either kascade files or --watch <dir>, not both');
        // Loaded only for box mode: its metrics library is not needed by plain seeding, nor by get (RSS).
        const { runBox } = await import('../box-run.js');
        await runBox({ ...flags, watch: flags.watch }, ctx);
        return;
      }
      if (paths.length === 0) throw new KfetchError('KF_E_USAGE', 'name at least one kascade file, or --watch <dir>');
      await runSeed(paths, flags, ctx);
    });
}

/** One swarm to serve: its kascade and open data file. */
interface Opened {
  kascade: Kascade;
  data: DataFile;
}

/** One served swarm, with its verified blocks. */
interface Seeded extends Opened {
  file: VerifiedServedFile;
}

async function runSeed(paths: string[], flags: SeedFlags, ctx: CommandContext): Promise<void> {
  const log = ctx.log();
  const signal = ctx.shutdown;
  const opened: Opened[] = [];
  const announcers: Announcer[] = [];
  let server: BlockServer | undefined;
  try {
    const kascades = await loadAll(paths, signal);
    for (const kascade of kascades) {
      // The parser already refuses names that are not bare; checked again here because this one becomes a path.
      if (basename(kascade.filename) !== kascade.filename || kascade.filename === '..' || kascade.filename === '.') {
        throw new KfetchError('KF_E_KASCADE_NAME', `filename ${JSON.stringify(kascade.filename)} is not a bare file name`, {
          field: 'filename',
        });
      }
      const data = await openDataFileToSeed(join(flags.data, kascade.filename), kascade.filesize);
      opened.push({ kascade, data });
    }
    const seeded = await verifyAll(opened, flags, ctx, log);
    if (seeded === undefined || signal.aborted) return;

    const library = new Library();
    for (const s of seeded) library.add(s.file);
    server = await startBlockServer({
      library,
      host: flags.host,
      port: flags.port,
      log,
      limits: {
        maxConcurrent: flags.maxConcurrent,
        maxPerClient: flags.maxPerClient,
        maxClients: flags.maxPeers,
        maxUploadBytesPerSec: flags.maxUpload,
      },
      wirePort: flags.wirePort,
    });
    ctx.out.write(`listening on ${server.url}\n`);
    if (server.wirePort !== undefined) {
      ctx.out.write(`wire on ${wireAddress(server.host, server.wirePort)}\n`);
      log.info({ wirePort: server.wirePort }, 'serving the peer wire');
    }
    if (flags.json) {
      const files = seeded.map((s) => ({
        filename: s.kascade.filename,
        swarmId: s.kascade.swarmId,
        blockSize: s.file.verifiedBlockSize,
        blocks: s.file.held(s.file.verifiedBlockSize).length,
        held: s.file.held(s.file.verifiedBlockSize).count,
      }));
      ctx.out.write(`${JSON.stringify({ v: 1, event: 'seeding', url: server.url, ...(server.wirePort === undefined ? {} : { wirePort: server.wirePort }), files })}\n`);
    }

    const port = server.port;
    const wirePort = server.wirePort;
    const intervalMs = flags.announceInterval === undefined ? undefined : Math.round(flags.announceInterval * 1000);
    for (const s of seeded) {
      const blockSize = s.file.verifiedBlockSize;
      const a = new Announcer({
        url: s.kascade.tracker,
        trackers: s.kascade.trackers,
        state: () => ({ port, progress: s.file.progress, blocks: { blockSize, bitfield: s.file.held(blockSize) }, ...(wirePort === undefined ? {} : { wirePort }) }),
        log: log.child({ file: s.kascade.filename }),
        ...(intervalMs === undefined
          ? {}
          : { limits: { announceIntervalDefaultMs: intervalMs, announceIntervalMinMs: Math.min(intervalMs, LIMITS.announceIntervalMinMs) } }),
      });
      announcers.push(a);
      a.start();
    }
    for (const s of seeded) {
      log.info({ file: s.kascade.filename, swarm: s.kascade.swarmId, tracker: s.kascade.tracker, ...(s.kascade.trackers.length > 1 ? { trackers: s.kascade.trackers } : {}) }, 'seeding');
    }

    await new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
    log.info({ signal: String(signal.reason) }, 'seed: shutting down');
  } finally {
    // Stop accepting first, tell the trackers we are gone, then let in-flight responses finish and close the fds.
    const closing = server?.close();
    await Promise.all(announcers.map((a) => a.stop()));
    await closing;
    if (server !== undefined) {
      const st = server.stats();
      // What was served, and how much of it over the wire (the wire's bytes are in bytesSent too).
      log.info({ bytesSent: st.bytesSent, statuses: st.statuses, ...(st.wire === undefined ? {} : { wire: st.wire }) }, 'seed: served');
    }
    for (const s of opened) s.data.close();
  }
}

/** `host:port`, an IPv6 host in brackets. */
function wireAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Load every kascade; a bad one ends the command with its error (naming the file). Swarms given twice are refused. */
async function loadAll(paths: string[], signal: AbortSignal): Promise<Kascade[]> {
  const out: Kascade[] = [];
  const seen = new Map<string, string>();
  for (const path of paths) {
    const k = await loadKascade(path, { signal });
    const other = seen.get(k.swarmId);
    if (other !== undefined) {
      throw new KfetchError('KF_E_INPUT', `describes the same swarm as ${other}`, { file: path, detail: { swarmId: k.swarmId } });
    }
    seen.set(k.swarmId, path);
    out.push(k);
  }
  return out;
}

/**
 * Verify each data file at its kascade's largest block size (the size announced) in the hash workers, or trust it.
 * A file with bad blocks is served without them, with a warning naming them. Undefined if shutdown came first.
 */
async function verifyAll(opened: Opened[], flags: SeedFlags, ctx: CommandContext, log: Logger): Promise<Seeded[] | undefined> {
  let pool: HashPool | undefined;
  const seeded: Seeded[] = [];
  try {
    for (const s of opened) {
      const k = s.kascade;
      const blockSize = k.preferredBlockSize;
      const count = k.geometry(blockSize).count;
      // A file found changed by a read (store/data-file.ts checks after every one) is not served any more: its
      // bitfield empties, so its announces say so too. Only a restart verifies it again.
      const onChanged = (err: DataChangedError): void =>
        log.warn({ file: s.data.path, reason: err.reason }, 'data file changed while seeding: no longer served (restart kfetch seed to verify it again)');
      if (flags.trust) {
        seeded.push({ ...s, file: new VerifiedServedFile(k, s.data, Bitfield.full(count), blockSize, onChanged) });
        continue;
      }
      pool ??= createHashPool(flags.threads === undefined ? {} : { threads: flags.threads });
      const progress = createProgress({ label: `verifying ${k.filename}`, total: k.filesize, unit: 'bytes', json: flags.json });
      let held: Bitfield;
      try {
        held = await verifyFile({
          kascade: k,
          blockSize,
          fd: s.data.fd,
          pool,
          signal: ctx.shutdown,
          onProgress: (done) => progress.update(done),
        });
      } catch (err) {
        if (ctx.shutdown.aborted) return undefined;
        throw err instanceof KfetchError ? new KfetchError(err.code, err.message, { file: s.data.path, cause: err }) : err;
      } finally {
        progress.stop();
      }
      seeded.push({ ...s, file: new VerifiedServedFile(k, s.data, held, blockSize, onChanged) });
      const bad: number[] = [];
      for (let i = 0; i < count; i++) if (!held.has(i)) bad.push(i);
      if (bad.length > 0) {
        log.warn(
          {
            file: s.data.path,
            badBlocks: bad.length,
            blocks: count,
            blockSize,
            first: bad.slice(0, LIST_BAD_BLOCKS).join(','),
          },
          `${bad.length} of ${count} blocks do not match the kascade; serving only the ${count - bad.length} good ones`,
        );
      } else {
        log.info({ file: s.data.path, blocks: count, blockSize }, 'verified: every block matches');
      }
    }
    return seeded;
  } finally {
    await pool?.destroy();
  }
}
