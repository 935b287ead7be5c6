// The UDP tracker (kfetch extension, docs/spec-udp-tracker.md): node:dgram beside the HTTP tracker, on the same
// PeerStore, so both list the same swarms under the same rules (the store enforces the caps and the minimum gap).
// Started by `kfetch tracker --udp-port` with the store the HTTP tracker uses, and by tests.
//
// A connect step proves the source address: the connection id is a MAC of the source ip, port and the minute, so the
// tracker keeps no state per client and answers an unproven source only with datagrams no larger than the one it
// sent (a connect reply, or the 8-byte "connect again"); a spoofed source gets nothing worth reflecting. Malformed
// datagrams from unproven sources are dropped unanswered and counted.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { KfetchError } from '../errors.js';
import { canonicalIp } from '../util/address-policy.js';
import { peerKey } from '../peer/peer-info.js';
import type { AnnounceEvent } from './parse-announce.js';
import { StoreUnavailableError, type PeerStore } from './peer-store.js';
import { trackerLimits, type TrackerAnswers, type TrackerLimits } from './tracker-server.js';
import {
  CONNECTION_ID_BYTES,
  UDP_MAX_DATAGRAM,
  decodeRequest,
  encodeAnnounceReply,
  encodeBackoffReply,
  encodeConnectReply,
  encodeErrorReply,
  encodeReconnectReply,
  type AnnounceDatagram,
} from './udp-wire.js';

/** A connection id is valid in the minute it was made and the next (so for 60..120 s). */
export const CONNECTION_EPOCH_MS = 60_000;
/** Announces waiting on the store at once; more are dropped unanswered (the client retransmits). */
const MAX_IN_FLIGHT = 1024;

export interface UdpTrackerOptions extends Partial<Pick<TrackerLimits, 'intervalMs' | 'minIntervalMs' | 'replyPeers'>> {
  /** The swarms: the HTTP tracker's store (the caller owns it; close() leaves it open). */
  store: PeerStore;
  /** Address to bind (default 127.0.0.1). */
  host?: string;
  /** Port to bind; 0 picks a free one (default 0). */
  port?: number;
  log?: Logger;
  /**
   * Key of the connection-id MAC (default 32 random bytes: ids do not survive a restart, clients reconnect). Processes
   * sharing one port must share it (`--workers`: the primary draws it), or an announce reaching another process than
   * its connect is told to connect again.
   */
  secret?: Buffer;
  /** Wall clock for the connection-id minute (default Date.now). */
  now?: () => number;
}

export interface UdpTrackerStats {
  /** Datagrams received. */
  datagrams: number;
  /** Refused by the decoder (short, long, lying lengths, unknown action, bad magic …). */
  malformed: number;
  /** Announces whose connection id is not this source's (answered with the 8-byte "connect again"). */
  badConnectionId: number;
  /** Dropped because MAX_IN_FLIGHT announces were waiting on the store. */
  overloaded: number;
  connects: number;
  answers: TrackerAnswers;
  bytesIn: number;
  bytesOut: number;
}

export interface RunningUdpTracker {
  /** `udp://HOST:PORT` (announce to `${url}/peers/<swarm id>.json`). */
  url: string;
  port: number;
  stats(): UdpTrackerStats;
  /** Stop listening. The store stays open (it is the caller's). */
  close(): Promise<void>;
}

/** See tracker-server.ts: the memory store's clock is monotonic on the wall-clock scale; a shared store uses Date.now. */
const monotonicWallMs = (): number => performance.timeOrigin + performance.now();

/** The connection id a source gets in minute `epoch`: the first 8 bytes of HMAC-SHA256(secret, ip|port|epoch). */
export function connectionId(secret: Buffer, ip: string, port: number, epoch: number): Buffer {
  return createHmac('sha256', secret).update(`${ip}|${port}|${epoch}`).digest().subarray(0, CONNECTION_ID_BYTES);
}

