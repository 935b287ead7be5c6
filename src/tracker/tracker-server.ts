// The Kascade tracker kfetch ships (SPEC §2): a node:http server that records announces per swarm and
// answers each with a random subset of the other peers. Used by `kfetch tracker` and by test swarms.
// Announces come as POST, PUT or GET (the first 2015 JavaScript peer GETs with a multipart body), with fields in a
// form body and/or the query string; a field given in both is refused as a duplicate. Refusals are shaped per
// client by refusal-reply.ts: JSON errors for kfetch, always a JSON array for original peers (SPEC §6).
// Swarms live in a PeerStore (peer-store.ts): in memory by default, or one passed in (Redis, issue 13). A store
// that is down (StoreUnavailableError) gets kfetch clients 503 + Retry-After and originals `200 []`, is logged once
// per outage, and is counted in stats() (`storeErrors`, `storeUp`).

import { STATUS_CODES, createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { KfetchError, isKfetchError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { canonicalIp } from '../util/address-policy.js';
import { accessList } from '../peer/access-list.js';
import { peerKey, type PeerInfo } from '../peer/peer-info.js';
import { observabilityReply, observabilityRoute, type Observability } from '../util/observability-route.js';
import { VERSION } from '../version.js';
import { parseAnnounce, SWARM_PATH_RE } from './parse-announce.js';
import { readForm } from './read-form.js';
import { DEFAULT_FEEDER_POLICY, type FeederPolicy } from './feeder-policy.js';
import { isKfetchClient, refusalReply, type Refusal } from './refusal-reply.js';
import { fitReply } from './reply-budget.js';
import { MemoryPeerStore } from './memory-peer-store.js';
import { StoreUnavailableError, type PeerStore, type PeerStoreLimits } from './peer-store.js';

/** Tracker bounds; each defaults to the LIMITS constant of the same idea. */
export interface TrackerLimits {
  /** Announce interval the tracker advertises (LIMITS.trackerIntervalMs). */
  intervalMs: number;
  /** Minimum gap between two announces of one ip+port+swarm (LIMITS.trackerMinIntervalMs). */
  minIntervalMs: number;
  /** Peers not heard from for this long are dropped (default intervalMs × LIMITS.trackerExpiryIntervals). */
  expiryMs: number;
  /** Peers whose last announce said progress 1 are dropped after this long (LIMITS.trackerCompleteExpiryMs; never below expiryMs). */
  completeExpiryMs: number;
  requestMaxBytes: number;
  replyPeers: number;
  maxSwarms: number;
  maxPeersPerSwarm: number;
  /** Peers one source address may have in one swarm (LIMITS.trackerMaxPeersPerAddress). */
  maxPeersPerAddress: number;
  /** Peers over all swarms (LIMITS.trackerMaxPeers). */
  maxPeers: number;
  /** Bytes of one reply at most (LIMITS.trackerReplyBudgetBytes; never above the clients' LIMITS.trackerReplyMaxBytes). */
  replyMaxBytes: number;
  /** Bitfield bytes kept per swarm and in all (LIMITS.trackerMaxBitfieldBytesPerSwarm, trackerMaxBitfieldBytes). */
  maxBitfieldBytesPerSwarm: number;
  maxBitfieldBytes: number;
}

export interface TrackerOptions extends Partial<TrackerLimits> {
  /** Address to bind (default 127.0.0.1). */
  host?: string;
  /** Port to bind; 0 picks a free one (default 0). */
  port?: number;
  log?: Logger;
  /** Random source for peer sampling (default Math.random). */
  random?: () => number;
  /** Who is reported as a feeder (default: peers that announced complete). */
  feeders?: FeederPolicy;
  /**
   * Addresses and CIDR blocks of proxies whose requests may name the peer's address in the `ip` field. From anyone
   * else `ip` counts only if it is the request's own source address: no caller may list, refresh, stop or vouch for
   * an address it does not own (RELIABILITY "tracker abuse").
   */
  trustProxy?: readonly string[];
  /**
   * Where swarms are kept (default: a MemoryPeerStore built from these limits and `feeders`). A store passed in is
   * the caller's: close() leaves it open. Its own limits apply; the tracker's store limits are then unused.
   */
  store?: PeerStore;
  /** GET /metrics and /status on the tracker's port (observability-route.ts); off when not given. */
  observability?: Observability;
}

/** Announce replies since start, by outcome (counters). */
export interface TrackerAnswers {
  /** Recorded and answered with peers. */
  announced: number;
  /** event=stopped: removed. */
  stopped: number;
  /** port 0 (a caller that accepts no connections): told the peers, never listed. */
  listed: number;
  /** The same state again within the minimum gap (403 + Retry-After, or the peers for originals). */
  tooSoon: number;
  /** The tracker is full (swarms or peers). */
  full: number;
  /** The store did not answer (503 + Retry-After, `200 []` for originals). */
  storeDown: number;
  /** Bad requests: path, method, fields, sizes. */
  refused: number;
}

/** What stats() reports: the store's counts, and whether it answers. */
export interface TrackerStats {
  swarms: number;
  peers: number;
  bitfieldBytes: number;
  /** Store calls that failed with StoreUnavailableError since start (a counter). */
  storeErrors: number;
  /** False from a store failure until the next call that succeeds (a gauge). */
  storeUp: boolean;
  answers: TrackerAnswers;
}

export interface RunningTracker {
  /** Base URL, `http://HOST:PORT` (announce to `${url}/peers/<swarm id>.json`). */
  url: string;
  port: number;
  /**
   * Current number of swarms and peers, and the bytes of bitfields kept (from the store), with the store's health.
   * While the store is down the counts are the last ones read (zeros before any).
   */
  stats(): Promise<TrackerStats>;
  /** Stop listening, drop every connection, stop the expiry timer, close the store if the tracker opened it. */
  close(): Promise<void>;
}

/** The tracker's limits: each given one, else its LIMITS default (and the clamps between them). */
export function trackerLimits(opts: Partial<TrackerLimits> = {}): TrackerLimits {
  const intervalMs = opts.intervalMs ?? LIMITS.trackerIntervalMs;
  const expiryMs = opts.expiryMs ?? intervalMs * LIMITS.trackerExpiryIntervals;
  return {
    intervalMs,
    minIntervalMs: opts.minIntervalMs ?? Math.min(LIMITS.trackerMinIntervalMs, intervalMs),
    expiryMs,
    completeExpiryMs: Math.max(expiryMs, opts.completeExpiryMs ?? LIMITS.trackerCompleteExpiryMs),
    requestMaxBytes: opts.requestMaxBytes ?? LIMITS.trackerRequestMaxBytes,
    replyPeers: opts.replyPeers ?? LIMITS.trackerReplyPeers,
    maxSwarms: opts.maxSwarms ?? LIMITS.trackerMaxSwarms,
    maxPeersPerSwarm: opts.maxPeersPerSwarm ?? LIMITS.trackerMaxPeersPerSwarm,
    maxPeersPerAddress: opts.maxPeersPerAddress ?? LIMITS.trackerMaxPeersPerAddress,
    maxPeers: opts.maxPeers ?? LIMITS.trackerMaxPeers,
    replyMaxBytes: Math.min(opts.replyMaxBytes ?? LIMITS.trackerReplyBudgetBytes, LIMITS.trackerReplyMaxBytes),
    maxBitfieldBytesPerSwarm: opts.maxBitfieldBytesPerSwarm ?? LIMITS.trackerMaxBitfieldBytesPerSwarm,
    maxBitfieldBytes: opts.maxBitfieldBytes ?? LIMITS.trackerMaxBitfieldBytes,
  };
}

/** The part of the tracker's limits a store enforces, with the feeder policy: what a PeerStore is opened with. */
export function storeLimits(limits: TrackerLimits, feeders: FeederPolicy = DEFAULT_FEEDER_POLICY): PeerStoreLimits {
  return {
    maxSwarms: limits.maxSwarms,
    maxPeersPerSwarm: limits.maxPeersPerSwarm,
    maxPeersPerAddress: limits.maxPeersPerAddress,
    maxPeers: limits.maxPeers,
    expiryMs: limits.expiryMs,
    completeExpiryMs: limits.completeExpiryMs,
    minIntervalMs: limits.minIntervalMs,
    maxBitfieldBytesPerSwarm: limits.maxBitfieldBytesPerSwarm,
    maxBitfieldBytes: limits.maxBitfieldBytes,
    feeders,
  };
}

/**
 * Milliseconds on the wall-clock scale that never jump (the system clock being set moves Date.now, not this): the
 * memory store's clock, so expiry and the minimum gap stay monotonic (RELIABILITY "clock jumps").
 */
const monotonicWallMs = (): number => performance.timeOrigin + performance.now();

/** Start a tracker. @throws KfetchError KF_E_LISTEN if the address cannot be bound. */
export async function startTracker(opts: TrackerOptions = {}): Promise<RunningTracker> {
  const host = opts.host ?? '127.0.0.1';
  const limits = trackerLimits(opts);
  const log = opts.log;
  const feeders = opts.feeders ?? DEFAULT_FEEDER_POLICY;
  const fromProxy = accessList(opts.trustProxy ?? [], { loopback: false });
  /** The address to list a caller under: its source, or the `ip` it names when that is the source or it is a trusted proxy. */
  const announcedIp = (named: string | undefined, source: string | undefined): string | undefined => {
    if (named === undefined || source === undefined || named === source) return source;
    if (fromProxy(source)) return named;
    log?.debug({ source, named }, 'tracker: ip field ignored (not the source address, not a trusted proxy)');
    return source;
  };
  const ownStore = opts.store === undefined;
  const store: PeerStore = opts.store ?? new MemoryPeerStore(storeLimits(limits, feeders), { random: opts.random ?? Math.random });
  // A shared store (Redis, several processes) needs one clock for all of them: the wall clock. Memory: monotonic.
  const clock = store.kind === 'memory' ? monotonicWallMs : Date.now;
  /** Within the reply's byte budget (reply-budget.ts). */
  const fit = (peers: PeerInfo[]): PeerInfo[] => fitReply(peers, limits.replyMaxBytes);
  const intervalSeconds = Math.ceil(limits.intervalMs / 1000);
  const answers: TrackerAnswers = { announced: 0, stopped: 0, listed: 0, tooSoon: 0, full: 0, storeDown: 0, refused: 0 };
  const health = storeHealth(store, log);
  const obs = opts.observability;

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log?.error({ err }, 'tracker: unexpected error');
      if (!res.headersSent) refuse(req, res, { status: 500, message: 'internal error', announcePath: isAnnouncePath(req) });
      else res.destroy();
    });
  });
  // Requests node:http itself refuses (bad syntax, 16 KiB header limit, timeouts). Their headers were not read, so
  // the client is unknown: the body is `[]` for everyone (an original iterates any body as an array and crashes on
  // an object), the reason in X-Kascade-Error. A timeout — which a slow original can hit through no fault of its
  // own — is answered 200 like the tracker's other refusals to originals; malformed HTTP, which no original sends,
  // keeps its status (400, 431) so kfetch clients and tools see it.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || err.code === 'ECONNRESET') return void socket.destroy();
    const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : timeout ? 200 : 400;
    const reason = status === 431 ? 'request headers too large' : timeout ? 'request timeout' : 'bad HTTP request';
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n` +
        `X-Kascade-Error: ${reason}\r\nServer: kfetch/${VERSION}\r\nConnection: close\r\n\r\n[]`,
    );
  });
  server.headersTimeout = LIMITS.serverHeadersTimeoutMs;
  server.requestTimeout = LIMITS.serverRequestTimeoutMs;

  /** Answer a refusal in the shape the client can read (refusal-reply.ts); `peers` is what an original may get. */
  function refuse(req: IncomingMessage, res: ServerResponse, refusal: Refusal, peers: readonly unknown[] = []): void {
    const kfetch = isKfetchClient(req.headers['user-agent']);
    const r = refusalReply(kfetch, refusal, peers, intervalSeconds);
    if (!kfetch) log?.debug({ status: refusal.status, error: refusal.message, listed: peers.length }, 'tracker: refusal sent as an array');
    sendJson(res, r.status, r.body, r.headers);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = req.url ?? '';
    const route = obs === undefined ? undefined : observabilityRoute(target);
    if (route !== undefined) {
      const r = await observabilityReply(obs!, route, req.method ?? '', req.socket.remoteAddress ?? '');
      if (hasBody(req)) closeAfterReply(req, res);
      res.writeHead(r.status, { 'Content-Type': r.type, 'Content-Length': Buffer.byteLength(r.body), Server: `kfetch/${VERSION}`, ...r.headers });
      return void res.end(req.method === 'HEAD' ? undefined : r.body);
    }
    const path = target.startsWith('/') ? target.split('?')[0]! : '';
    const m = SWARM_PATH_RE.exec(path);
    if (m === null) {
      answers.refused++;
      return refuse(req, res, { status: 404, message: 'not found; announce to /peers/<filehash>.json', announcePath: false });
    }
    if (req.method !== 'POST' && req.method !== 'PUT' && req.method !== 'GET') {
      answers.refused++;
      if (hasBody(req)) closeAfterReply(req, res); // the body is not read; do not parse it as a next request
      const message = `method ${(req.method ?? '').slice(0, 16)} not allowed; use POST, PUT or GET`;
      return refuse(req, res, { status: 405, message, headers: { Allow: 'GET, POST, PUT' }, announcePath: true });
    }
    const swarmId = m[1]!.toLowerCase();
    const source = canonicalIp(req.socket.remoteAddress ?? '');
    const q = target.indexOf('?');
    const queryFields = q < 0 ? [] : [...new URLSearchParams(target.slice(q + 1))];
    try {
      const fields = [...queryFields, ...(await readForm(req, limits.requestMaxBytes))];
      const announce = parseAnnounce(fields);
      const ip = announcedIp(announce.ip, source);
      if (ip === undefined) throw new KfetchError('KF_E_INPUT', 'cannot tell the caller address', { field: 'ip', detail: { status: 400 } });
      const now = clock();
      if (announce.event === 'stopped') {
        const removed = await store.remove(swarmId, ip, announce.port);
        health.ok();
        answers.stopped++;
        log?.debug({ swarm: swarmId, peer: peerKey(ip, announce.port), removed }, 'tracker: stopped');
        return sendJson(res, 200, [], { 'X-Kascade-Interval': String(intervalSeconds) });
      }
      if (announce.port === 0) {
        // Extension: port 0 is a caller that accepts no connections (`kfetch get --no-serve`). It is told the peers
        // but never listed, so it holds no record (and nothing to rate-limit: it costs what an unknown port costs).
        const peers = fit(await store.list(swarmId, limits.replyPeers, { now }));
        health.ok();
        answers.listed++;
        return sendJson(res, 200, peers, { 'X-Kascade-Interval': String(intervalSeconds) });
      }
      const update = {
        ip,
        port: announce.port,
        progress: announce.progress,
        ...(announce.event ? { event: announce.event } : {}),
        ...(announce.blocks ? { blocks: announce.blocks } : {}),
        // Extension (issue 14): the caller's peer wire, listed at the same address as its port (never another).
        ...(announce.wire === undefined ? {} : { wire: announce.wire }),
      };
      const outcome = await store.announce(swarmId, update, { now, sample: limits.replyPeers });
      health.ok();
      const { result } = outcome;
      const caller = peerKey(ip, announce.port);
      if (!result.ok) {
        // An original client gets the swarm's peers anyway (never itself): the refusal is about the caller only.
        const others = fit(outcome.peers);
        if (result.reason === 'too-soon') {
          answers.tooSoon++;
          const seconds = Math.max(1, Math.ceil(result.retryAfterMs / 1000));
          const message = `announced the same state too soon; retry after ${seconds} s`;
          return refuse(req, res, { status: 403, message, headers: { 'Retry-After': String(seconds) }, announcePath: true }, others);
        }
        answers.full++;
        log?.warn({ swarm: swarmId, what: result.what }, 'tracker: full');
        const message = `tracker is full (${result.what})`;
        return refuse(req, res, { status: 503, message, headers: { 'Retry-After': String(intervalSeconds) }, announcePath: true }, others);
      }
      if (result.blocksDropped !== undefined) {
        log?.debug({ swarm: swarmId, peer: caller, cap: result.blocksDropped }, 'tracker: bitfield not kept (memory cap or swarm geometry)');
      }
      const peers = fit(outcome.peers);
      answers.announced++;
      log?.debug({ swarm: swarmId, peer: caller, replied: peers.length }, 'tracker: announce');
      // Extension: the bare-array reply (SPEC §2) has no room for the interval, so a header carries it.
      return sendJson(res, 200, peers, { 'X-Kascade-Interval': String(intervalSeconds) });
    } catch (err) {
      if (err instanceof StoreUnavailableError) {
        health.failed(err);
        answers.storeDown++;
        // kfetch clients back off for the store's Retry-After; an original gets `200 []` (it crashes on anything else).
        // The body was read whole before any store call, so the connection stays usable.
        const s = err.retryAfterSeconds;
        const seconds = String(Number.isFinite(s) ? Math.min(3600, Math.max(1, Math.ceil(s))) : intervalSeconds);
        return refuse(req, res, { status: 503, message: 'tracker store unavailable; retry later', headers: { 'Retry-After': seconds }, announcePath: true });
      }
      if (!isKfetchError(err)) throw err;
      answers.refused++;
      const status = typeof err.detail?.status === 'number' ? err.detail.status : 400;
      const refusal: Refusal = { status, message: err.message, announcePath: true };
      if (err.field !== undefined) refusal.field = err.field;
      // Refused before the whole body was read (413, 415, a bad multipart part): drain a bounded rest, then close.
      if (status === 413 || !req.complete) closeAfterReply(req, res);
      return refuse(req, res, refusal);
    }
  }

  function isAnnouncePath(req: IncomingMessage): boolean {
    const target = req.url ?? '';
    return target.startsWith('/') && SWARM_PATH_RE.test(target.split('?')[0]!);
  }

  const sweepEvery = Math.max(100, Math.min(limits.expiryMs / 2, 60_000));
  // One sweep at a time: a store's sweep may take longer than the period (a round trip, a big store).
  let sweeping = false;
  const sweeper = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    store
      .sweep(clock())
      .then(health.ok, (err: unknown) => {
        if (err instanceof StoreUnavailableError) health.failed(err);
        else log?.error({ err }, 'tracker: sweep failed');
      })
      .finally(() => {
        sweeping = false;
      });
  }, sweepEvery);
  sweeper.unref();

  try {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => reject(err);
      server.once('error', onError);
      server.listen(opts.port ?? 0, host, () => {
        server.off('error', onError);
        resolve();
      });
    });
  } catch (err) {
    clearInterval(sweeper);
    if (ownStore) await store.close();
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new KfetchError('KF_E_LISTEN', `cannot listen on ${host}:${opts.port ?? 0} (${code})`, { cause: err });
  }
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : (opts.port ?? 0);
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log?.info({ url, store: store.kind, ...limits }, 'tracker: listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    stats: async () => ({ ...(await health.stats()), answers: { ...answers } }),
    close() {
      closing ??= (async () => {
        clearInterval(sweeper);
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        if (ownStore) await store.close();
      })();
      return closing;
    },
  };
}

/**
 * The store's health as the tracker sees it. Callers report each store call: ok() after a success (cheap: a flag
 * test on the hot path), failed() on a StoreUnavailableError, which counts it and logs the first of an outage;
 * the recovery is logged once too. stats() keeps the last counts read while the store is down.
 */
function storeHealth(
  store: PeerStore,
  log: Logger | undefined,
): { ok(): void; failed(err: StoreUnavailableError): void; stats(): Promise<Omit<TrackerStats, 'answers'>> } {
  let errors = 0;
  let up = true;
  let last = { swarms: 0, peers: 0, bitfieldBytes: 0 };
  const ok = (): void => {
    if (up) return;
    up = true;
    log?.info({ store: store.kind, errors }, 'tracker: store is back');
  };
  return {
    ok,
    failed(err) {
      errors++;
      if (!up) return;
      up = false;
      log?.warn({ store: store.kind, reason: err.message, retryAfter: err.retryAfterSeconds }, 'tracker: store unavailable; answering 503 until it is back');
    },
    // Reading stats is not a request: a failure here is not counted. But it is a probe of the store, so an outage
    // shows in /metrics while no announce comes in, and so does the recovery.
    async stats() {
      try {
        last = await store.stats();
        ok();
      } catch (err) {
        if (!(err instanceof StoreUnavailableError)) throw err;
        if (up) {
          up = false;
          log?.warn({ store: store.kind, reason: err.message }, 'tracker: store unavailable; answering 503 until it is back');
        }
      }
      return { ...last, storeErrors: errors, storeUp: up };
    },
  };
}

/**
 * Longest time and most bytes of an oversized body drained (not stored) after a 413, before the socket is cut. A cut
 * while the client still sends is a RST, which can discard the 413 unread in the client's buffer: 2 s was too short
 * on a loaded 2-core machine (a 10 MB body got no status in CI), so the bytes bound the drain and the time is a backstop.
 */
const LINGER_MS = 10_000;
const LINGER_MAX_BYTES = 16 * 1024 * 1024;

/**
 * After a refusal sent before the body was read (413, 415, 405 with a body, a bad multipart part) the client may
 * still be sending. Cutting the socket at once makes the kernel answer with a RST, and many clients then lose the
 * reply itself; so drain (and discard) the rest for a bounded time and byte count, like a server's lingering close,
 * then destroy the socket. No `Connection: close` header: with it node:http destroys the socket as soon as the
 * reply is flushed — the very RST this avoids (a 10 MB body got no status at all on a loaded machine).
 */
function closeAfterReply(req: IncomingMessage, res: ServerResponse): void {
  res.on('finish', () => {
    let drained = 0;
    let timer: NodeJS.Timeout | undefined;
    const cut = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      req.socket.destroy();
    };
    if (req.readableEnded) return cut();
    timer = setTimeout(cut, LINGER_MS);
    timer.unref();
    req.on('data', (chunk: Buffer) => {
      drained += chunk.length;
      if (drained > LINGER_MAX_BYTES) cut();
    });
    req.on('end', cut);
    req.on('error', cut);
    req.resume();
  });
}

/** A request with a body (Content-Length > 0 or any Transfer-Encoding). */
function hasBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return (cl !== undefined && cl !== '0') || req.headers['transfer-encoding'] !== undefined;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    Server: `kfetch/${VERSION}`,
    ...headers,
  });
  res.end(text);
}
