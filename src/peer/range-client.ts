// The hot path of a download: HTTP/1.1 Range GETs over keep-alive sockets (net `onread`). The response head is read
// into one shared buffer and parsed by the pure `ResponseParser` (response-parser.ts); once the body starts, each
// socket read lands straight in the caller's block slot, so body bytes are never copied in user space (issue 11)
// but the last one (see ResponseParser.inPlaceWindow).
// Anything but the answer asked for is a per-peer error and the socket is dropped.
//
// Why not undici here (it remains the client for trackers and /blocks): measured on this 2-core VM, receiving
// 256 KiB ranges cost the client ~3 CPU-s per GiB through undici's dispatch API and ~0.8 CPU-s through this reader
// (raw TCP alone ~0.7), and undici allocates a buffer per socket read, which keeps RSS up between GCs.

import { connect, type Socket } from 'node:net';
import { KfetchError, type ErrorCode } from '../errors.js';
import { VERSION } from '../version.js';
import { assertDialable, policedLookup } from './dial-guard.js';
import { ResponseParser, type Problem, type Verdict } from './response-parser.js';

export interface RangeClientOptions {
  /** Sockets kept per peer; requests beyond wait for one (the coordinator's slots bound them anyway). */
  connectionsPerPeer: number;
  connectTimeoutMs: number;
  /** An idle keep-alive socket is closed after this long. */
  idleTimeoutMs: number;
  /** Response head (status line + headers) larger than this is refused. */
  maxHeadBytes: number;
  /**
   * Called when a peer's `X-Kascade-Wire` header (its peer wire port, raw) differs from the one its previous
   * answer on the same connection carried (undefined: none), so the caller can switch that peer to the wire.
   */
  onWireAdvert?: (peer: string, value: string | undefined) => void;
}

export const DEFAULT_RANGE_CLIENT: RangeClientOptions = {
  connectionsPerPeer: 32,
  connectTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
  maxHeadBytes: 16 * 1024,
};

/**
 * One read buffer for every socket: a read lands in it and is consumed by our callback before the event loop
 * reads from any other socket, so sockets can share it (64 KiB per socket × dozens of sockets was RSS).
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

interface Pending {
  into: Buffer;
  first: number;
  last: number;
  resolve: () => void;
  reject: (e: KfetchError) => void;
}

/** One keep-alive connection to a peer; at most one request at a time. */
class Connection {
  readonly socket: Socket;
  private readonly peer: string;
  private readonly readBuf = READ_BUFFER;
  private readonly parser: ResponseParser;
  private req: Pending | undefined;
  private readonly onWireAdvert: ((peer: string, value: string | undefined) => void) | undefined;
  /** The X-Kascade-Wire value last reported for this connection. */
  private wireAdvert: string | undefined;
  connected = false;
  dead = false;
  idleTimer: NodeJS.Timeout | undefined;

  constructor(peer: string, host: string, port: number, o: RangeClientOptions, onDead: (c: Connection) => void) {
    this.peer = peer;
    this.parser = new ResponseParser(o.maxHeadBytes);
    this.onWireAdvert = o.onWireAdvert;
    this.socket = connect({
      host,
      port,
      lookup: policedLookup,
      noDelay: true,
      // Asked after every read: where the next read lands (the slot itself while a body is read, see onRead).
      onread: { buffer: () => this.nextReadBuffer(), callback: (n: number, buf: Uint8Array) => this.onRead(n, buf) },
    });
    this.socket.setTimeout(o.connectTimeoutMs, () => {
      if (!this.connected) this.fail({ code: 'KF_E_PEER_TIMEOUT', message: `connecting took longer than ${o.connectTimeoutMs} ms` });
    });
    this.socket.once('connect', () => {
      this.connected = true;
      this.socket.setTimeout(0);
    });
    this.socket.on('error', (err) => {
      if (this.req !== undefined) this.settle(this.parser.end(err));
    });
    this.socket.on('close', () => {
      if (this.req !== undefined) this.settle(this.parser.end());
      this.dead = true;
      onDead(this);
    });
  }

  get busy(): boolean {
    return this.req !== undefined;
  }

