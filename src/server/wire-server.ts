// The binary peer wire's seeder side (docs/spec-peer-wire.md): a TCP port beside the block server's HTTP one that
// answers runs of blocks from the same Library, kfetch to kfetch only. It shares the block server's admission queue
// (round-robin by address), upload token bucket, pooled read buffers and connection cap (the block server starts it
// and hands them over: `wirePort`), so a client gets the same fairness and limits whichever protocol it speaks.
// Only held blocks are served, each read through the library's checked read (store/data-file.ts readChecked).
//
// Per connection: the hello, then requests answered in order (a client pipelines up to LIMITS.wireMaxPipelined; one
// more closes the connection, so what a connection holds is bounded); up to LIMITS.wireReadAhead of them are
// prepared at once (slot, tokens, first chunk read) while an earlier reply is written; a partial hello
// or frame must be finished within headersTimeoutMs of its first byte (slow senders), a reply chunk the client does
// not take within idleTimeoutMs cuts the connection (slow readers), and a connection with nothing to do for
// idleTimeoutMs is closed.

import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { KfetchError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { REPLY_HEADER_BYTES, RequestDecoder, WireStatus, encodeHello, encodeReplyHeader, type WireRequest } from '../peer/wire-frames.js';
import { NotHeldNowError } from '../store/data-file.js';
import type { Admission, BusyReason, Release } from './admission.js';
import type { ReadBuffers } from './buffer-pool.js';
import type { ConnectionCap } from './connection-cap.js';
import { decideRange, type Library, type ServedFile } from './library.js';
import { Gone, admitSlot, pacedBytes } from './response-waits.js';
import type { UploadRate } from './upload-rate.js';

/** The block server's limits the wire reads (live: the same object, so setLimits reaches both). */
export interface WireLimits {
  queueTimeoutMs: number;
  headersTimeoutMs: number;
  idleTimeoutMs: number;
  closeGraceMs: number;
}

/** What the wire shares with the block server that starts it. */
export interface WireShared {
  library: Library;
  log: Logger;
  admission: Admission;
  rate: UploadRate;
  connections: ConnectionCap;
  limits: WireLimits;
  /** The read buffers and chunk size now (the upload rate may replace them). */
  buffers(): ReadBuffers;
  chunkBytes(): number;
  /** Accounting, shared with HTTP: file bytes handed to a socket, bytes read, a request refused busy. */
  sent(swarmId: string, client: string, bytes: number): void;
  read(bytes: number): void;
  busy(reason: BusyReason): void;
}

export interface WireServerOptions extends WireShared {
  host: string;
  port: number;
  /** Requests outstanding per connection at most (default LIMITS.wireMaxPipelined). */
  maxPipelined?: number;
  /** Requests of one connection prepared at once (slot, first chunk read) while an earlier reply is written. */
  readAhead?: number;
}

export interface WireServerStats {
  /** Connections open now on the wire port (they count in the block server's connection cap too). */
  connections: number;
  /** Requests decoded, and replies by status name. */
  requests: number;
  replies: Record<keyof typeof WireStatus, number>;
  /** Connections closed for a bad frame, for too many outstanding requests, for a frame sent too slowly. */
  badFrames: number;
  overPipelined: number;
  slowSenders: number;
  /** File bytes handed to wire sockets (counted in the block server's bytesSent too). */
  bytesSent: number;
}

export interface WireServer {
  host: string;
  port: number;
  stats(): WireServerStats;
  /** Stop accepting; replies in progress get closeGraceMs, then every connection is cut. Idempotent. */
  close(): Promise<void>;
}

/** A request ready for its turn to be written (wire-server's read-ahead). */
type Prepared =
  | { kind: 'none' } // the client left: nothing to write
  | { kind: 'fail' } // a read or internal error: the connection is cut
  | { kind: 'status'; r: WireRequest; s: WireStatus; retryAfterS: number }
  | {
      kind: 'body';
      r: WireRequest;
      file: ServedFile;
      first: number;
      last: number;
      slot: Release;
      pool: ReadBuffers;
      /** Holds the first chunk (`n` bytes) after REPLY_HEADER_BYTES of room. */
      buf: Buffer;
      n: number;
    };

const STATUS_NAMES = Object.fromEntries(Object.entries(WireStatus).map(([k, v]) => [v, k])) as Record<WireStatus, keyof typeof WireStatus>;

/** Start the wire on host:port (0: any free port); rejects with KF_E_LISTEN when it cannot bind. */
export async function startWireServer(opts: WireServerOptions): Promise<WireServer> {
  const { library, log, admission, rate, connections, limits } = opts;
  const maxPipelined = opts.maxPipelined ?? LIMITS.wireMaxPipelined;
  const readAhead = Math.max(1, opts.readAhead ?? LIMITS.wireReadAhead);
  const stats: Omit<WireServerStats, 'connections'> = {
    requests: 0,
    replies: { ok: 0, notHeld: 0, busy: 0, badRequest: 0, unknownFile: 0 },
    badFrames: 0,
    overPipelined: 0,
    slowSenders: 0,
    bytesSent: 0,
  };
  /** Open connections and whether each has nothing to do (close() ends those at once). */
  const sockets = new Map<Socket, { idle: boolean }>();
  let closingAll = false;
  const server: Server = createServer({ noDelay: true });

  server.on('connection', (socket: Socket) => {
    socket.on('error', () => undefined); // a client gone is normal; 'close' handles it
    connections.open(socket);
    if (socket.destroyed) return; // over the cap
    // A slot beyond the caps is the owner's, for /status and /metrics only.
    if (connections.onOwnerSlot(socket) || closingAll) return void socket.destroy();
    const state = { idle: true };
    sockets.set(socket, state);
    socket.once('close', () => sockets.delete(socket));
    serveConnection(socket, state);
  });

  function serveConnection(socket: Socket, state: { idle: boolean }): void {
    const client = socket.remoteAddress ?? 'unknown';
    const decoder = new RequestDecoder();
    const queue: WireRequest[] = [];
    const gone = new Gone();
    let running = false;
    let helloSent = false;
    /** Status replies handed to the socket and not yet taken by the kernel: outstanding until then (see status()). */
    let unflushed = 0;
    // Set below, once the serving closures exist.
    let outstanding = (): number => queue.length;
    let refillNow = (): void => undefined;
    /** Fires when a hello or frame begun is not finished in time. */
    let partialTimer: NodeJS.Timeout | undefined;
    const stopPartialTimer = (): void => {
      clearTimeout(partialTimer);
      partialTimer = undefined;
    };
    socket.once('close', () => {
      stopPartialTimer();
      gone.fire();
    });
    // Nothing read or written for idleTimeoutMs: an idle connection goes (a stuck write has its own timer below).
    socket.setTimeout(limits.idleTimeoutMs, () => {
      if (!running && queue.length === 0) socket.destroy();
    });
    const armPartialTimer = (): void => {
      partialTimer = setTimeout(() => {
        stats.slowSenders++;
        socket.destroy();
      }, limits.headersTimeoutMs);
      partialTimer.unref();
    };
    armPartialTimer(); // the hello is due from the start

    socket.on('data', (chunk: Buffer) => {
      let frames = 0;
      if (closingAll) return;
      try {
        decoder.feed(chunk, (r) => {
          frames++;
          queue.push(r);
        });
      } catch (err) {
        stats.badFrames++;
        log.debug({ err: String(err), client, field: err instanceof KfetchError ? err.field : undefined }, 'wire: bad frame; closing');
        socket.destroy();
        return;
      }
      if (decoder.helloDone && !helloSent) {
        helloSent = true;
        socket.write(encodeHello());
        if (decoder.partialBytes === 0) stopPartialTimer();
      }
      stats.requests += frames;
      if (outstanding() > maxPipelined) {
        stats.overPipelined++;
        socket.destroy();
        return;
      }
      // A new frame begun (after a whole one, or from nothing) gets the full time; one still trickling keeps its deadline.
      if (frames > 0 || decoder.partialBytes === 0) stopPartialTimer();
      if (decoder.partialBytes > 0 && partialTimer === undefined) armPartialTimer();
      if (!running && queue.length > 0) void run();
      else if (running) refillNow();
    });

    /** Requests taken from the queue and not yet answered whole (being prepared, waiting their turn, or written). */
    const ahead: Promise<Prepared>[] = [];
    let writingOne = false;
    /** Start preparing queued requests while fewer than readAhead are ahead (they hold a slot and a buffer each). */
    const refill = (): void => {
      while (queue.length > 0 && ahead.length < readAhead && !gone.aborted) ahead.push(prepare(queue.shift()!));
    };
    outstanding = () => queue.length + ahead.length + (writingOne ? 1 : 0) + unflushed;

    const run = async (): Promise<void> => {
      running = true;
      state.idle = false;
      connections.busy(socket);
      try {
        for (;;) {
          refill();
          const next = ahead.shift();
          if (next === undefined) break;
          writingOne = true;
          await deliver(await next); // in order: each reply waits for the one before it
          writingOne = false;
        }
      } catch (err) {
        log.warn({ err: String(err), client }, 'wire request failed; closing');
        socket.destroy();
      } finally {
        writingOne = false;
        running = false;
        state.idle = true;
        connections.done(socket);
        if (closingAll) socket.destroy();
      }
    };
    refillNow = refill;

    // A status reply needs no slot and is not awaited, so it counts as outstanding until the socket took it: a client
    // that never reads, asking 64 at a time for what is answered at once (an unknown file), is then closed by the
    // pipeline bound instead of piling replies up in our memory past the socket buffers.
    const status = (r: WireRequest, s: WireStatus, retryAfterS = 0): void => {
      stats.replies[STATUS_NAMES[s]]++;
      unflushed++;
      socket.write(encodeReplyHeader({ requestId: r.requestId, status: s, retryAfterS, length: 0 }), () => unflushed--);
    };

    /** The byte range the request names in its file, or the status refusing it (no slot needed for either). */
    const check = (r: WireRequest): { file: ServedFile; first: number; last: number } | WireStatus => {
      const file = library.get(r.fileId);
      if (file === undefined) return WireStatus.unknownFile;
      const k = file.kascade;
      if (!k.offers(r.blockSize)) return WireStatus.badRequest;
      const g = k.geometry(r.blockSize);
      if (r.firstBlock + r.count > g.count) return WireStatus.badRequest;
      const first = g.start(r.firstBlock);
      const last = g.range(r.firstBlock + r.count - 1).last;
      // Bytes per request are bounded by the codec; held-ness is what is left to decide.
      const d = decideRange(file, first, last, Number.MAX_SAFE_INTEGER);
      if (!d.ok) return d.status === 400 ? WireStatus.notHeld : WireStatus.badRequest;
      return { file, first, last };
    };

    /**
     * Everything before a reply's turn to be written: the checks, a slot, tokens for the first chunk, a pooled buffer
     * and the first chunk read into it after 16 bytes of room for the header (a read that fails there gives
     * not-held, never a broken ok). Never rejects.
     */
    const prepare = async (r: WireRequest): Promise<Prepared> => {
      try {
        const c = check(r);
        if (typeof c === 'number') return { kind: 'status', r, s: c, retryAfterS: 0 };
        const slot = await admitSlot(admission, client, gone, limits.queueTimeoutMs);
        if (slot === 'gone') return { kind: 'none' };
        if (typeof slot === 'string') {
          opts.busy(slot);
          return { kind: 'status', r, s: WireStatus.busy, retryAfterS: 1 };
        }
        let kept = false;
        try {
          // Waiting may have taken seconds: the file must still be served, and the blocks still held.
          const again = check(r);
          if (typeof again === 'number') return { kind: 'status', r, s: again, retryAfterS: 0 };
          if (again.file !== c.file) return { kind: 'status', r, s: WireStatus.unknownFile, retryAfterS: 0 };
          const length = c.last - c.first + 1;
          const g0 = pacedBytes(rate, client, Math.min(opts.chunkBytes(), length), gone);
          const grant = typeof g0 === 'number' ? g0 : await g0;
          if (grant === 0) return { kind: 'none' };
          const pool = opts.buffers();
          const buf = pool.take();
          const n = Math.min(buf.length - REPLY_HEADER_BYTES, grant, length);
          try {
            opts.read(await c.file.read(buf.subarray(REPLY_HEADER_BYTES, REPLY_HEADER_BYTES + n), n, c.first));
          } catch (err) {
            pool.give(buf);
            if (err instanceof NotHeldNowError) return { kind: 'status', r, s: WireStatus.notHeld, retryAfterS: 0 };
            log.warn({ err: String(err), file: c.file.kascade.filename, pos: c.first }, 'wire: read failed; dropping connection');
            return { kind: 'fail' };
          }
          kept = true;
          return { kind: 'body', r, file: c.file, first: c.first, last: c.last, slot, pool, buf, n };
        } finally {
          if (!kept) slot();
        }
      } catch (err) {
        log.warn({ err: String(err), client }, 'wire request failed; closing');
        return { kind: 'fail' };
      }
    };

    /**
     * Write one prepared reply, in its turn: a status, or the header with the first chunk in one write and then the
     * rest as the block server streams a body (hand a chunk to the socket, read the next once the socket took it,
     * tokens before each). A chunk the client does not take within idleTimeoutMs cuts the connection. Releases
     * the slot and the buffer whatever happens.
     */
    const deliver = async (p: Prepared): Promise<void> => {
      if (p.kind === 'none') return;
      if (p.kind === 'fail') return void socket.destroy();
      if (p.kind === 'status') {
        if (!gone.aborted) status(p.r, p.s, p.retryAfterS);
        return;
      }
      const { r, file, first, last, slot } = p;
      let { pool, buf, n } = p;
      const swarmId = file.kascade.swarmId;
      let writing = false;
      let wake: ((ok: boolean) => void) | undefined;
      const onGone = (): void => wake?.(false);
      gone.on(onGone);
      try {
        if (gone.aborted) return;
        stats.replies.ok++;
        encodeReplyHeader({ requestId: r.requestId, status: WireStatus.ok, retryAfterS: 0, length: last - first + 1 }, buf, 0);
        let out = buf.subarray(0, REPLY_HEADER_BYTES + n);
        let pos = first;
        for (;;) {
          writing = true;
          let timer: NodeJS.Timeout | undefined;
          const chunk = out;
          const taken = new Promise<boolean>((resolve) => {
            wake = resolve;
            const flowing = socket.write(chunk, (err) => {
              writing = false;
              resolve(err === null || err === undefined);
            });
            // Not taken at once by the kernel: a chunk under the high-water mark (a 4 KiB reply) leaves `flowing` true
            // but waits all the same when the client reads nothing; without a timer it waited forever, with its slot.
            if (!flowing || socket.writableLength > 0) {
              timer = setTimeout(() => resolve(false), limits.idleTimeoutMs);
              timer.unref();
            }
          });
          opts.sent(swarmId, client, n);
          stats.bytesSent += n;
          pos += n;
          const written = await taken;
          clearTimeout(timer);
          if (!written || writing) {
            socket.destroy(); // the client took nothing for idleTimeoutMs, or the write failed
            return;
          }
          if (pos > last) return;
          if (pool !== opts.buffers()) {
            pool.give(buf);
            pool = opts.buffers();
            buf = pool.take();
          }
          const more = pacedBytes(rate, client, Math.min(buf.length, opts.chunkBytes(), last - pos + 1), gone);
          const grant = typeof more === 'number' ? more : await more;
          if (grant === 0) return;
          n = Math.min(buf.length, grant, last - pos + 1);
          out = n === buf.length ? buf : buf.subarray(0, n);
          try {
            opts.read(await file.read(out, n, pos));
          } catch (err) {
            // The header is out: never send wrong or missing bytes in their place.
            log.warn({ err: String(err), file: file.kascade.filename, pos }, 'wire: read failed mid-reply; dropping connection');
            socket.destroy();
            return;
          }
          if (gone.aborted) return;
        }
      } finally {
        gone.off(onGone);
        slot();
        if (writing) pool.drop(buf);
        else pool.give(buf);
      }
    };
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new KfetchError('KF_E_LISTEN', `cannot listen on ${opts.host}:${opts.port} (peer wire): ${err.code ?? err.message}`, { field: 'wirePort', cause: err }));
    };
    server.once('error', onError);
    server.listen(opts.port, opts.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err: String(err) }, 'wire server error'));
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;

  return {
    host: opts.host,
    port,
    stats: () => ({ ...stats, replies: { ...stats.replies }, connections: sockets.size }),
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        closingAll = true;
        const timer = setTimeout(() => {
          for (const s of sockets.keys()) s.destroy();
        }, limits.closeGraceMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        // Connections with nothing in progress go now; the others when their replies are done or the grace ends.
        for (const [s, st] of sockets) if (st.idle) s.destroy();
      })),
  };
}
