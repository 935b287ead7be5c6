// One announce to a kfetch UDP tracker (docs/spec-udp-tracker.md): the same AnnounceRequest in and AnnounceResult
// out as announce-client.ts, for `udp://HOST:PORT/peers/<swarm id>.json` URLs. Connect (connection ids cached per
// tracker for less than their life), then announce; each step is retransmitted with a doubling timeout, bounded by
// the request's total deadline and its AbortSignal. Replies are matched by transaction id and source address, and
// their peers pass the same validation as an HTTP reply's (parse-reply.ts PeerCollector). Used by announcer.ts.
//
// One socket per address family for the whole process (unref'd): a connection id is bound to our source port, so
// every announce to a tracker must leave from the same one.

import { randomInt } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { KfetchError, isKfetchError } from '../errors.js';
import { linkedDeadline } from '../util/linked-deadline.js';
import { LIMITS } from '../limits.js';
import { canonicalIp, isLoopbackHost } from '../util/address-policy.js';
import { dialProblem, policedLookup } from '../peer/dial-guard.js';
import type { AnnounceLimits, AnnounceRequest, AnnounceResult } from './announce-client.js';
import { SWARM_PATH_RE } from './parse-announce.js';
import { PeerCollector, clampIntervalMs } from './parse-reply.js';
import {
  UDP_MAX_DATAGRAM,
  announceRequestBytes,
  decodeReply,
  encodeAnnounceRequest,
  encodeConnectRequest,
  swarmIdBytes,
  type UdpEvent,
  type UdpReply,
} from './udp-wire.js';

export interface UdpAnnounceOptions {
  /** Wait for the first reply of a step this long, doubling per retransmission (default 500 ms). */
  firstTimeoutMs?: number;
  /** Sends per step, the first included (default 4: 0.5 + 1 + 2 + 4 = 7.5 s per step at most). */
  tries?: number;
}

/** A cached connection id is used for this long: less than the 60 s a tracker guarantees it at least. */
export const CONNECTION_CACHE_MS = 50_000;
/** Trackers whose connection id is remembered at once (the oldest go first). */
const CONNECTION_CACHE_MAX = 1024;

interface Pending {
  address: string;
  port: number;
  resolve(reply: UdpReply): void;
  /** Datagrams from the tracker naming this transaction that did not decode. */
  malformed: number;
}

/** The process's socket for one address family, and the exchanges waiting on it. */
class ClientSocket {
  readonly socket: Socket;
  readonly pending = new Map<number, Pending>();
  readonly ready: Promise<void>;

  constructor(type: 'udp4' | 'udp6') {
    this.socket = createSocket({ type });
    this.socket.on('error', () => {}); // send errors reach the send callback; a lost reply is retransmitted
    this.socket.on('message', (msg, rinfo) => this.receive(msg, rinfo.address, rinfo.port));
    this.ready = new Promise<void>((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind(0, () => {
        this.socket.off('error', reject);
        this.socket.unref();
        resolve();
      });
    });
  }

  private receive(msg: Buffer, address: string, port: number): void {
    const from = canonicalIp(address);
    const r = decodeReply(msg);
    const tx = r.ok ? r.value.transactionId : msg.length >= 8 ? msg.readUInt32BE(4) : undefined;
    if (tx === undefined) return;
    const p = this.pending.get(tx);
    // Only the tracker asked may answer: a datagram from anyone else is ignored, whatever it says.
    if (p === undefined || p.address !== from || p.port !== port) return;
    if (r.ok) p.resolve(r.value);
    else p.malformed++;
  }

  newTransactionId(): number {
    for (;;) {
      const tx = randomInt(0, 2 ** 32 - 1);
      if (!this.pending.has(tx)) return tx;
    }
  }
}

const sockets: { udp4?: ClientSocket; udp6?: ClientSocket } = {};
const connections = new Map<string, { id: Buffer; at: number }>();

/** Close the process's UDP announce sockets and forget the connection ids (tests; a process exit does it anyway). */
export async function closeUdpAnnounceSockets(): Promise<void> {
  connections.clear();
  for (const key of ['udp4', 'udp6'] as const) {
    const s = sockets[key];
    delete sockets[key];
    if (s !== undefined) await new Promise<void>((resolve) => s.socket.close(() => resolve()));
  }
}

function clientSocket(family: 4 | 6): ClientSocket {
  const key = family === 4 ? 'udp4' : 'udp6';
  let s = sockets[key];
  if (s === undefined) {
    const made = new ClientSocket(key);
    sockets[key] = s = made;
    // A socket that could not bind is forgotten, so the next announce tries a new one.
    made.ready.catch(() => {
      if (sockets[key] === made) delete sockets[key];
      try {
        made.socket.close();
      } catch {
        // never bound: nothing to close
      }
    });
  }
  return s;
}

