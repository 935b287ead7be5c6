// `kfetch tracker`: run the Kascade tracker kfetch ships (src/tracker/tracker-server.ts) until SIGINT/SIGTERM.
// Prints `listening on http://HOST:PORT` (the real port) as its first stdout line, for scripts and tests.

import { InvalidArgumentError, Option, type Command } from 'commander';
import type { Logger } from 'pino';
import { KfetchError, isKfetchError } from '../../errors.js';
import { LIMITS } from '../../limits.js';
import { FEEDER_MODES, makeFeederPolicy, parseFeederAddress } from '../../tracker/feeder-policy.js';
import { describeStore, openPeerStore, parseStoreSpec, REDIS_PASSWORD_ENV, type StoreSpec } from '../../tracker/open-peer-store.js';
import { StoreUnavailableError, type PeerStore, type PeerStoreLimits } from '../../tracker/peer-store.js';
import { TrackerMetrics } from '../../tracker/tracker-metrics.js';
import { startTracker, storeLimits, trackerLimits, type RunningTracker } from '../../tracker/tracker-server.js';
import { startUdpTracker, type RunningUdpTracker } from '../../tracker/udp-tracker.js';
import { accessList } from '../../peer/access-list.js';
import { VERSION } from '../../version.js';
import { cidrArg, intArg, secondsArg as secondsArgOf } from '../arg-parsers.js';
import type { CommandContext } from '../context.js';
import {
  metricsText,
  reportFailed,
  reportListening,
  stopRequested,
  superviseTrackerWorkers,
  trackerWorkerNumber,
  workerPort,
  workerUdpPort,
  workerUdpSecret,
} from '../tracker-workers.js';

const portArg = intArg(0, 65535);
const secondsArg = secondsArgOf(86_400);
const completeExpiryArg = secondsArgOf(LIMITS.trackerCompleteExpiryMaxMs / 1000);
const MiB = 1024 * 1024;
const mibArg = intArg(0, 1024 * 1024);
/** A reply budget the tracker's own clients accept (issue 10 point 11): at most their LIMITS.trackerReplyMaxBytes. */
const replyBytesArg = intArg(1024, LIMITS.trackerReplyMaxBytes);
const MAX_WORKERS = 64;
const workersArg = intArg(1, MAX_WORKERS);

/** Open the store; Redis not answering is the operator's to fix: KF_E_STORE_UNAVAILABLE, not an internal error. */
async function openStore(spec: StoreSpec, limits: PeerStoreLimits, log: Logger): Promise<PeerStore> {
  try {
    return await openPeerStore(spec, limits, { log });
  } catch (err) {
    if (err instanceof StoreUnavailableError) throw new KfetchError('KF_E_STORE_UNAVAILABLE', err.message, { field: '--store', cause: err });
    throw err;
  }
}

/** A repeatable `--feeder ip:port`; collects the canonical keys. */
function feederArg(v: string, previous: string[] | undefined): string[] {
  try {
    parseFeederAddress(v);
  } catch (err) {
    if (isKfetchError(err)) throw new InvalidArgumentError(err.message);
    throw err;
  }
  return [...(previous ?? []), v];
}

interface TrackerFlags {
  /** Parsed in the action, not by commander: commander's own message would echo a password given in the URL. */
  store: string;
  host: string;
  port: number;
  interval: number;
  minInterval?: number;
  expiry?: number;
  completeExpiry?: number;
  feeders: string;
  feeder?: string[];
  trustProxy?: string[];
  metricsAllow?: string[];
  replyBytes: number;
  workers: number;
  udpPort?: number;
  bitfieldMemory: number;
  swarmBitfieldMemory: number;
}

