// The binary peer wire's client side (docs/spec-peer-wire.md): fetch a run of blocks from a kfetch seeder's wire
// port into the caller's buffer, with the same result shape as the HTTP range client (resolve once every byte is in,
// or a KF_E_PEER_* KfetchError with `detail.status` in HTTP terms), so the coordinator treats both alike. A few
// connections per peer, each pipelining up to LIMITS.wireMaxPipelined requests answered in order.
//
// `detail.fallback` marks the errors that mean "this peer's wire is not to be trusted: use HTTP" (no hello, a bad
// frame, status bad-request or unknown-file, a refused connection, a connection the seeder cut with requests
// outstanding, and — in WireOrHttp — a request that missed its deadline on the wire); WireOrHttp does exactly that
// and remembers it per peer. Not-held and busy are answers (HTTP 400 and 503 would say the same), not doubts.

import { connect, type Socket } from 'node:net';
import { KfetchError, type ErrorCode } from '../errors.js';
import { LIMITS } from '../limits.js';
import { assertDialable, policedLookup } from './dial-guard.js';
import { abortError } from './range-client.js';
import { REQUEST_BYTES, ReplyDecoder, WireStatus, encodeHello, encodeRequest, type WireReply } from './wire-frames.js';
import { setNewest } from '../util/bounded-map.js';

export interface WireClientOptions {
  /** Connections per peer; requests go to the one with the fewest outstanding. */
  connectionsPerPeer: number;
  /** Requests outstanding per connection (at most the spec's 64). */
  maxPipelined: number;
  /** Connect and receive the seeder's hello within this, or the wire is given up (fallback). */
  connectTimeoutMs: number;
  /** A connection with nothing outstanding this long is closed. */
  idleTimeoutMs: number;
}

export const DEFAULT_WIRE_CLIENT: WireClientOptions = {
  connectionsPerPeer: 4,
  maxPipelined: LIMITS.wireMaxPipelined,
  connectTimeoutMs: 5_000,
  // Below the seeder's idle timeout (30 s), so the client, not the seeder, closes an idle connection: a request
  // sent just as the seeder closes would fail.
  idleTimeoutMs: 20_000,
};

/** A run of blocks of one file, as the coordinator asks for it. */
export interface WireBlocks {
  /** The file's SHA-256 (`filehash`), 64 hex. */
  fileId: string;
  blockSize: number;
  firstBlock: number;
  count: number;
  /** The bytes the run covers (the last block of a file may be short): what an ok reply must carry exactly. */
  length: number;
}

/** HTTP's word for each refusal, so the coordinator's rules for HTTP statuses apply unchanged. */
const HTTP_STATUS: Record<Exclude<WireStatus, 0>, number> = {
  [WireStatus.notHeld]: 400,
  [WireStatus.busy]: 503,
  [WireStatus.badRequest]: 416,
  [WireStatus.unknownFile]: 404,
};

/**
 * One read buffer for every wire socket: each read is decoded (and copied out) before the event loop reads from any
 * other socket, so they can share it.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

interface Pending {
  id: number;
  length: number;
  /** Where the body goes; undefined once abandoned before its body began (the reply is then read and dropped). */
  into: Buffer | undefined;
  /** Its header arrived: its body lands in `into` from now on. */
  started: boolean;
  resolve: () => void;
  reject: (e: KfetchError) => void;
}

class WireConnection {
  private readonly socket: Socket;
  private readonly decoder: ReplyDecoder;
  readonly pending: Pending[] = [];
  private nextId = 1;
  dead = false;
  private greeted = false;
  private helloTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  /**
   * Request frames encoded in this turn of the event loop, written together at its end (`flush` on setImmediate: after
   * the replies of every socket read in this turn settled, with no timer and no wait on I/O): the requests that a
   * burst of replies frees cost one socket write (one syscall) instead of one each. Room for maxPipelined frames, the
   * most that can be outstanding (a full connection is given no more).
   */
  private readonly out: Buffer;
  private outBytes = 0;
  private flushQueued = false;

