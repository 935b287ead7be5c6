// The Redis peer store (issue 13): the PeerStore several tracker processes share. Each call is one EVALSHA of
// redis-peer-script.ts, which applies every rule of swarm-registry.ts atomically on the server (so one announce is
// one round trip). This file validates what goes in, parses what comes out, applies the feeder policy (per process,
// as the in-memory store does) and turns an unreachable Redis into StoreUnavailableError quickly: no offline queue,
// a 1 s command timeout, reconnection with capped back-off, one log line when Redis goes and one when it is back.
//
// Global caps (swarms, peers, bitfield bytes) are exact on one Redis (what `--store redis://` connects to): the
// script updates the totals in the same atomic step. A Redis Cluster would hold the totals on another slot than the
// swarm, so there they would have to be a second step and approximate; this store does not speak Cluster yet.

import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { PeerInfo } from '../peer/peer-info.js';
import { peerKey } from '../peer/peer-info.js';
import { isFeeder, type FeederPolicy } from './feeder-policy.js';
import { StoreUnavailableError, type AnnounceOutcome, type PeerStore, type PeerStoreLimits } from './peer-store.js';
import { PEER_STORE_LUA } from './redis-peer-script.js';
import type { PeerUpdate, RecordResult } from './swarm-registry.js';

/** The store's rules (peer-store.ts), plus how it talks to Redis. */
export interface RedisPeerStoreOptions extends PeerStoreLimits {
  /** A command with no reply for this long fails the call as StoreUnavailableError (default 1000). */
  commandTimeoutMs?: number;
  /** Retry-After the tracker sends while Redis is down (default 5). */
  retryAfterSeconds?: number;
  /** Prefix of every key (default `kf:`): several deployments can share one Redis. */
  keyPrefix?: string;
}

/** Swarms one sweep() call settles at most per script run (bounded work per round trip). */
const SWEEP_BATCH = 64;
/** Script runs one sweep() call makes at most (the timer comes back for the rest). */
const SWEEP_MAX_RUNS = 64;
/** Swarm ids become key hash tags: no braces, no spaces, bounded. The tracker sends 32–128 hex digits. */
const SWARM_ID_RE = /^[!-z|~]{1,128}$/;
const SAFE_MAX = Number.MAX_SAFE_INTEGER;
/** Errors Redis answers while it cannot serve (out of memory, loading, busy script, failover): the store is down. */
const TRANSIENT_REPLY = /^(OOM|LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN|NOREPLICAS)\b/;

type Script = (...args: (string | number)[]) => Promise<unknown>;

/**
 * Connect to `url` (`redis://host:port/db`) and return the store once Redis answers.
 * @throws StoreUnavailableError if Redis does not answer within the command timeout.
 */