export function registerTracker(program: Command, ctx: CommandContext): void {
  program
    .command('tracker')
    .description('run a Kascade tracker: peers announce to http://HOST:PORT/peers/<filehash>.json (POST, PUT or GET)')
    .option('--host <addr>', 'address to listen on (0.0.0.0 or :: for every interface)', '127.0.0.1')
    .option('--port <n>', 'port to listen on; 0 picks a free one (printed on the first line)', portArg, 7000)
    .option(
      '--workers <n>',
      `tracker processes answering on the one port (1..${MAX_WORKERS}); more than 1 needs a shared --store redis://…; ` +
        'a worker that dies is restarted while the others answer',
      workersArg,
      1,
    )
    .option(
      '--udp-port <n>',
      'also answer the UDP tracker extension (udp://HOST:N/peers/<filehash>.json, docs/spec-udp-tracker.md) on this ' +
        'port of --host, on the same store; 0 picks a free one (printed on the second line). Off by default',
      portArg,
    )
    .addOption(
      new Option(
        '--store <memory|redis://host[:port][/db]>',
        'where swarms are kept: memory (this process) or a Redis server several trackers can share (port 6379 and ' +
          `db 0 by default; no credentials in the URL: the password comes from ${REDIS_PASSWORD_ENV})`,
      )
        .default('memory'),
    )
    .option('--interval <s>', 'announce interval the tracker expects, in seconds', secondsArg, LIMITS.trackerIntervalMs / 1000)
    .option(
      '--min-interval <s>',
      `shortest gap between two announces of the same state (progress, event, blocks) by one peer; sooner gets ` +
        `403 + Retry-After, or the peer list for non-kfetch clients (default ${LIMITS.trackerMinIntervalMs / 1000}, at most --interval)`,
      secondsArg,
    )
    .option(
      '--expiry <s>',
      `drop peers not heard from for this long (default ${LIMITS.trackerExpiryIntervals} × --interval)`,
      secondsArg,
    )
    .option(
      '--complete-expiry <s>',
      `keep a peer whose last announce said progress 1 listed this long (original peers never announce again); ` +
        `never shorter than --expiry; a full swarm may drop such a peer once past --expiry ` +
        `(default ${LIMITS.trackerCompleteExpiryMs / 1000}, i.e. ${LIMITS.trackerCompleteExpiryMs / 3_600_000} h)`,
      completeExpiryArg,
    )
    .addOption(
      new Option(
        '--feeders <mode>',
        'who replies mark "feeder": true (original Python peers download only from feeders): complete = peers that ' +
          'announced progress 1, plus any --feeder; listed = only --feeder addresses; none = nobody',
      )
        .choices(FEEDER_MODES)
        .default('complete'),
    )
    .option(
      '--feeder <ip:port>',
      'a peer the operator vouches for, reported as a feeder (repeatable; IPv6 as [addr]:port; not with --feeders none)',
      feederArg,
    )
    .option(
      '--trust-proxy <addr/cidr>',
      'a reverse proxy whose announces may name the peer\'s address in the `ip` field (repeatable); from anyone else `ip` ' +
        'is ignored unless it is the caller\'s own address',
      cidrArg,
    )
    .option(
      '--metrics-allow <addr/cidr>',
      'also let these addresses read GET /metrics (Prometheus) and /status (JSON) on the tracker\'s port (repeatable; ' +
        'loopback may too, unless --trust-proxy says a proxy may be in front: then only these)',
      cidrArg,
    )
    .option(
      '--reply-bytes <n>',
      `bytes of one reply at most: bitfields are left out first, then peers (${LIMITS.trackerReplyMaxBytes} at most, ` +
        'what kfetch clients read)',
      replyBytesArg,
      LIMITS.trackerReplyBudgetBytes,
    )
    .option(
      '--bitfield-memory <MiB>',
      'memory for the peers\' bitfields over all swarms; past it new peers are listed without theirs',
      mibArg,
      LIMITS.trackerMaxBitfieldBytes / MiB,
    )
    .option('--swarm-bitfield-memory <MiB>', 'the same, per swarm', mibArg, LIMITS.trackerMaxBitfieldBytesPerSwarm / MiB)
    .addHelpText(
      'after',
      '\nReplies list at most ' +
        `${LIMITS.trackerReplyPeers} random other peers of the swarm as JSON. event=stopped removes the caller.\n` +
        'Fields (port, progress, ...) come in a urlencoded or multipart body and/or the query string.\n' +
        'A repeat of the same state sooner than --min-interval is refused; a change of progress or event is always heard.\n' +
        'A swarm\'s first bitfield fixes its file size bound: a longer bitfield (at any blocksize) is refused (400, blocks).\n' +
        'Clients whose User-Agent starts with "kfetch/" get errors as JSON objects with their HTTP status; any other\n' +
        'client (the original 2015 peers) always gets 200 and a JSON array (the peers, or []), the reason in\n' +
        'X-Kascade-Error.\n' +
        'With --workers N, N processes share the port and the Redis store; logs carry each one\'s `worker` number and\n' +
        'GET /metrics adds up every worker\'s figures; GET /status is the process the connection reached.\n' +
        'With --udp-port too, every worker answers on the one UDP port, with one connection-id secret: a connect\n' +
        'answered by one worker is good for an announce that reaches another, and across worker restarts.\n' +
        'Runs until SIGINT or SIGTERM, then closes and exits 0.',
    )
    .action(async (flags: TrackerFlags) => {
      const feeders = makeFeederPolicy(flags.feeders, flags.feeder ?? []);
      const storeSpec = parseStoreSpec(flags.store);
      const worker = trackerWorkerNumber();
      const log = worker === undefined ? ctx.log() : ctx.log().child({ worker });
      const intervalMs = Math.round(flags.interval * 1000);
      const limitFlags = {
        intervalMs,
        replyMaxBytes: flags.replyBytes,
        maxBitfieldBytes: flags.bitfieldMemory * MiB,
        maxBitfieldBytesPerSwarm: flags.swarmBitfieldMemory * MiB,
        ...(flags.minInterval === undefined ? {} : { minIntervalMs: Math.round(flags.minInterval * 1000) }),
        ...(flags.expiry === undefined ? {} : { expiryMs: Math.round(flags.expiry * 1000) }),
        ...(flags.completeExpiry === undefined ? {} : { completeExpiryMs: Math.round(flags.completeExpiry * 1000) }),
      };
      const limits = storeLimits(trackerLimits(limitFlags), feeders);
      if (flags.workers > 1 && worker === undefined) {
        if (storeSpec.kind === 'memory') {
          throw new KfetchError('KF_E_USAGE', `${flags.workers}: several workers need a shared store (each would keep its own swarms in memory); add --store redis://HOST[:PORT][/DB]`, { field: '--workers' });
        }
        // One clear error before N processes start: the store answers (each worker then opens its own connection).
        await (await openStore(storeSpec, limits, log)).close();
        await superviseTrackerWorkers({
          workers: flags.workers,
          log,
          shutdown: ctx.shutdown,
          udp: flags.udpPort !== undefined,
          // The lines a single process prints: HTTP first, then UDP (the workers agree on both ports, 0 included).
          listening: (url, udpUrl) => ctx.out.write(`listening on ${url}\n${udpUrl === undefined ? '' : `listening on ${udpUrl}\n`}`),
        });
        return;
      }
      // Heard from now on: a stop asked for while the store opens or the port binds is not lost (the tracker then
      // starts and stops at once).
      const stop = stopRequested(ctx.shutdown);
      // The tracker does not own a store passed in: it is opened here and closed after the tracker.
      let store: PeerStore | undefined;
      let tracker: RunningTracker | undefined;
      let udp: RunningUdpTracker | undefined;
      const stats = (): Promise<Awaited<ReturnType<RunningTracker['stats']>>> => tracker!.stats();
      const metrics = new TrackerMetrics(stats, worker, () => udp?.stats());
      const observability = {
        metrics: metricsText(metrics.registry),
        status: async () => ({ v: 1, version: VERSION, pid: process.pid, ...(worker === undefined ? {} : { worker }), url: tracker?.url, store: describeStore(storeSpec), ...(await stats()), ...(udp === undefined ? {} : { udp: { url: udp.url, ...udp.stats() } }) }),
        // Behind a reverse proxy on this host every request comes from loopback: then only --metrics-allow.
        allowed: accessList(flags.metricsAllow ?? [], { loopback: flags.trustProxy === undefined }),
      };
      try {
        store = await openStore(storeSpec, limits, log);
        log.info({ store: describeStore(storeSpec) }, 'tracker: store open');
        tracker = await startTracker({
          host: flags.host,
          port: workerPort() ?? flags.port,
          log,
          feeders,
          store,
          observability,
          ...limitFlags,
          ...(flags.trustProxy === undefined ? {} : { trustProxy: flags.trustProxy }),
        });
        if (flags.udpPort !== undefined) {
          // A worker binds the port the others share, with the secret they share (from the primary).
          const secret = workerUdpSecret();
          udp = await startUdpTracker({ store, host: flags.host, port: workerUdpPort() ?? flags.udpPort, log, ...limitFlags, ...(secret === undefined ? {} : { secret }) });
        }
      } catch (err) {
        await tracker?.close();
        await store?.close();
        if (worker !== undefined) reportFailed(err);
        throw err;
      }
      try {
        if (worker === undefined) ctx.out.write(`listening on ${tracker.url}\n${udp === undefined ? '' : `listening on ${udp.url}\n`}`);
        else reportListening(tracker.url, udp?.url);
        await stop;
        log.info({ signal: ctx.shutdown.aborted ? String(ctx.shutdown.reason) : 'asked by the primary' }, 'tracker: shutting down');
      } finally {
        await udp?.close();
        await tracker.close();
        await store.close();
      }
    });
}