  constructor(
    private readonly peer: string,
    host: string,
    port: number,
    private readonly o: WireClientOptions,
    private readonly onDead: (c: WireConnection) => void,
  ) {
    this.decoder = new ReplyDecoder((id) => {
      const p = this.pending[0];
      if (p === undefined || p.id !== id) return undefined;
      p.started = true;
      return { length: p.length, into: p.into };
    });
    this.socket = connect({
      host,
      port,
      lookup: policedLookup,
      noDelay: true,
      // Asked before every read: mid-body, the rest of the caller's buffer (bytes land in place, never copied);
      // otherwise the shared read buffer, fed to the decoder (as range-client.ts does for HTTP bodies).
      onread: { buffer: () => this.decoder.inPlaceWindow() ?? READ_BUFFER, callback: (n: number, buf: Uint8Array) => this.onRead(n, buf) },
    });
    this.out = Buffer.allocUnsafe(o.maxPipelined * REQUEST_BYTES);
    this.socket.write(encodeHello());
    // From the dial to the whole hello, however it trickles in.
    this.helloTimer = setTimeout(() => {
      if (!this.decoder.helloDone) this.fail('KF_E_PEER_TIMEOUT', `no wire hello within ${o.connectTimeoutMs} ms`, true);
    }, o.connectTimeoutMs);
    this.helloTimer.unref();
    // The seeder closed the connection, or it failed, with requests outstanding (we close it only through fail()):
    // a doubt whenever it happens. A wire that cuts replies mid-body must not cost us a peer whose HTTP works; a
    // seeder that is gone fails over HTTP too, as it would have.
    this.socket.on('error', (err) => this.fail('KF_E_PEER_CONNECT', `wire connection failed: ${err.message}`, true, err));
    this.socket.on('close', () => this.fail('KF_E_PEER_CONNECT', 'wire connection closed', true));
  }

  send(b: WireBlocks, into: Buffer | undefined, resolve: () => void, reject: (e: KfetchError) => void): Pending {
    clearTimeout(this.idleTimer);
    const id = this.nextId;
    if (this.outBytes + REQUEST_BYTES > this.out.length) this.flush(); // never in practice (see `out`); kept safe
    // Encoded (and checked: it throws for a field out of bounds) before it counts as outstanding.
    encodeRequest({ requestId: id, fileId: b.fileId.toLowerCase(), blockSize: b.blockSize, firstBlock: b.firstBlock, count: b.count }, this.out, this.outBytes);
    this.outBytes += REQUEST_BYTES;
    this.nextId = (this.nextId + 1) >>> 0;
    const p: Pending = { id, length: b.length, into, started: false, resolve, reject };
    this.pending.push(p);
    if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(this.flush);
    }
    return p;
  }

  /** Write the frames encoded so far in one write (a copy: the socket may hold it until the kernel takes it). */
  private readonly flush = (): void => {
    this.flushQueued = false;
    const n = this.outBytes;
    this.outBytes = 0;
    if (n === 0 || this.dead) return;
    this.socket.write(Buffer.from(this.out.subarray(0, n)));
  };

  /** Give up one request: dropped quietly if its body has not begun, else the connection goes (it is mid-body). */
  abandon(p: Pending, e: KfetchError): void {
    const at = this.pending.indexOf(p);
    if (at < 0) return;
    if (p.started) {
      this.pending.splice(at, 1);
      p.reject(e);
      // The others on this connection did nothing wrong: `ours` tells WireOrHttp to ask again, not blame the peer.
      this.fail('KF_E_PEER_CONNECT', 'connection dropped: a request abandoned mid-body', false, undefined, true);
      return;
    }
    p.into = undefined; // never write into a buffer its owner took back
    p.resolve = () => undefined;
    const reject = p.reject;
    p.reject = () => undefined;
    reject(e);
  }

  private onRead(n: number, buf: Uint8Array): boolean {
    if (this.dead) return false;
    try {
      const onReply = (r: WireReply): void => this.settle(this.pending.shift()!, r);
      if (buf === READ_BUFFER) this.decoder.feed(READ_BUFFER.subarray(0, n), onReply);
      else this.decoder.receivedInPlace(n, onReply);
      if (!this.greeted && this.decoder.helloDone) {
        this.greeted = true;
        clearTimeout(this.helloTimer);
      }
    } catch (err) {
      const e = err instanceof KfetchError ? err : new KfetchError('KF_E_PEER_PROTOCOL', String(err));
      this.fail(e.code, e.message, true, err);
      return false;
    }
    if (this.pending.length === 0 && this.decoder.partialBytes > 0) {
      this.fail('KF_E_PEER_PROTOCOL', 'wire: seeder sent bytes nobody asked for', true);
    }
    if (this.pending.length === 0 && !this.dead) {
      this.idleTimer = setTimeout(() => this.close(), this.o.idleTimeoutMs);
      this.idleTimer.unref();
    }
    return !this.dead;
  }

  private settle(p: Pending, r: WireReply): void {
    if (r.status === WireStatus.ok) return p.resolve();
    const status = HTTP_STATUS[r.status as Exclude<WireStatus, 0>];
    const fallback = r.status === WireStatus.badRequest || r.status === WireStatus.unknownFile;
    // As the HTTP client words 400/404/416 (lied: not here) and 503 (protocol: come back later).
    const code: ErrorCode = r.status === WireStatus.busy ? 'KF_E_PEER_PROTOCOL' : 'KF_E_PEER_LIED';
    p.reject(
      new KfetchError(code, `peer answered wire status ${r.status}`, {
        peer: this.peer,
        detail: { status, wireStatus: r.status, fallback, ...(r.status === WireStatus.busy ? { retryAfterS: r.retryAfterS } : {}) },
      }),
    );
  }

  /** Fail every outstanding request and drop the connection. */
  fail(code: ErrorCode, message: string, fallback: boolean, cause?: unknown, ours = false): void {
    if (this.dead) return;
    this.dead = true;
    clearTimeout(this.idleTimer);
    clearTimeout(this.helloTimer);
    this.socket.destroy();
    const all = this.pending.splice(0);
    for (const p of all) p.reject(new KfetchError(code, message, { peer: this.peer, ...(cause === undefined ? {} : { cause }), detail: { fallback, ...(ours ? { ours } : {}) } }));
    this.onDead(this);
  }

  close(): void {
    this.fail('KF_E_PEER_CONNECT', 'wire client closed', false);
  }
}

