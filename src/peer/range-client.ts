// The hot path of a download: HTTP/1.1 Range GETs over keep-alive sockets that read into one reused buffer per
// socket (net `onread`) and copy the body straight into the caller's block slot. Only what a block fetch needs:
// a 206 with Content-Length (or, on a connection the peer closes, a body delimited by the close); anything else
// is a per-peer error and the socket is dropped.
//
// The original 2015 Python peer (SPEC §6) is read as well: its 206 is HTTP/1.0 with `Range: bytes=a-b/size` in
// place of Content-Range and then a close, and its 404 has a head that never ends (no blank line) before the
// close; a head cut off by the close is read as the status its status line names (see `cutOff`).
//
// Why not undici here (it remains the client for trackers and /blocks): measured on this 2-core VM, receiving
// 256 KiB ranges cost the client ~3 CPU-s per GiB through undici's dispatch API and ~0.8 CPU-s through this reader
// (raw TCP alone ~0.7), and undici allocates a buffer per socket read, which keeps RSS up between GCs.

import { connect, type Socket } from 'node:net';
import { KfetchError, type ErrorCode } from '../errors.js';
import { VERSION } from '../version.js';
import { assertDialable, policedLookup } from './dial-guard.js';

export interface RangeClientOptions {
  /** Sockets kept per peer; requests beyond wait for one (the coordinator's slots bound them anyway). */
  connectionsPerPeer: number;
  connectTimeoutMs: number;
  /** An idle keep-alive socket is closed after this long. */
  idleTimeoutMs: number;
  /** Response head (status line + headers) larger than this is refused. */
  maxHeadBytes: number;
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
const CRLFCRLF = Buffer.from('\r\n\r\n');
/** The status line at the start of a head, when at least that much arrived (it may lack its CRLF at EOF). */
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?:[ \r]|$)/;
/** A `Content-Range: bytes a-b/size` value. */
const CONTENT_RANGE = /^bytes (\d{1,16})-(\d{1,16})\/(?:\d{1,16}|\*)$/;
/** The original peer's `Range: bytes=a-b/size` response header (unit and size optional). */
const RANGE_ECHO = /^(?:bytes[= ])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/;

/** `fewer`: the peer's own head says it sends fewer bytes than asked (it has only part of the range). */
type Problem = { code: ErrorCode; message: string; status?: number; fewer?: number };

interface Pending {
  into: Buffer;
  want: number;
  first: number;
  last: number;
  resolve: () => void;
  reject: (e: KfetchError) => void;
}

/** One keep-alive connection to a peer; at most one request at a time. */
class Connection {
  readonly socket: Socket;
  private readonly peer: string;
  private readonly maxHead: number;
  private readonly readBuf = READ_BUFFER;
  private head: Buffer[] = [];
  private headBytes = 0;
  private inBody = false;
  private got = 0;
  private keepAlive = true;
  /** The 206 has no Content-Length and the peer closes after it: the body ends at EOF and must be exactly `want`. */
  private closeDelimited = false;
  private req: Pending | undefined;
  connected = false;
  dead = false;
  idleTimer: NodeJS.Timeout | undefined;

  constructor(peer: string, host: string, port: number, o: RangeClientOptions, onDead: (c: Connection) => void) {
    this.peer = peer;
    this.maxHead = o.maxHeadBytes;
    this.socket = connect({
      host,
      port,
      lookup: policedLookup,
      noDelay: true,
      onread: { buffer: this.readBuf, callback: (n: number) => this.onRead(n) },
    });
    this.socket.setTimeout(o.connectTimeoutMs, () => {
      if (!this.connected) this.fail('KF_E_PEER_TIMEOUT', `connecting took longer than ${o.connectTimeoutMs} ms`);
    });
    this.socket.once('connect', () => {
      this.connected = true;
      this.socket.setTimeout(0);
    });
    this.socket.on('error', (err) => {
      const req = this.req;
      const p = req === undefined || this.inBody ? undefined : this.cutOff(req); // a reset after a headerless answer
      if (p !== undefined) this.fail(p.code, p.message, err, p.status);
      else this.fail('KF_E_PEER_CONNECT', `peer connection failed: ${err.message}`, err);
    });
    this.socket.on('close', () => {
      const req = this.req;
      if (req !== undefined) {
        if (this.inBody && this.closeDelimited && this.got === req.want) {
          this.req = undefined;
          req.resolve();
        } else if (this.inBody) {
          this.fail('KF_E_PEER_SHORT', `peer closed after ${this.got} of ${req.want} bytes`);
        } else {
          const p = this.cutOff(req);
          if (p !== undefined) this.fail(p.code, p.message, undefined, p.status);
          else this.fail('KF_E_PEER_CONNECT', 'peer closed the connection');
        }
      }
      this.dead = true;
      onDead(this);
    });
  }