  send(swarmId: string, hostHeader: string, p: Pending): void {
    this.req = p;
    this.parser.begin(p.first, p.last, p.into);
    this.socket.write(
      `GET /${swarmId} HTTP/1.1\r\nHost: ${hostHeader}\r\nRange: bytes=${p.first}-${p.last}\r\nUser-Agent: kfetch/${VERSION}\r\n\r\n`,
      'latin1',
    );
  }

  /** Abandon the request in flight (abort or deadline): the socket cannot be reused mid-response. */
  abort(code: ErrorCode, message: string, cause?: unknown): void {
    this.fail({ code, message, cause });
  }

  /**
   * The buffer for the next read of this socket: while a Content-Length body is being read, the rest of the
   * request's slot, so body bytes land in place and are never copied; otherwise the shared read buffer. Node asks
   * after every read callback, when this connection's state for the next read is known.
   */
  private nextReadBuffer(): Buffer {
    return (this.req === undefined ? undefined : this.parser.inPlaceWindow()) ?? this.readBuf;
  }

  /** `n` bytes arrived in `buf`: the shared read buffer, or the slot window `nextReadBuffer` gave. */
  private onRead(n: number, buf: Uint8Array): boolean {
    if (this.req === undefined) {
      // Bytes nobody asked for: the peer is out of step; drop the connection.
      this.destroy();
      return false;
    }
    if (buf !== this.readBuf) return this.settle(this.parser.receivedInPlace(n));
    return this.settle(this.parser.feed(this.readBuf, 0, n));
  }

  /** Act on the parser's verdict; false when the socket is done for. */
  private settle(v: Verdict): boolean {
    if (v.kind === 'more') return true;
    if (this.parser.wireAdvert !== this.wireAdvert) {
      this.wireAdvert = this.parser.wireAdvert;
      this.onWireAdvert?.(this.peer, this.wireAdvert);
    }
    if (v.kind === 'fail') {
      this.fail(v.problem);
      return false;
    }
    const req = this.req!;
    this.req = undefined;
    if (!v.reuse) this.destroy();
    req.resolve();
    return v.reuse;
  }

  /** `fewer`: the bytes the peer said it would send instead (detail.announcedBytes): an answer, not a broken connection. */
  private fail(p: Problem): void {
    const req = this.req;
    this.req = undefined;
    this.destroy();
    const detail = { ...(p.status === undefined ? {} : { status: p.status }), ...(p.fewer === undefined ? {} : { announcedBytes: p.fewer }) };
    req?.reject(new KfetchError(p.code, p.message, { peer: this.peer, ...(p.cause === undefined ? {} : { cause: p.cause }), ...(Object.keys(detail).length === 0 ? {} : { detail }) }));
  }

  destroy(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.dead = true;
    this.socket.destroy();
  }
}

/** Range GETs to many peers, a small keep-alive pool per peer. */
export class RangeClient {
  private readonly o: RangeClientOptions;
  private readonly pools = new Map<string, { idle: Connection[]; open: number; waiters: (() => void)[] }>();
  private closed = false;

  constructor(o: Partial<RangeClientOptions> = {}) {
    this.o = { ...DEFAULT_RANGE_CLIENT, ...o };
  }