/** What a `udp://` tracker URL names, or a KF_E_INPUT naming `tracker`. */
export function parseUdpTrackerUrl(text: string): { host: string; port: number; swarmId: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch (err) {
    throw new KfetchError('KF_E_INPUT', `tracker URL is not a URL: ${text}`, { field: 'tracker', cause: err });
  }
  const bad = (why: string): KfetchError => new KfetchError('KF_E_INPUT', `udp tracker URL ${why}: ${text}`, { field: 'tracker' });
  if (url.protocol !== 'udp:') throw bad('must be udp:');
  if (url.username !== '' || url.password !== '') throw bad('has credentials');
  const port = Number(url.port);
  if (url.hostname === '' || !(port >= 1 && port <= 65535)) throw bad('needs a host and a port');
  const m = SWARM_PATH_RE.exec(url.pathname);
  if (m === null || url.search !== '' || url.hash !== '') throw bad('must be udp://HOST:PORT/peers/<swarm id>.json');
  const swarmId = m[1]!.toLowerCase();
  if (swarmIdBytes(swarmId) === undefined) throw bad('names a swarm id of odd length (announce it over HTTP)');
  // A udp: host is opaque to the WHATWG parser: read it as an http host is (`2852039166` is 169.254.169.254).
  let host: string;
  try {
    host = new URL(`http://${url.host}/`).hostname;
  } catch {
    throw bad('has a host that is not a valid host name or address');
  }
  return { host: host.replace(/^\[(.*)\]$/, '$1'), port, swarmId };
}

/** The address to send to: an IP literal that passes the dial floor, or a name resolved through policedLookup. */
async function resolve(host: string, where: string): Promise<{ address: string; family: 4 | 6 }> {
  if (isIP(host) !== 0) {
    const why = dialProblem(host);
    if (why !== undefined) throw new KfetchError('KF_E_TRACKER_UNREACHABLE', `tracker ${where} unreachable (${why})`);
    return { address: canonicalIp(host) ?? host, family: isIP(canonicalIp(host) ?? host) === 6 ? 6 : 4 };
  }
  return await new Promise((ok, fail) => {
    policedLookup(host, {}, (err, address, family) => {
      if (err !== null || typeof address !== 'string') {
        return fail(new KfetchError('KF_E_TRACKER_UNREACHABLE', `tracker ${where} unreachable (${err?.message ?? 'no address'})`, { cause: err }));
      }
      ok({ address: canonicalIp(address) ?? address, family: family === 6 ? 6 : 4 });
    });
  });
}

const EVENT: Record<NonNullable<AnnounceRequest['event']> | 'none', UdpEvent> = { none: 'none', started: 'started', completed: 'completed', stopped: 'stopped' };

/**
 * Announce once over UDP and return the validated peers. `req.ip` and `req.peerId` are not sent (the tracker lists
 * the source address; the datagram has no id); a bitfield that does not fit the datagram is left out. Nor is
 * `req.wirePort`: the datagrams are exact-size with no extension room (docs/spec-udp-tracker.md "No wire key").
 * @throws KfetchError KF_E_TRACKER_BACKOFF (too soon; detail.retryAfterMs), KF_E_TRACKER_REFUSED (an error reply,
 * or full / store down: detail.status 503), KF_E_TRACKER_UNREACHABLE (no reply in time, address policy),
 * KF_E_TRACKER_RESPONSE (only malformed replies came), KF_E_INPUT (not a udp:// URL); the caller's abort reason.
 */