  get busy(): boolean {
    return this.req !== undefined;
  }

  send(swarmId: string, hostHeader: string, p: Pending): void {
    this.req = p;
    this.head = [];
    this.headBytes = 0;
    this.inBody = false;
    this.got = 0;
    this.closeDelimited = false;
    this.socket.write(
      `GET /${swarmId} HTTP/1.1\r\nHost: ${hostHeader}\r\nRange: bytes=${p.first}-${p.last}\r\nUser-Agent: kfetch/${VERSION}\r\n\r\n`,
      'latin1',
    );
  }

  /** Abandon the request in flight (abort or deadline): the socket cannot be reused mid-response. */
  abort(code: ErrorCode, message: string, cause?: unknown): void {
    this.fail(code, message, cause);
  }

  private onRead(n: number): boolean {
    const req = this.req;
    if (req === undefined) {
      // Bytes nobody asked for: the peer is out of step; drop the connection.
      this.destroy();
      return false;
    }
    if (this.inBody) return this.body(req, this.readBuf, 0, n); // the hot path: no allocation
    this.head.push(Buffer.from(this.readBuf.subarray(0, n))); // copied: the read buffer is reused by the next read
    this.headBytes += n;
    const all = this.head.length === 1 ? this.head[0]! : Buffer.concat(this.head);
    const end = all.indexOf(CRLFCRLF);
    if (end === -1 ? this.headBytes > this.maxHead : end > this.maxHead) {
      this.fail('KF_E_PEER_PROTOCOL', `response head larger than ${this.maxHead} bytes`);
      return false;
    }
    if (end === -1) {
      this.head = [all];
      return true;
    }
    const problem = this.parseHead(all.subarray(0, end).toString('latin1'), req);
    if (problem !== undefined) {
      this.fail(problem.code, problem.message, undefined, problem.status, problem.fewer);
      return false;
    }
    this.inBody = true;
    return this.body(req, all, end + 4, all.length);
  }

  /** Body bytes `src[from, to)` of the response to `req`: into the caller's buffer, never past its length. */
  private body(req: Pending, src: Buffer, from: number, to: number): boolean {
    const len = to - from;
    if (len === 0) return true;
    if (this.got + len > req.want) {
      this.fail('KF_E_PEER_LONG', `peer sent more than the ${req.want} bytes asked for`);
      return false;
    }
    src.copy(req.into, this.got, from, to);
    this.got += len;
    if (this.got === req.want && !this.closeDelimited) {
      this.req = undefined;
      if (!this.keepAlive) this.destroy();
      req.resolve();
    }
    return true;
  }

  /**
   * The connection ended (close or reset) before the blank line that ends the head. If the status line arrived,
   * the answer is that status — the original peer's 404 never ends its head — and a 400/404/416 is the same "not
   * here, try elsewhere" as a complete one; a 206 is a success cut short. Undefined when no status line arrived.
   */
  private cutOff(req: Pending): Problem | undefined {
    if (this.head.length === 0) return undefined;
    const m = STATUS_LINE.exec(Buffer.concat(this.head).toString('latin1'));
    if (m === null) return undefined;
    const status = Number(m[1]);
    if (status === 206) return { code: 'KF_E_PEER_SHORT', message: `peer closed before the end of its 206 head for bytes ${req.first}-${req.last}`, status };
    const p = statusProblem(status, req);
    return { ...p, message: `${p.message} (its head cut off by the close)` };
  }