/** Runs of blocks from many peers' wire ports. */
export class WireClient {
  private readonly o: WireClientOptions;
  private readonly pools = new Map<string, WireConnection[]>();
  /** Requests waiting for room on a peer's full connections, woken one per settled request. */
  private readonly waiters = new Map<string, (() => void)[]>();
  private closed = false;

  constructor(o: Partial<WireClientOptions> = {}) {
    this.o = { ...DEFAULT_WIRE_CLIENT, ...o };
    if (this.o.maxPipelined < 1 || this.o.maxPipelined > LIMITS.wireMaxPipelined) {
      throw new RangeError(`maxPipelined must be in [1, ${LIMITS.wireMaxPipelined}]`);
    }
  }

  /**
   * Fetch `blocks` from `peer` (`host:wirePort`) into `into` (at least `blocks.length` bytes); resolves once exactly
   * that many arrived, or rejects with a KF_E_PEER_* KfetchError (`detail.status` as HTTP would have said,
   * `detail.fallback` when HTTP should be used instead). Aborting `signal` gives the request up.
   */
  fetchBlocks(peer: string, blocks: WireBlocks, into: Buffer, signal: AbortSignal): Promise<void> {
    if (into.length < blocks.length) return Promise.reject(new RangeError(`buffer of ${into.length} bytes for ${blocks.length}`));
    if (signal.aborted) return Promise.reject(abortError(peer, signal));
    if (this.closed) return Promise.reject(new KfetchError('KF_E_PEER_CONNECT', 'wire client closed', { peer, detail: { fallback: false } }));
    let conn: WireConnection | undefined;
    try {
      conn = this.connection(peer);
    } catch (err) {
      return Promise.reject(err instanceof KfetchError ? err : new KfetchError('KF_E_PEER_CONNECT', String(err), { peer, detail: { fallback: true } }));
    }
    // Every connection full: wait for a reply to make room (the coordinator's slots keep this short).
    if (conn === undefined) return this.room(peer, signal).then(() => this.fetchBlocks(peer, blocks, into, signal));
    const c = conn;
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => c.abandon(p, abortError(peer, signal));
      const done = (): void => {
        signal.removeEventListener('abort', onAbort);
        this.wakeOne(peer);
      };
      const p = c.send(
        blocks,
        into,
        () => {
          done();
          resolve();
        },
        (e) => {
          done();
          reject(e);
        },
      );
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Resolves when a request to `peer` settles (room on a connection), rejects on abort. */
  private room(peer: string, signal: AbortSignal): Promise<void> {
    let list = this.waiters.get(peer);
    if (list === undefined) this.waiters.set(peer, (list = []));
    const waiting = list;
    return new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const at = waiting.indexOf(wake);
        if (at >= 0) waiting.splice(at, 1);
        if (waiting.length === 0 && this.waiters.get(peer) === waiting) this.waiters.delete(peer);
        reject(abortError(peer, signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      waiting.push(wake);
    });
  }

  /** Wake one request waiting for room on `peer`'s connections; the list goes with its last waiter. */
  private wakeOne(peer: string): void {
    const list = this.waiters.get(peer);
    if (list === undefined) return;
    const w = list.shift();
    if (list.length === 0) this.waiters.delete(peer);
    w?.();
  }

  /** The connection with the fewest outstanding requests, opening one while under connectionsPerPeer; undefined when all are full. */
  private connection(peer: string): WireConnection | undefined {
    const pool = this.pools.get(peer) ?? [];
    let best: WireConnection | undefined;
    for (const c of pool) if (best === undefined || c.pending.length < best.pending.length) best = c;
    // An idle connection first; else a new one while under the cap; else the least loaded with room.
    if (best !== undefined && best.pending.length === 0) return best;
    if (pool.length >= this.o.connectionsPerPeer) {
      if (best !== undefined && best.pending.length < this.o.maxPipelined) return best;
      return undefined;
    }
    const { host, port } = splitPeer(peer);
    assertDialable(host, peer);
    const list = pool;
    const c = new WireConnection(peer, host, port, this.o, (dead) => {
      const at = list.indexOf(dead);
      if (at >= 0) list.splice(at, 1);
      // Nothing is kept per peer once its last connection is gone (a box meets new peers for months).
      if (list.length === 0 && this.pools.get(peer) === list) this.pools.delete(peer);
    });
    list.push(c);
    if (list.length === 1) this.pools.set(peer, list);
    return c;
  }

  /**
   * Close every wire connection to `peer`: their requests fail as dropped by us (`detail.ours`), so WireOrHttp asks
   * HTTP for them at once instead of each waiting out its deadline on a wire that stalled.
   */
  drop(peer: string): void {
    for (const c of [...(this.pools.get(peer) ?? [])]) c.fail('KF_E_PEER_CONNECT', 'wire connection dropped: the wire stalled', false, undefined, true);
  }

  /** Peers with per-peer state (connections or requests waiting for room): bounded by what is in use now. */
  get peerCount(): number {
    return new Set([...this.pools.keys(), ...this.waiters.keys()]).size;
  }

  close(): void {
    this.closed = true;
    for (const pool of this.pools.values()) for (const c of [...pool]) c.close();
    this.pools.clear();
    for (const list of this.waiters.values()) for (const w of list.splice(0)) w(); // they then find the client closed
  }
}

/** The HTTP side fetchWithFallback falls back to (BlockClient.fetchRange has this shape). */
export interface HttpRangeFetcher {
  fetchRange(peer: string, swarmId: string, first: number, last: number, into: Buffer, signal: AbortSignal): Promise<unknown>;
}

/**
 * How a run's bytes came: over the peer wire, over HTTP, or over HTTP after the wire was tried for this very run and
 * given up (`fallback`: a doubt about the peer's wire, or a request dropped with a connection we abandoned).
 */
export type FetchVia = 'wire' | 'http' | 'fallback';

/**
 * The interface the coordinator can use: the wire when the peer advertised one (`wirePeer`, `host:port`) and it has
 * not failed us, else HTTP. A doubt on the wire (detail.fallback) marks the peer wire-less for this client and
 * retries the same run over HTTP at once; a request dropped because we abandoned another on its connection
 * (detail.ours) is retried over HTTP too, the wire kept; either resolves `fallback`. Other errors (not held, busy,
 * timeouts) are returned as they are.
 */
export class WireOrHttp {
  /**
   * Wire addresses that failed with a doubt → when to try their wire again (ms on `now`'s clock). Bounded in time
   * and count, since a seeding box lives for months: a peer fixed or restarted gets its wire back, and a flood of
   * bad advertisements cannot grow this map (past the cap the oldest entry goes: that peer just tries its wire once
   * more).
   */
  private readonly noWire = new Map<string, number>();
  private readonly retryMs: number;
  private readonly maxRemembered: number;
  private readonly now: () => number;