export async function openRedisPeerStore(url: string, limits: RedisPeerStoreOptions, log?: Logger): Promise<PeerStore> {
  const target = describe(url);
  const timeout = limits.commandTimeoutMs ?? 1_000;
  const retryAfter = limits.retryAfterSeconds ?? 5;
  const prefix = limits.keyPrefix ?? 'kf:';
  if (!/^[A-Za-z0-9:_-]{0,32}$/.test(prefix)) throw new RangeError('keyPrefix: letters, digits, ":", "_", "-" only (at most 32)');
  const feeders: FeederPolicy = limits.feeders;
  const expiry = limits.expiryMs;
  const completeExpiry = Math.max(expiry, limits.completeExpiryMs ?? expiry);
  const cap = (v: number | undefined): number => (v === undefined || !Number.isFinite(v) ? SAFE_MAX : Math.max(0, Math.floor(v)));
  const limitArg = [
    expiry,
    completeExpiry,
    limits.minIntervalMs,
    cap(limits.maxPeersPerSwarm),
    cap(limits.maxPeersPerAddress),
    cap(limits.maxPeers),
    cap(limits.maxSwarms),
    cap(limits.maxBitfieldBytesPerSwarm),
    cap(limits.maxBitfieldBytes),
    // Key TTL: a swarm nobody announces into disappears by itself once even its complete peers have expired.
    completeExpiry + expiry,
    SWEEP_BATCH,
  ]
    .map((v) => String(Math.floor(v)))
    .join(' ');

  const options = {
    lazyConnect: true,
    enableOfflineQueue: false,
    commandTimeout: timeout,
    connectTimeout: timeout,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    // Back-off: 100 ms doubling to 2 s, with jitter so several trackers do not reconnect in step.
    retryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2_000) + randomInt(100),
  } satisfies RedisOptions;
  const redis = new Redis(url, options);
  redis.defineCommand('kfPeers', { numberOfKeys: 0, lua: PEER_STORE_LUA });
  const run = (redis as unknown as { kfPeers: Script }).kfPeers.bind(redis);

  // Up or down as last seen: the connection's events and each call's outcome (a frozen Redis times out without
  // closing the connection). One log line per change, so an outage logs once however many announces fail.
  let up = false;
  let closing = false;
  const state = (ok: boolean, err?: unknown): void => {
    if (ok && !up) log?.info({ store: target }, 'tracker: redis store up');
    if (!ok && up && !closing) log?.warn({ store: target, err }, 'tracker: redis store down');
    up = ok;
  };
  redis.on('ready', () => state(true));
  redis.on('error', (err: unknown) => state(false, err));
  redis.on('close', () => state(false));

  const unavailable = (err: unknown): unknown => {
    const msg = err instanceof Error ? err.message : String(err);
    if (err instanceof Error && err.name === 'ReplyError' && !TRANSIENT_REPLY.test(msg)) return err;
    return new StoreUnavailableError(`redis store ${target}: ${msg}`, retryAfter, { cause: err });
  };
  // While Redis is down with the connection still open (frozen, or a partition that drops packets), every call
  // would wait out the command timeout: after a failure, calls fail at once for `timeout` ms, then one call probes.
  let fastFailUntil = 0;
  let probing = false;
  /** Run the script; an unreachable or failing Redis becomes StoreUnavailableError. */
  const call = async (op: string, now: number, swarmId: string, rest: (string | number)[]): Promise<unknown[]> => {
    if (!Number.isFinite(now) || now < 0) throw new RangeError('now: wall-clock ms expected');
    let probe = false;
    if (!up && redis.status === 'ready') {
      if (probing || performance.now() < fastFailUntil) throw new StoreUnavailableError(`redis store ${target}: down (not answering)`, retryAfter);
      probe = probing = true;
    }
    const seed = randomInt(1, 2_147_483_646);
    let reply: unknown;
    try {
      reply = await run(op, String(Math.floor(now)), swarmId, prefix, limitArg, seed, ...rest);
      state(true);
    } catch (err) {
      const e = unavailable(err);
      if (e instanceof StoreUnavailableError) {
        state(false, err);
        fastFailUntil = performance.now() + timeout;
      }
      throw e;
    } finally {
      if (probe) probing = false;
    }
    if (!Array.isArray(reply)) throw new Error(`redis store: unexpected reply to ${op}`);
    return reply;
  };

  try {
    await redis.connect();
  } catch (err) {
    closing = true;
    redis.disconnect();
    throw new StoreUnavailableError(`redis store ${target}: cannot connect (${err instanceof Error ? err.message : String(err)})`, retryAfter, { cause: err });
  }

  const toPeer = (rec: unknown): PeerInfo | undefined => {
    if (typeof rec !== 'string') return undefined;
    const f = rec.split('|');
    // 9 fields since issue 14 (the last: the peer wire's port or ''); 8 in records written before it.
    if (f.length !== 8 && f.length !== 9) return undefined;
    const [ip, port, progress, , updated, bs, hex, , wire = ''] = f as [string, string, string, string, string, string, string, string, string?];
    const p: PeerInfo = { ip, port: Number(port), progress: Number(progress), updated, feeder: isFeeder(feeders, ip, Number(port), Number(progress)) };
    if (wire !== '') p.wire = Number(wire);
    if (hex !== '') {
      p.blocks = hex;
      p.blocksize = Number(bs);
    }
    return p;
  };
  const peersOf = (reply: unknown[], from: number): PeerInfo[] => {
    const out: PeerInfo[] = [];
    for (const rec of reply.slice(from)) {
      const p = toPeer(rec);
      if (p !== undefined) out.push(p);
    }
    // Shuffle so the order carries no information about who announced first.
    for (let i = out.length - 1; i > 0; i--) {
      const j = randomInt(i + 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  };

  return {
    kind: 'redis',
    async announce(swarmId: string, peer: PeerUpdate, o: { now: number; sample: number }): Promise<AnnounceOutcome> {
      checkSwarm(swarmId);
      checkPeer(peer);
      const reply = await call('announce', o.now, swarmId, [
        peer.ip,
        peer.port,
        String(peer.progress),
        peer.event ?? '',
        new Date(o.now).toISOString(),
        peer.blocks === undefined ? '' : peer.blocks.blockSize,
        peer.blocks === undefined ? '' : peer.blocks.hex,
        sampleSize(o.sample),
        peer.wire ?? '',
      ]);
      return { result: resultOf(reply[0], reply[1]), peers: peersOf(reply, 2) };
    },
    async list(swarmId: string, n: number, o: { now: number; excludeKey?: string }): Promise<PeerInfo[]> {
      checkSwarm(swarmId);
      const reply = await call('list', o.now, swarmId, [o.excludeKey ?? '', sampleSize(n)]);
      return peersOf(reply, 2);
    },
    async remove(swarmId: string, ip: string, port: number): Promise<boolean> {
      checkSwarm(swarmId);
      checkPeer({ ip, port, progress: 0 });
      const reply = await call('remove', 0, swarmId, [peerKey(ip, port)]);
      return reply[0] === 1;
    },
    async sweep(now: number): Promise<void> {
      for (let i = 0; i < SWEEP_MAX_RUNS; i++) {
        const reply = await call('sweep', now, '', []);
        if (Number(reply[0]) < SWEEP_BATCH) return;
      }
    },
    async stats(): Promise<{ swarms: number; peers: number; bitfieldBytes: number }> {
      try {
        const [swarms, peers, bf] = await redis.hmget(`${prefix}{${prefix}global}:t`, 'swarms', 'peers', 'bf');
        return { swarms: Number(swarms ?? 0), peers: Number(peers ?? 0), bitfieldBytes: Number(bf ?? 0) };
      } catch (err) {
        throw unavailable(err);
      }
    },
    async close(): Promise<void> {
      closing = true;
      try {
        await redis.quit();
      } catch {
        redis.disconnect();
      }
    },
  };
}

function resultOf(code: unknown, n: unknown): RecordResult {
  switch (code) {
    case 'ok':
      return { ok: true };
    case 'swarm':
    case 'total':
    case 'geometry':
      return { ok: true, blocksDropped: code };
    case 'too-soon':
      return { ok: false, reason: 'too-soon', retryAfterMs: Math.max(1, Number(n)) };
    case 'full-swarms':
      return { ok: false, reason: 'full', what: 'swarms' };
    case 'full-peers':
      return { ok: false, reason: 'full', what: 'peers' };
    default:
      throw new Error(`redis store: unexpected result ${String(code)}`);
  }
}

function checkSwarm(swarmId: string): void {
  if (!SWARM_ID_RE.test(swarmId)) throw new RangeError('swarmId: 1–128 printable characters, no braces or spaces');
}

/** The record is `|`-separated on the server: every field must be a plain value (the tracker has validated them). */
function checkPeer(peer: PeerUpdate): void {
  if (!/^[0-9A-Fa-f:.]{2,45}$/.test(peer.ip)) throw new RangeError('ip: an IP literal expected');
  if (!Number.isInteger(peer.port) || peer.port < 0 || peer.port > 65535) throw new RangeError('port: 0..65535 expected');
  if (!Number.isFinite(peer.progress) || peer.progress < 0 || peer.progress > 1) throw new RangeError('progress: 0..1 expected');
  if (peer.event !== undefined && !['started', 'stopped', 'completed'].includes(peer.event)) throw new RangeError('event: unknown');
  if (peer.wire !== undefined && !(Number.isInteger(peer.wire) && peer.wire >= 1 && peer.wire <= 65535)) throw new RangeError('wire: 1..65535 expected');
  if (peer.blocks !== undefined) {
    if (!/^[0-9a-f]*$/.test(peer.blocks.hex)) throw new RangeError('blocks: lowercase hex expected');
    if (!Number.isSafeInteger(peer.blocks.blockSize) || peer.blocks.blockSize <= 0) throw new RangeError('blocksize: a positive integer expected');
  }
}

/** Peers one call lists at most (the tracker's own swarm cap): bounds the work of one script run. */
function sampleSize(n: number): number {
  return Number.isFinite(n) ? Math.max(0, Math.min(Math.floor(n), 10_000)) : 0;
}

/** The URL without its password, for logs and errors. */
function describe(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RangeError('store: a redis://host:port/db URL expected');
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new RangeError('store: a redis:// or rediss:// URL expected');
  if (u.password !== '') u.password = '***';
  return u.toString();
}