  /** Check the status line and headers; undefined when the body may be read into the slot. */
  private parseHead(text: string, req: Pending): Problem | undefined {
    const lines = text.split('\r\n');
    const m = /^HTTP\/1\.([01]) (\d{3})/.exec(lines[0] ?? '');
    if (m === null) return { code: 'KF_E_PEER_PROTOCOL', message: 'not an HTTP/1.x response' };
    const status = Number(m[2]);
    const h = new Map<string, string>();
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon <= 0) return { code: 'KF_E_PEER_PROTOCOL', message: 'malformed response header' };
      h.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    this.keepAlive = m[1] === '1' ? h.get('connection')?.toLowerCase() !== 'close' : h.get('connection')?.toLowerCase() === 'keep-alive';
    if (status !== 206) return statusProblem(status, req);
    const enc = h.get('content-encoding');
    if (enc !== undefined && enc.toLowerCase() !== 'identity') return { code: 'KF_E_PEER_PROTOCOL', message: `peer sent an encoded body (${enc})` };
    if (h.has('transfer-encoding')) return { code: 'KF_E_PEER_PROTOCOL', message: 'peer sent a chunked body for a range' };
    const cr = h.get('content-range');
    if (cr !== undefined && !cr.startsWith(`bytes ${req.first}-${req.last}/`)) {
      // A prefix of the range (a server whose file ends sooner clamps it): an answer about what it holds.
      const m = CONTENT_RANGE.exec(cr);
      const last = m === null ? NaN : Number(m[2]);
      if (m !== null && Number(m[1]) === req.first && last >= req.first && last < req.last) {
        return { code: 'KF_E_PEER_SHORT', message: `peer has only bytes ${req.first}-${last} of ${req.first}-${req.last}`, status: 206, fewer: last - req.first + 1 };
      }
      return { code: 'KF_E_PEER_PROTOCOL', message: `peer sent Content-Range ${cr}, asked for ${req.first}-${req.last}` };
    }
    // The original 2015 peer names the range it sends `Range: bytes=a-b/size`; held to the same match.
    const echo = h.get('range');
    if (echo !== undefined) {
      const r = RANGE_ECHO.exec(echo);
      if (r === null || Number(r[1]) !== req.first || Number(r[2]) !== req.last) {
        return { code: 'KF_E_PEER_PROTOCOL', message: `peer sent Range ${echo}, asked for ${req.first}-${req.last}` };
      }
    }
    const cl = h.get('content-length');
    if (cl === undefined && !this.keepAlive) {
      // HTTP/1.0 (or Connection: close) without a length: the body ends at the close, and must be exactly the range.
      this.closeDelimited = true;
      return undefined;
    }
    if (cl === undefined || !/^\d+$/.test(cl)) return { code: 'KF_E_PEER_PROTOCOL', message: 'peer sent no Content-Length' };
    if (Number(cl) > req.want) return { code: 'KF_E_PEER_LONG', message: `peer announced ${cl} bytes for a ${req.want}-byte range` };
    if (Number(cl) < req.want) return { code: 'KF_E_PEER_SHORT', message: `peer announced ${cl} of ${req.want} bytes`, status: 206, fewer: Number(cl) };
    return undefined;
  }

  /** `fewer`: the bytes the peer said it would send instead (detail.announcedBytes): an answer, not a broken connection. */
  private fail(code: ErrorCode, message: string, cause?: unknown, status?: number, fewer?: number): void {
    const req = this.req;
    this.req = undefined;
    this.destroy();
    const detail = { ...(status === undefined ? {} : { status }), ...(fewer === undefined ? {} : { announcedBytes: fewer }) };
    req?.reject(new KfetchError(code, message, { peer: this.peer, ...(cause === undefined ? {} : { cause }), ...(Object.keys(detail).length === 0 ? {} : { detail }) }));
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
      await new Promise<void>((resolve, reject) => conn.send(swarmId, peer, { into, want, first, last, resolve, reject }));
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
    const p = this.pool(peer);
    for (;;) {
      if (this.closed) throw new KfetchError('KF_E_PEER_CONNECT', 'client closed', { peer });
      const idle = p.idle.pop();
      if (idle !== undefined) {
        if (idle.idleTimer !== undefined) clearTimeout(idle.idleTimer);
        if (!idle.dead) return idle;
        continue;
      }
      if (p.open < this.o.connectionsPerPeer) {
        const { host, port } = splitPeer(peer);
        assertDialable(host, peer);
        p.open++;
        return new Connection(peer, host, port, this.o, () => {
          p.open--;
          this.wakeOne(p);
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
          reject(abortError(peer, signal));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        p.waiters.push(wake);
      });
    }
  }

  private release(peer: string, conn: Connection): void {
    const p = this.pool(peer);
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

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.pools.values()) {
      for (const c of p.idle) c.destroy();
      p.idle = [];
      for (const w of p.waiters.splice(0)) w();
    }
  }
}

/** A complete non-206 answer: 400/404/416 say the peer does not have it (SPEC §3: try elsewhere); anything else is outside the protocol. */
function statusProblem(status: number, req: Pending): Problem {
  const lied = status === 400 || status === 404 || status === 416;
  return { code: lied ? 'KF_E_PEER_LIED' : 'KF_E_PEER_PROTOCOL', message: `peer answered ${status} for bytes ${req.first}-${req.last}`, status };
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