  /**
   * GET `/<swarmId>` with `Range: bytes=first-last` from `peer` (`ip:port`, `[v6]:port` or `name:port`) into
   * `into`; resolves once exactly last-first+1 bytes arrived, or rejects with a KF_E_PEER_* KfetchError
   * (`detail.status` when the peer answered with a status). Aborting `signal` drops the socket.
   */
  async fetchRange(peer: string, swarmId: string, first: number, last: number, into: Buffer, signal: AbortSignal): Promise<void> {
    const want = last - first + 1;
    if (into.length < want) throw new RangeError(`buffer of ${into.length} bytes for a ${want}-byte range`);
    if (signal.aborted) throw abortError(peer, signal);
    const conn = await this.acquire(peer, signal);
    if (signal.aborted) {
      // Aborted between the wake-up and now: the listener below would never fire, and the request would be sent.
      this.release(peer, conn);
      throw abortError(peer, signal);
    }
    const onAbort = (): void => {
      const e = abortError(peer, signal);
      conn.abort(e.code, e.message, signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await new Promise<void>((resolve, reject) => conn.send(swarmId, peer, { into, first, last, resolve, reject }));
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.release(peer, conn);
    }
  }

  private pool(peer: string): { idle: Connection[]; open: number; waiters: (() => void)[] } {
    let p = this.pools.get(peer);
    if (p === undefined) this.pools.set(peer, (p = { idle: [], open: 0, waiters: [] }));
    return p;
  }

  private async acquire(peer: string, signal: AbortSignal): Promise<Connection> {
    for (;;) {
      // Looked up again after every wait: a pool left unused meanwhile is forgotten (forgetIfUnused).
      const p = this.pool(peer);
      if (this.closed) throw new KfetchError('KF_E_PEER_CONNECT', 'client closed', { peer });
      const idle = p.idle.pop();
      if (idle !== undefined) {
        if (idle.idleTimer !== undefined) clearTimeout(idle.idleTimer);
        if (!idle.dead) return idle;
        continue;
      }
      if (p.open < this.o.connectionsPerPeer) {
        let host: string;
        let port: number;
        try {
          ({ host, port } = splitPeer(peer));
          assertDialable(host, peer);
        } catch (err) {
          this.forgetIfUnused(peer, p);
          throw err;
        }
        p.open++;
        return new Connection(peer, host, port, this.o, (dead) => {
          p.open--;
          // A dead idle connection leaves the pool now, not at the next request (a peer may never be asked again).
          const at = p.idle.indexOf(dead);
          if (at !== -1) p.idle.splice(at, 1);
          this.wakeOne(p);
          this.forgetIfUnused(peer, p);
        });
      }
      await new Promise<void>((resolve, reject) => {
        const wake = (): void => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        // An aborted waiter leaves the queue: left there, the next release would wake it instead of a live one.
        const onAbort = (): void => {
          const at = p.waiters.indexOf(wake);
          if (at !== -1) p.waiters.splice(at, 1);
          this.forgetIfUnused(peer, p);
          reject(abortError(peer, signal));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        p.waiters.push(wake);
      });
    }
  }

  private release(peer: string, conn: Connection): void {
    // Gone only when every connection of the peer died and nobody waits: this one is dead, nothing to do.
    const p = this.pools.get(peer);
    if (p === undefined) return;
    if (!conn.dead && !conn.busy && !this.closed) {
      conn.idleTimer = setTimeout(() => conn.destroy(), this.o.idleTimeoutMs);
      conn.idleTimer.unref();
      p.idle.push(conn);
    }
    this.wakeOne(p);
  }

  private wakeOne(p: { waiters: (() => void)[] }): void {
    p.waiters.shift()?.();
  }

  /**
   * Nothing is kept for a peer with no connection and nobody waiting: a box meets new peers for months, and each
   * entry held its dead connections (sockets, parsers) until that peer was asked again, which may be never.
   */
  private forgetIfUnused(peer: string, p: { idle: Connection[]; open: number; waiters: (() => void)[] }): void {
    if (p.open === 0 && p.idle.length === 0 && p.waiters.length === 0 && this.pools.get(peer) === p) this.pools.delete(peer);
  }

  /** Peers with per-peer state (connections, idle or in use, or requests waiting): bounded by what is in use now. */
  get peerCount(): number {
    return this.pools.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.pools.values()) {
      for (const c of p.idle) c.destroy();
      p.idle = [];
      for (const w of p.waiters.splice(0)) w();
    }
  }
}

function splitPeer(peer: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(peer);
  if (m === null) throw new KfetchError('KF_E_PEER_CONNECT', `not a host:port peer address: ${peer}`, { peer });
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}

/** The error for a request cut short by `signal`: a deadline (TimeoutError) or a cancel. */
export function abortError(peer: string, signal: AbortSignal): KfetchError {
  const reason: unknown = signal.reason;
  const timedOut = reason instanceof DOMException && reason.name === 'TimeoutError';
  return new KfetchError(timedOut ? 'KF_E_PEER_TIMEOUT' : 'KF_E_PEER_CONNECT', timedOut ? 'peer did not answer in time' : 'request aborted', {
    peer,
    cause: reason,
    detail: { aborted: !timedOut },
  });
}
