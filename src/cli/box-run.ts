// `kfetch seed --watch <dir> --data <dir>`: the seeding box. Opens the engine (home lock, state, hash workers, one
// block server with fair serving and /metrics + /status), starts the SeedBox on the watch folder, re-reads it on
// SIGHUP, and on SIGINT/SIGTERM stops accepting, ends downloads at a checkpoint, tells the trackers, closes the
// database and returns (exit 0). Writes <home>/box.json while running so `kfetch status` can find it.

import { rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Engine } from '../client/engine.js';
import { DEFAULT_ENGINE_LIMITS } from '../client/engine-limits.js';
import { KfetchError, fromFsError } from '../errors.js';
import { BOX_INFO_FILE, type BoxInfo } from '../box/box-info.js';
import { BoxMetrics } from '../box/box-metrics.js';
import { boxStatus } from '../box/box-status.js';
import { entryId } from '../box/entry-id.js';
import type { BoxEntry } from '../box/entry-registry.js';
import { HookRunner, type HookEvent } from '../box/hooks.js';
import { SeedBox } from '../box/seed-box.js';
import { LIMITS } from '../limits.js';
import { accessList } from '../peer/access-list.js';
import { createAnnounceStats } from '../tracker/announce-stats.js';
import { makeDirs } from '../util/make-dirs.js';
import type { CommandContext } from './context.js';
import { startBoxApi, type BoxApi } from './box-api.js';
import { isApiTarget } from '../api/api-server.js';

export interface BoxFlags {
  watch: string;
  data: string;
  port: number;
  host: string;
  maxUpload: number;
  maxPeers: number;
  maxConcurrent: number;
  maxPerClient: number;
  maxDownloads: number;
  stallTimeout: number;
  maxOpenFiles: number;
  rescanInterval: number;
  scrubInterval: number;
  metricsAllow?: string[];
  /** The control API on its own port (undefined: on the box's port). */
  apiPort?: number;
  apiAllow?: string[];
  apiHost?: string[];
  apiCors?: string;
  threads?: number;
  announceInterval?: number;
  /** Hook commands (hooks.ts), run per kascade that becomes complete / fails. */
  onDone?: string;
  onError?: string;
  json: boolean;
  /** Also serve the binary peer wire on this port (0: any free one); undefined: not. */
  wirePort?: number;
}


/** How long shutdown waits for downloads to checkpoint and trackers to hear `stopped`. */
const STOP_DEADLINE_MS = 4_000;