export async function announceUdp(req: AnnounceRequest, o: UdpAnnounceOptions = {}): Promise<AnnounceResult> {
  const limits: AnnounceLimits = { ...LIMITS, ...req.limits };
  const totalMs = req.timeouts?.totalMs ?? limits.trackerTotalTimeoutMs;
  const firstTimeoutMs = Math.max(1, o.firstTimeoutMs ?? 500);
  const tries = Math.max(1, Math.min(16, o.tries ?? 4));
  const { host, port, swarmId } = parseUdpTrackerUrl(req.url);
  const where = `udp://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const deadline = performance.now() + totalMs;

  // One signal per announce, linked by hand (util/linked-deadline.ts: AbortSignal.any leaks on Node 20).
  const link = linkedDeadline(req.signal, totalMs, () => new KfetchError('KF_E_TRACKER_UNREACHABLE', `tracker ${where} did not finish within ${totalMs} ms`));
  const signal = link.signal;
  try {
    const to = await resolve(host, where);
    signal.throwIfAborted();
    const sock = clientSocket(to.family);
    await sock.ready;
    const key = `${to.address}|${port}`;
    const allowLoopback = isLoopbackHost(host);

    const exchange = (build: (tx: number) => Buffer, step: string): Promise<UdpReply> => {
      const tx = sock.newTransactionId();
      const datagram = build(tx);
      return new Promise<UdpReply>((resolveReply, reject) => {
        let sent = 0;
        let wait: NodeJS.Timeout | undefined;
        const pending: Pending = { address: to.address, port, malformed: 0, resolve: (r) => finish(() => resolveReply(r)) };
        const finish = (then: () => void): void => {
          clearTimeout(wait);
          sock.pending.delete(tx);
          signal.removeEventListener('abort', aborted);
          then();
        };
        const aborted = (): void => finish(() => reject(signal.reason));
        const fire = (): void => {
          const left = deadline - performance.now();
          if (sent >= tries || left <= 0) {
            const err =
              pending.malformed > 0
                ? new KfetchError('KF_E_TRACKER_RESPONSE', `tracker ${where}: ${pending.malformed} malformed ${step} replies and no valid one`)
                : new KfetchError('KF_E_TRACKER_UNREACHABLE', `tracker ${where} did not answer the ${step} (${sent} tries)`);
            return finish(() => reject(err));
          }
          sock.socket.send(datagram, port, to.address, () => {}); // a failed send is a lost datagram: retransmitted
          wait = setTimeout(fire, Math.min(firstTimeoutMs * 2 ** sent, left));
          sent++;
        };
        sock.pending.set(tx, pending);
        signal.addEventListener('abort', aborted, { once: true });
        fire();
      });
    };

    const refusal = (r: UdpReply, step: string): KfetchError => {
      switch (r.action) {
        case 'error':
          return new KfetchError('KF_E_TRACKER_REFUSED', `tracker ${where} refused: ${r.message.slice(0, 200)}`);
        case 'backoff': {
          const retryAfterMs = Math.min(Math.max(r.retryAfterSeconds * 1000, 1000), limits.announceIntervalMaxMs);
          if (r.reason === 'too-soon') {
            return new KfetchError('KF_E_TRACKER_BACKOFF', `tracker ${where} asks to wait ${Math.round(retryAfterMs / 1000)} s`, { detail: { status: 403, retryAfterMs } });
          }
          const why = r.reason === 'full' ? 'is full' : 'store unavailable';
          return new KfetchError('KF_E_TRACKER_REFUSED', `tracker ${where} answered: ${why}; retry after ${Math.round(retryAfterMs / 1000)} s`, {
            detail: { status: 503, retryAfterMs },
          });
        }
        case 'connect':
        case 'announce':
        case 'reconnect':
          return new KfetchError('KF_E_TRACKER_RESPONSE', `tracker ${where} answered the ${step} with a ${r.action} reply`);
      }
    };

    const bitfield = req.blocks === undefined ? undefined : Buffer.from(req.blocks.bitfield.toBytes());
    const fits = bitfield !== undefined && bitfield.length > 0 && announceRequestBytes(swarmId.length / 2, bitfield.length) <= UDP_MAX_DATAGRAM;
    const progress = Number.isFinite(req.progress) ? Math.round(Math.min(1, Math.max(0, req.progress)) * 1_000_000) : 0;

    for (let reconnects = 0; ; reconnects++) {
      let cached = connections.get(key);
      if (cached !== undefined && performance.now() - cached.at >= CONNECTION_CACHE_MS) {
        connections.delete(key);
        cached = undefined;
      }
      if (cached === undefined) {
        const r = await exchange(encodeConnectRequest, 'connect');
        if (r.action !== 'connect') throw refusal(r, 'connect');
        cached = { id: r.connectionId, at: performance.now() };
        connections.set(key, cached);
        if (connections.size > CONNECTION_CACHE_MAX) connections.delete(connections.keys().next().value!);
      }
      const id = cached.id;
      const r = await exchange(
        (transactionId) =>
          encodeAnnounceRequest({
            connectionId: id,
            transactionId,
            swarmId,
            port: req.port,
            progress,
            event: EVENT[req.event ?? 'none'],
            numWant: Math.min(0xffff, Math.max(1, limits.peersPerReply)),
            ...(fits && req.blocks !== undefined ? { blocks: { blockSize: req.blocks.blockSize, bytes: bitfield! } } : {}),
          }),
        'announce',
      );
      if (r.action === 'reconnect') {
        connections.delete(key);
        // One reconnect per announce: a tracker that refuses a fresh id twice is not working.
        if (reconnects >= 1) throw new KfetchError('KF_E_TRACKER_REFUSED', `tracker ${where} refused a fresh connection id`);
        continue;
      }
      if (r.action !== 'announce') throw refusal(r, 'announce');
      const collector = new PeerCollector({ allowLoopback, peersPerReply: limits.peersPerReply });
      for (const p of r.peers) {
        if (collector.full) break;
        collector.add({ ip: p.ip, port: p.port, progress: p.progress / 1_000_000, feeder: p.feeder });
      }
      const intervalMs = clampIntervalMs(r.intervalSeconds, limits.announceIntervalMinMs, limits.announceIntervalMaxMs) ?? limits.announceIntervalDefaultMs;
      return { peers: collector.peers, intervalMs, dropped: collector.dropped };
    }
  } catch (err) {
    if (req.signal?.aborted === true) throw req.signal.reason;
    if (isKfetchError(err)) throw err;
    throw new KfetchError('KF_E_TRACKER_UNREACHABLE', `tracker ${where} unreachable (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  } finally {
    link.release();
  }
}