/** Start a UDP tracker on `opts.store`. @throws KfetchError KF_E_LISTEN if the address cannot be bound. */
export async function startUdpTracker(opts: UdpTrackerOptions): Promise<RunningUdpTracker> {
  const host = opts.host ?? '127.0.0.1';
  const limits = trackerLimits(opts);
  const { store, log } = opts;
  const secret = opts.secret ?? randomBytes(32);
  const wallNow = opts.now ?? Date.now;
  const clock = store.kind === 'memory' ? monotonicWallMs : Date.now;
  const intervalSeconds = Math.ceil(limits.intervalMs / 1000);
  const answers: TrackerAnswers = { announced: 0, stopped: 0, listed: 0, tooSoon: 0, full: 0, storeDown: 0, refused: 0 };
  const st: Omit<UdpTrackerStats, 'answers'> = { datagrams: 0, malformed: 0, badConnectionId: 0, overloaded: 0, connects: 0, bytesIn: 0, bytesOut: 0 };
  let inFlight = 0;
  let storeUp = true;
  let closed = false;

  const socket: Socket = createSocket({ type: isIP(host) === 6 ? 'udp6' : 'udp4' });

  function send(d: Buffer, to: RemoteInfo): void {
    if (closed) return;
    st.bytesOut += d.length;
    // No callback: Node then tries a synchronous send first (uv_udp_try_send), cheaper per datagram. A send error
    // (buffer full) is the client's retransmission to handle; it reaches the socket's error listener.
    socket.send(d, to.port, to.address);
  }

  /** Whether `id` is the one this source was given in this minute or the last. */
  function proven(id: Buffer, ip: string, port: number): boolean {
    const epoch = Math.floor(wallNow() / CONNECTION_EPOCH_MS);
    return timingSafeEqual(id, connectionId(secret, ip, port, epoch)) || timingSafeEqual(id, connectionId(secret, ip, port, epoch - 1));
  }

  socket.on('message', (msg, rinfo) => {
    // One datagram must never take the tracker down: a throw here would be an uncaught exception.
    try {
      receive(msg, rinfo);
    } catch (err) {
      st.malformed++;
      log?.error({ err }, 'udp tracker: unexpected error on a datagram');
    }
  });

  function receive(msg: Buffer, rinfo: RemoteInfo): void {
    st.datagrams++;
    st.bytesIn += msg.length;
    const ip = canonicalIp(rinfo.address);
    if (ip === undefined) return;
    const r = decodeRequest(msg);
    if (!r.ok) {
      st.malformed++;
      // Only a source that proved its address (a valid connection id in the first 8 bytes) hears why.
      if (msg.length >= 16 && msg.length <= UDP_MAX_DATAGRAM && proven(msg.subarray(0, CONNECTION_ID_BYTES), ip, rinfo.port)) {
        answers.refused++;
        send(encodeErrorReply(msg.readUInt32BE(12), `${r.error.field}: ${r.error.message}`), rinfo);
      }
      return;
    }
    const req = r.value;
    if (req.action === 'connect') {
      st.connects++;
      send(encodeConnectReply(req.transactionId, connectionId(secret, ip, rinfo.port, Math.floor(wallNow() / CONNECTION_EPOCH_MS))), rinfo);
      return;
    }
    if (!proven(req.connectionId, ip, rinfo.port)) {
      st.badConnectionId++;
      // 8 bytes against an announce of at least 42: no amplification, and the client reconnects at once.
      send(encodeReconnectReply(req.transactionId), rinfo);
      return;
    }
    if (inFlight >= MAX_IN_FLIGHT) {
      st.overloaded++;
      return;
    }
    inFlight++;
    announce(req, ip, rinfo)
      .catch((err: unknown) => {
        log?.error({ err }, 'udp tracker: unexpected error');
        send(encodeErrorReply(req.transactionId, 'internal error'), rinfo);
      })
      .finally(() => {
        inFlight--;
      });
  }

  async function announce(req: AnnounceDatagram, ip: string, rinfo: RemoteInfo): Promise<void> {
    const tx = req.transactionId;
    const sample = req.numWant === 0 ? limits.replyPeers : Math.min(req.numWant, limits.replyPeers);
    const reply = (peers: Parameters<typeof encodeAnnounceReply>[2]): void => send(encodeAnnounceReply(tx, intervalSeconds, peers).datagram, rinfo);
    try {
      const now = clock();
      if (req.event === 'stopped') {
        await store.remove(req.swarmId, ip, req.port);
        storeOk();
        answers.stopped++;
        return reply([]);
      }
      if (req.port === 0) {
        const peers = await store.list(req.swarmId, sample, { now });
        storeOk();
        answers.listed++;
        return reply(peers);
      }
      const update = {
        ip,
        port: req.port,
        progress: req.progress / 1_000_000,
        ...(req.event === 'none' ? {} : { event: req.event satisfies AnnounceEvent }),
        ...(req.blocks === undefined ? {} : { blocks: { hex: req.blocks.bytes.toString('hex'), blockSize: req.blocks.blockSize } }),
      };
      const { result, peers } = await store.announce(req.swarmId, update, { now, sample });
      storeOk();
      if (!result.ok) {
        if (result.reason === 'too-soon') {
          answers.tooSoon++;
          return send(encodeBackoffReply(tx, result.retryAfterMs / 1000, 'too-soon'), rinfo);
        }
        answers.full++;
        log?.warn({ swarm: req.swarmId, what: result.what }, 'udp tracker: full');
        return send(encodeBackoffReply(tx, intervalSeconds, 'full'), rinfo);
      }
      answers.announced++;
      log?.debug({ swarm: req.swarmId, peer: peerKey(ip, req.port), replied: peers.length }, 'udp tracker: announce');
      return reply(peers);
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      answers.storeDown++;
      if (storeUp) log?.warn({ store: store.kind, reason: err.message }, 'udp tracker: store unavailable; answering back-off until it is back');
      storeUp = false;
      const s = err.retryAfterSeconds;
      send(encodeBackoffReply(tx, Number.isFinite(s) ? Math.min(3600, Math.max(1, s)) : intervalSeconds, 'store-down'), rinfo);
    }
  }

  function storeOk(): void {
    if (storeUp) return;
    storeUp = true;
    log?.info({ store: store.kind }, 'udp tracker: store is back');
  }

  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      // exclusive: false (dgram's default, said here because it matters): in a node:cluster worker (`kfetch tracker
      // --workers`) the primary binds the socket once and every worker reads the same one, 0 included.
      socket.bind({ port: opts.port ?? 0, address: host, exclusive: false }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    socket.close();
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new KfetchError('KF_E_LISTEN', `cannot listen on udp ${host}:${opts.port ?? 0} (${code})`, { cause: err });
  }
  socket.on('error', (err) => log?.warn({ err }, 'udp tracker: socket error'));
  const port = socket.address().port;
  const url = `udp://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log?.info({ url, store: store.kind }, 'udp tracker: listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    stats: () => ({ ...st, answers: { ...answers } }),
    close() {
      closing ??= new Promise<void>((resolve) => {
        closed = true;
        socket.close(() => resolve());
      });
      return closing;
    },
  };
}
