// The Kascade tracker kfetch ships (SPEC §2): a node:http server that records announces per swarm and
// answers each with a random subset of the other peers. Used by `kfetch tracker` and by test swarms.

import { STATUS_CODES, createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { KfetchError, isKfetchError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { canonicalIp } from '../peer/address-policy.js';
import { peerKey } from '../peer/peer-info.js';
import { VERSION } from '../version.js';
import { parseAnnounce, SWARM_PATH_RE } from './parse-announce.js';
import { readForm } from './read-form.js';
import { SwarmRegistry } from './swarm-registry.js';

/** Tracker bounds; each defaults to the LIMITS constant of the same idea. */
export interface TrackerLimits {
  /** Announce interval the tracker advertises (LIMITS.trackerIntervalMs). */
  intervalMs: number;
  /** Minimum gap between two announces of one ip+port+swarm (LIMITS.trackerMinIntervalMs). */
  minIntervalMs: number;
  /** Peers not heard from for this long are dropped (default intervalMs × LIMITS.trackerExpiryIntervals). */
  expiryMs: number;
  requestMaxBytes: number;
  replyPeers: number;
  maxSwarms: number;
  maxPeersPerSwarm: number;
}

export interface TrackerOptions extends Partial<TrackerLimits> {
  /** Address to bind (default 127.0.0.1). */
  host?: string;
  /** Port to bind; 0 picks a free one (default 0). */
  port?: number;
  log?: Logger;
  /** Random source for peer sampling (default Math.random). */
  random?: () => number;
}

export interface RunningTracker {
  /** Base URL, `http://HOST:PORT` (announce to `${url}/peers/<swarm id>.json`). */
  url: string;
  port: number;
  /** Current number of swarms and peers. */
  stats(): { swarms: number; peers: number };
  /** Stop listening, drop every connection, stop the expiry timer. */
  close(): Promise<void>;
}

/** Start a tracker. @throws KfetchError KF_E_LISTEN if the address cannot be bound. */
export async function startTracker(opts: TrackerOptions = {}): Promise<RunningTracker> {
  const host = opts.host ?? '127.0.0.1';
  const intervalMs = opts.intervalMs ?? LIMITS.trackerIntervalMs;
  const limits: TrackerLimits = {
    intervalMs,
    minIntervalMs: opts.minIntervalMs ?? Math.min(LIMITS.trackerMinIntervalMs, intervalMs),
    expiryMs: opts.expiryMs ?? intervalMs * LIMITS.trackerExpiryIntervals,
    requestMaxBytes: opts.requestMaxBytes ?? LIMITS.trackerRequestMaxBytes,
    replyPeers: opts.replyPeers ?? LIMITS.trackerReplyPeers,
    maxSwarms: opts.maxSwarms ?? LIMITS.trackerMaxSwarms,
    maxPeersPerSwarm: opts.maxPeersPerSwarm ?? LIMITS.trackerMaxPeersPerSwarm,
  };
  const random = opts.random ?? Math.random;
  const log = opts.log;
  const registry = new SwarmRegistry(limits);

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log?.error({ err }, 'tracker: unexpected error');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  // Requests node:http itself refuses (bad syntax, 16 KiB header limit, timeouts) also get a JSON error.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || err.code === 'ECONNRESET') return void socket.destroy();
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const text = JSON.stringify({ error: status === 431 ? 'request headers too large' : status === 408 ? 'request timeout' : 'bad HTTP request' });
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n` +
        `Server: kfetch/${VERSION}\r\nConnection: close\r\n\r\n${text}`,
    );
  });
  server.headersTimeout = LIMITS.serverHeadersTimeoutMs;
  server.requestTimeout = LIMITS.serverRequestTimeoutMs;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = req.url ?? '';
    const path = target.startsWith('/') ? target.split('?')[0]! : '';
    const m = SWARM_PATH_RE.exec(path);
    if (m === null) return sendJson(res, 404, { error: 'not found; announce to /peers/<filehash>.json' });
    if (req.method !== 'POST' && req.method !== 'PUT') {
      return sendJson(res, 405, { error: `method ${req.method ?? ''} not allowed; use POST or PUT` }, { Allow: 'POST, PUT' });
    }
    const swarmId = m[1]!.toLowerCase();
    const source = canonicalIp(req.socket.remoteAddress ?? '');
    let fields: Array<[string, string]>;
    try {
      fields = await readForm(req, limits.requestMaxBytes);
      const announce = parseAnnounce(fields);
      const ip = announce.ip ?? source;
      if (ip === undefined) throw new KfetchError('KF_E_INPUT', 'cannot tell the caller address', { field: 'ip', detail: { status: 400 } });
      const now = performance.now();
      if (announce.event === 'stopped') {
        const removed = registry.remove(swarmId, ip, announce.port);
        log?.debug({ swarm: swarmId, peer: peerKey(ip, announce.port), removed }, 'tracker: stopped');
        return sendJson(res, 200, []);
      }
      const update = { ip, port: announce.port, progress: announce.progress, ...(announce.blocks ? { blocks: announce.blocks } : {}) };
      const result = registry.record(swarmId, update, now, new Date().toISOString());
      if (!result.ok) {
        if (result.reason === 'too-soon') {
          const seconds = Math.max(1, Math.ceil(result.retryAfterMs / 1000));
          return sendJson(res, 403, { error: `announced too soon; retry after ${seconds} s` }, { 'Retry-After': String(seconds) });
        }
        log?.warn({ swarm: swarmId, what: result.what }, 'tracker: full');
        return sendJson(res, 503, { error: `tracker is full (${result.what})` }, { 'Retry-After': String(Math.ceil(limits.intervalMs / 1000)) });
      }
      const peers = registry.sample(swarmId, limits.replyPeers, now, peerKey(ip, announce.port), random);
      log?.debug({ swarm: swarmId, peer: peerKey(ip, announce.port), replied: peers.length }, 'tracker: announce');
      // Extension: the bare-array reply (SPEC §2) has no room for the interval, so a header carries it.
      return sendJson(res, 200, peers, { 'X-Kascade-Interval': String(Math.ceil(limits.intervalMs / 1000)) });
    } catch (err) {
      if (!isKfetchError(err)) throw err;
      const status = typeof err.detail?.status === 'number' ? err.detail.status : 400;
      const body: Record<string, string> = { error: err.message };
      if (err.field !== undefined) body.field = err.field;
      if (status === 413) {
        lingerThenClose(req, res);
        return sendJson(res, 413, body, { Connection: 'close' });
      }
      return sendJson(res, status, body);
    }
  }

  const sweepEvery = Math.max(100, Math.min(limits.expiryMs / 2, 60_000));
  const sweeper = setInterval(() => registry.sweep(performance.now()), sweepEvery);
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
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new KfetchError('KF_E_LISTEN', `cannot listen on ${host}:${opts.port ?? 0} (${code})`, { cause: err });
  }
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : (opts.port ?? 0);
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log?.info({ url, ...limits }, 'tracker: listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    stats: () => registry.stats(),
    close() {
      closing ??= new Promise<void>((resolve) => {
        clearInterval(sweeper);
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** Longest time and most bytes of an oversized body drained (not stored) after a 413, before the socket is cut. */
const LINGER_MS = 2000;
const LINGER_MAX_BYTES = 16 * 1024 * 1024;

/**
 * After a 413 the client may still be sending. Cutting the socket at once makes the kernel answer with a RST,
 * and many clients then lose the 413 itself; so drain (and discard) the rest for a bounded time and byte
 * count, like a server's lingering close, then destroy the socket.
 */
function lingerThenClose(req: IncomingMessage, res: ServerResponse): void {
  res.on('finish', () => {
    let drained = 0;
    const cut = (): void => {
      clearTimeout(timer);
      req.socket.destroy();
    };
    const timer = setTimeout(cut, LINGER_MS);
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