  constructor(
    private readonly wire: WireClient,
    private readonly http: HttpRangeFetcher,
    o: { retryMs?: number; maxRemembered?: number; now?: () => number } = {},
  ) {
    this.retryMs = o.retryMs ?? 10 * 60_000;
    this.maxRemembered = o.maxRemembered ?? 4_096;
    this.now = o.now ?? (() => performance.now());
  }

  /** True while the peer's wire is trusted: never failed with a doubt, or failed longer than `retryMs` ago. */
  usesWire(wirePeer: string): boolean {
    const until = this.noWire.get(wirePeer);
    if (until === undefined) return true;
    if (this.now() < until) return false;
    this.noWire.delete(wirePeer);
    return true;
  }

  private distrust(wirePeer: string): void {
    setNewest(this.noWire, wirePeer, this.now() + this.retryMs, this.maxRemembered);
  }

  async fetch(
    httpPeer: string,
    wirePeer: string | undefined,
    swarmId: string,
    blocks: WireBlocks,
    into: Buffer,
    signal: AbortSignal,
  ): Promise<FetchVia> {
    const first = blocks.firstBlock * blocks.blockSize;
    const last = first + blocks.length - 1;
    if (wirePeer !== undefined && this.usesWire(wirePeer)) {
      try {
        await this.wire.fetchBlocks(wirePeer, blocks, into, signal);
        return 'wire';
      } catch (err) {
        if (!(err instanceof KfetchError)) throw err;
        // No reply in time is a doubt too: a wire that stalls (before or inside a reply) while HTTP works must not
        // cost us the peer. This request's time is up (a timeout, as over HTTP); the peer's later requests, and those
        // in flight on its wire connections, go over HTTP.
        if (err.code === 'KF_E_PEER_TIMEOUT' && signal.aborted) {
          this.distrust(wirePeer);
          this.wire.drop(wirePeer);
          throw err;
        }
        // Dropped with its connection because we abandoned another request on it (a deadline, a copy that won):
        // not the peer's doing, so this run is asked again over HTTP and the wire stays in use.
        const ours = err.detail?.ours === true && !signal.aborted;
        if (err.detail?.fallback !== true && !ours) throw err;
        if (!ours) this.distrust(wirePeer);
        await this.http.fetchRange(httpPeer, swarmId, first, last, into, signal);
        return 'fallback';
      }
    }
    await this.http.fetchRange(httpPeer, swarmId, first, last, into, signal);
    return 'http';
  }
}

/**
 * The wire address a seeder advertises: its `X-Kascade-Wire` header value (a port, canonical decimal 1-65535) on the
 * host of its HTTP address `httpPeer` (`ip:port` or `[v6]:port`). Undefined for no header or any other value, so
 * a bad advertisement only means HTTP. (The coordinator's seam: the header comes from the HTTP replies it gets.)
 */
export function wirePeerFrom(httpPeer: string, header: string | undefined): string | undefined {
  if (header === undefined || !/^[1-9][0-9]{0,4}$/.test(header.trim())) return undefined;
  const port = Number(header.trim());
  if (port > 65535) return undefined;
  const m = /^(\[[^\]]+\]|[^:]+):\d+$/.exec(httpPeer);
  return m === null ? undefined : `${m[1]}:${port}`;
}

function splitPeer(peer: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(peer);
  const port = Number(m?.[3]);
  if (m === null || !(port > 0 && port < 65536)) throw new KfetchError('KF_E_PEER_CONNECT', `not a host:port wire address: ${peer}`, { peer, detail: { fallback: true } });
  return { host: m[1] ?? m[2]!, port };
}
