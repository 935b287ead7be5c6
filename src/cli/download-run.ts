// What `get` and `resume` share: their download flags, opening the engine, running the sessions, turning
// failures and interruptions into the command's error (and so its exit code), and --seed serving afterwards.

import type { Command } from 'commander';
import { Engine, type Prepared } from '../client/engine.js';
import { DEFAULT_ENGINE_LIMITS, type EngineLimits } from '../client/engine-limits.js';
import type { SessionResult } from '../client/download-session.js';
import { KfetchError } from '../errors.js';
import type { DownloadRow } from '../store/state-db.js';
import { Announcer } from '../tracker/announcer.js';
import { intArg, peerArg, secondsOrZeroArg } from './arg-parsers.js';
import type { CommandContext } from './context.js';
import { createDownloadView } from './download-view.js';

export interface DownloadFlags {
  peer?: string[];
  port: number;
  host: string;
  json: boolean;
  seed: boolean;
  serve: boolean;
  threads?: number;
  maxInFlight: number;
  maxInFlightBytes: number;
  timeout: number;
  checkpointMs: number;
  maxRangeBytes: number;
  requestMs: number;
  /** Serve the binary peer wire on this port too (undefined: not). */
  wirePort?: number;
  /** Fetch over the peer wire from peers that advertise it (--no-wire: false). */
  wire: boolean;
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
    .option('--threads <n>', 'worker threads that verify and write blocks (default: the number of cores less one, at least 1)', intArg(1, 1024))
    .option('--max-in-flight <n>', 'requests in flight over all peers and files (also bounded by --max-in-flight-bytes; per peer by its measured rate × latency)', intArg(1, 4096), DEFAULT_ENGINE_LIMITS.maxInFlight)
    .option('--max-in-flight-bytes <bytes>', 'memory for the bodies of requests in flight (a request of one block takes its size, a multi-block range up to --max-range-bytes)', intArg(1024 * 1024, 4 * 1024 * 1024 * 1024), DEFAULT_ENGINE_LIMITS.maxInFlightBytes)
    .option('--timeout <s>', 'give up (exit 4, resumable) when no block arrived for this many seconds; 0 waits forever', secondsOrZeroArg(86_400 * 30), DEFAULT_ENGINE_LIMITS.stallTimeoutMs / 1000)
    .option('--max-range-bytes <bytes>', 'largest multi-block range asked of one peer at once (kfetch seeders, HTTP servers)', intArg(512, 64 * 1024 * 1024), DEFAULT_ENGINE_LIMITS.maxRangeBytes)
    .option('--request-ms <ms>', 'size a multi-block range to about this much of its peer\'s measured throughput, at least one block, at most --max-range-bytes (0: always --max-range-bytes)', intArg(0, 60_000), DEFAULT_ENGINE_LIMITS.requestMs)
    .option('--wire-port <n>', 'while serving, also serve the binary peer wire on this port (0: any free port); off by default', intArg(0, 65535))
    .option('--no-wire', 'never fetch over the binary peer wire, even from peers that advertise it (X-Kascade-Wire): HTTP only')
    .option('--checkpoint-ms <ms>', 'longest time between checkpoints (fdatasync + state commit)', intArg(10, 60_000), DEFAULT_ENGINE_LIMITS.checkpointMs);
}

export function engineLimits(f: DownloadFlags): EngineLimits {
  return {
    ...DEFAULT_ENGINE_LIMITS,
    maxInFlight: f.maxInFlight,
    maxInFlightBytes: f.maxInFlightBytes,
    stallTimeoutMs: f.timeout * 1000,
    checkpointMs: f.checkpointMs,
    maxRangeBytes: f.maxRangeBytes,
    requestMs: f.requestMs,
  };
}


/**
 * Open the engine with the flags, let `prepare` pick the sessions, run them, report, and with --seed keep serving.
 * Shared by `get` and `resume`; the engine is always closed.
 */
export async function runDownloads(flags: DownloadFlags, ctx: CommandContext, prepare: (engine: Engine) => Promise<Prepared[]>): Promise<void> {
  if (!flags.serve && flags.wirePort !== undefined) {
    throw new KfetchError('KF_E_USAGE', '--wire-port serves the peer wire beside the block server, which --no-serve turns off: give one', { field: '--wire-port' });
  }
  const view = createDownloadView({ json: flags.json, out: ctx.out });
  const engine = await Engine.open({
    home: ctx.globals().home,
    log: ctx.log(),
    emit: view.emit,
    limits: engineLimits(flags),
    ...(flags.threads === undefined ? {} : { threads: flags.threads }),
    ...(flags.serve ? { serve: { host: flags.host, port: flags.port, ...(flags.wirePort === undefined ? {} : { wirePort: flags.wirePort }) } } : {}),
    useWire: flags.wire && process.env.KFETCH_NO_WIRE !== '1',
  });
  try {
    const prepared = await prepare(engine);
    if (prepared.length === 0) return;
    const results = await engine.run(prepared, ctx.shutdown);
    view.stop();
    finishDownloads(results, ctx);
    if (flags.seed) await seedAfterDownload(engine, prepared, ctx);
  } finally {
    view.stop();
    await engine.close();
  }
}


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
  const wirePort = engine.server?.wirePort;
  const announcers = prepared.map(
    (p) =>
      new Announcer({
        url: p.init.kascade.tracker,
        trackers: p.init.kascade.trackers,
        log: ctx.log(),
        state: () => ({ port, progress: 1, blocks: { blockSize: p.init.row.blockSize, bitfield: p.init.durable }, ...(wirePort === undefined ? {} : { wirePort }) }),
      }),
  );
  for (const a of announcers) a.start();
  ctx.log().info({ port, files: prepared.length }, 'seeding until SIGINT/SIGTERM');
  if (!ctx.shutdown.aborted) await new Promise((res) => ctx.shutdown.addEventListener('abort', res, { once: true }));
  await Promise.all(announcers.map((a) => a.stop()));
}