export async function runBox(flags: BoxFlags, ctx: CommandContext): Promise<void> {
  const log = ctx.log();
  const home = ctx.globals().home;
  const watchDir = resolve(flags.watch);
  const dataDir = resolve(flags.data);
  try {
    if (!statSync(watchDir).isDirectory()) throw new KfetchError('KF_E_INPUT', `--watch ${watchDir} is not a directory`, { file: watchDir, field: 'watch' });
  } catch (err) {
    throw err instanceof KfetchError ? err : fromFsError(err, watchDir, '--watch folder');
  }
  makeDirs(dataDir, 'cannot create the --data folder');
  // Before anything starts: a hook command that cannot run is a usage error now, not a warning per kascade later.
  const hooks = new HookRunner({ onDone: flags.onDone, onError: flags.onError, log });
  const hook = (event: HookEvent, e: BoxEntry): void => {
    try {
      const k = e.kascade;
      hooks.run(event, {
        id: entryId(e.path),
        file: e.path,
        name: k?.filename,
        filehash: k?.filehash,
        size: k?.filesize,
        data: e.dataPath,
        state: e.state,
        error: e.error,
      });
    } catch (err) {
      log.warn({ file: e.path, hook: event, err: String(err) }, 'hook: not run');
    }
  };

  let box: SeedBox | undefined;
  const announces = createAnnounceStats();
  let engine: Engine | undefined;
  const metrics = new BoxMetrics({ box: () => box, server: () => engine?.server?.stats(), announces: () => announces, transport: () => engine?.transport() });
  const allowed = accessList(flags.metricsAllow ?? []);
  // The control API and page: on this port unless --api-port; bound once the box exists.
  let boxApi: BoxApi | undefined;
  const onOurPort = flags.apiPort === undefined;
  engine = await Engine.open({
    home,
    log,
    emit: (e) => box?.onEvent(e),
    // A box waits for peers as long as it takes: a download with no peer yet is not an error.
    limits: { ...DEFAULT_ENGINE_LIMITS, stallTimeoutMs: 0 },
    // The box has no --no-wire; the environment switch reaches its downloads as it does `get`'s (spec-peer-wire.md).
    useWire: process.env.KFETCH_NO_WIRE !== '1',
    ...(flags.threads === undefined ? {} : { threads: flags.threads }),
    serve: {
      host: flags.host,
      port: flags.port,
      ...(flags.wirePort === undefined ? {} : { wirePort: flags.wirePort }),
      limits: {
        maxConcurrent: flags.maxConcurrent,
        maxPerClient: flags.maxPerClient,
        maxClients: flags.maxPeers,
        maxUploadBytesPerSec: flags.maxUpload,
      },
      observability: {
        metrics: () => metrics.text(),
        status: () => (box === undefined || engine === undefined ? {} : boxStatus(box, engine, info)),
        allowed,
      },
      ...(onOurPort
        ? { extraRoutes: { claims: isApiTarget, handle: (req, res) => (boxApi === undefined ? void res.writeHead(503, { 'Retry-After': '1' }).end() : boxApi.handler(req, res)) } }
        : {}),
    },
  });
  const server = engine.server!;
  const info: BoxInfo = { pid: process.pid, url: server.url, watch: watchDir, data: dataDir, startedAt: new Date().toISOString() };
  const infoPath = join(home, BOX_INFO_FILE);
  const onHup = (): void => {
    log.info({ dir: watchDir }, 'SIGHUP: re-reading the watch folder');
    box?.rescan().catch((err: unknown) => log.warn({ err: String(err) }, 'rescan failed'));
  };
  try {
    engine.db.onCheckpointCommitted = (s) => metrics.observeCheckpoint(s);
    const intervalMs = flags.announceInterval === undefined ? undefined : Math.round(flags.announceInterval * 1000);
    box = new SeedBox({
      watchDir,
      dataDir,
      engine,
      log,
      port: () => server.port,
      wirePort: () => server.wirePort,
      maxDownloads: flags.maxDownloads,
      stallTimeoutMs: flags.stallTimeout * 1000,
      maxOpenFiles: flags.maxOpenFiles,
      fdIdleMs: LIMITS.boxFdIdleMs,
      scrubEveryMs: flags.scrubInterval * 1000,
      rescanMs: flags.rescanInterval * 1000,
      settleMs: LIMITS.boxSettleMs,
      signal: ctx.shutdown,
      announceStats: announces,
      ...(hooks.has('done') ? { onEntryDone: (e: BoxEntry) => hook('done', e) } : {}),
      ...(hooks.has('error') ? { onEntryError: (e: BoxEntry) => hook('error', e) } : {}),
      ...(intervalMs === undefined
        ? {}
        : { announceLimits: { announceIntervalDefaultMs: intervalMs, announceIntervalMinMs: Math.min(intervalMs, LIMITS.announceIntervalMinMs) } }),
    });
    boxApi = await startBoxApi({ box, engine, server, home, log, flags });
    info.api = boxApi.url;
    writeFileSync(infoPath, `${JSON.stringify(info)}\n`);
    process.on('SIGHUP', onHup);
    ctx.out.write(`listening on ${server.url}\n`);
    if (server.wirePort !== undefined) ctx.out.write(`wire on ${server.host.includes(':') ? `[${server.host}]` : server.host}:${server.wirePort}\n`);
    await box.start();
    const counts = new Map<string, number>();
    for (const e of box.entries.values()) counts.set(e.state, (counts.get(e.state) ?? 0) + 1);
    log.info({ dir: watchDir, kascades: box.entries.size, ...Object.fromEntries(counts) }, 'box: watching');
    if (flags.json) ctx.out.write(`${JSON.stringify({ v: 1, event: 'box', url: server.url, watch: watchDir, data: dataDir, kascades: Object.fromEntries(counts) })}\n`);
    await new Promise<void>((res) => {
      if (ctx.shutdown.aborted) return res();
      ctx.shutdown.addEventListener('abort', () => res(), { once: true });
    });
    log.info({ signal: String(ctx.shutdown.reason) }, 'box: shutting down');
  } finally {
    process.off('SIGHUP', onHup);
    boxApi?.close();
    const closing = server.close();
    await box?.stop(STOP_DEADLINE_MS);
    await hooks.close(STOP_DEADLINE_MS);
    await closing;
    await engine.close();
    rmSync(infoPath, { force: true });
    log.info('box: stopped (database closed)');
  }
}
