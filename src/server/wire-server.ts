// The binary peer wire's seeder side (docs/spec-peer-wire.md): a TCP port beside the block server's HTTP one that
// answers runs of blocks from the same Library, kfetch to kfetch only. It shares the block server's admission queue
// (round-robin by address), upload token bucket, pooled read buffers and connection cap (the block server starts it
// and hands them over: `wirePort`), so a client gets the same fairness and limits whichever protocol it speaks.
// Only held blocks are served, each read through the library's checked read (store/data-file.ts readChecked).
//
// Per connection: the hello, then requests answered one at a time in order (a client pipelines up to
// LIMITS.wireMaxPipelined; one more closes the connection, so what a connection holds is bounded), a partial hello
// or frame must be finished within headersTimeoutMs of its first byte (slow senders), a reply chunk the client does
// not take within idleTimeoutMs cuts the connection (slow readers), and a connection with nothing to do for
// idleTimeoutMs is closed.

import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { KfetchError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { REPLY_HEADER_BYTES, RequestDecoder, WireStatus, encodeHello, encodeReplyHeader, type WireRequest } from '../peer/wire-frames.js';
import { NotHeldNowError } from '../store/data-file.js';
import type { Admission, BusyReason } from './admission.js';
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
}

export interface WireServer {
  host: string;
  port: number;
  stats(): WireServerStats;
  /** Stop accepting; replies in progress get closeGraceMs, then every connection is cut. Idempotent. */
  close(): Promise<void>;
}

const STATUS_NAMES = Object.fromEntries(Object.entries(WireStatus).map(([k, v]) => [v, k])) as Record<WireStatus, keyof typeof WireStatus>;

/** Start the wire on host:port (0: any free port); rejects with KF_E_LISTEN when it cannot bind. */
export async function startWireServer(opts: WireServerOptions): Promise<WireServer> {
  const { library, log, admission, rate, connections, limits } = opts;
  const maxPipelined = opts.maxPipelined ?? LIMITS.wireMaxPipelined;
  const stats: Omit<WireServerStats, 'connections'> = {
    requests: 0,
    replies: { ok: 0, notHeld: 0, busy: 0, badRequest: 0, unknownFile: 0 },
    badFrames: 0,
    overPipelined: 0,
    slowSenders: 0,
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
      if (queue.length + (running ? 1 : 0) > maxPipelined) {
        stats.overPipelined++;
        socket.destroy();
        return;
      }
      // A new frame begun (after a whole one, or from nothing) gets the full time; one still trickling keeps its deadline.
      if (frames > 0 || decoder.partialBytes === 0) stopPartialTimer();
      if (decoder.partialBytes > 0 && partialTimer === undefined) armPartialTimer();
      if (!running && queue.length > 0) void run();
    });

    const run = async (): Promise<void> => {
      running = true;
      state.idle = false;
      connections.busy(socket);
      try {
        while (queue.length > 0 && !gone.aborted) await serveOne(queue.shift()!);
      } catch (err) {
        log.warn({ err: String(err), client }, 'wire request failed; closing');
        socket.destroy();
      } finally {
        running = false;
        state.idle = true;
        connections.done(socket);
        if (closingAll) socket.destroy();
      }
    };

    const status = (r: WireRequest, s: WireStatus, retryAfterS = 0): void => {
      stats.replies[STATUS_NAMES[s]]++;
      socket.write(encodeReplyHeader({ requestId: r.requestId, status: s, retryAfterS, length: 0 }));
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

    const serveOne = async (r: WireRequest): Promise<void> => {
      const c = check(r);
      if (typeof c === 'number') return status(r, c);
      const slot = await admitSlot(admission, client, gone, limits.queueTimeoutMs);
      if (slot === 'gone') return;
      if (typeof slot === 'string') {
        opts.busy(slot);
        return status(r, WireStatus.busy, 1);
      }
      try {
        // Waiting may have taken seconds: the file must still be served, and the blocks still held.
        const again = check(r);
        if (typeof again === 'number') return status(r, again);
        if (again.file !== c.file) return status(r, WireStatus.unknownFile);
        await stream(r, c.file, c.first, c.last);
      } finally {
        slot();
      }
    };

    /**
     * The reply header and [first, last] of the file, as the block server streams a body: one pooled buffer, read a
     * chunk into it (the first before the header, so a read that fails gives not-held, not a broken ok), hand it to
     * the socket, read the next once the socket took it; tokens before each chunk.
     */
    const stream = async (r: WireRequest, file: ServedFile, first: number, last: number): Promise<void> => {
      const length = last - first + 1;
      const swarmId = file.kascade.swarmId;
      const first0 = pacedBytes(rate, client, Math.min(opts.chunkBytes(), length), gone);
      let grant = typeof first0 === 'number' ? first0 : await first0;
      if (grant === 0) return;
      let pool = opts.buffers();
      let buf = pool.take();
      let writing = false;
      let wake: ((ok: boolean) => void) | undefined;
      const onGone = (): void => wake?.(false);
      gone.on(onGone);
      try {
        let pos = first;
        for (;;) {
          // The first chunk is read in after room for the header, so header and bytes go out in one write.
          const head = pos === first ? REPLY_HEADER_BYTES : 0;
          const n = Math.min(buf.length - head, grant, last - pos + 1);
          const chunk = head === 0 && n === buf.length ? buf : buf.subarray(head, head + n);
          try {
            opts.read(await file.read(chunk, n, pos));
          } catch (err) {
            if (pos === first && err instanceof NotHeldNowError) return status(r, WireStatus.notHeld);
            // Mid-reply (or a disk error) the header is out or cannot say it: never send wrong bytes in their place.
            log.warn({ err: String(err), file: file.kascade.filename, pos }, 'wire: read failed; dropping connection');
            socket.destroy();
            return;
          }
          if (gone.aborted) return;
          if (head > 0) {
            stats.replies.ok++;
            encodeReplyHeader({ requestId: r.requestId, status: WireStatus.ok, retryAfterS: 0, length }, buf, 0);
          }
          const out = head === 0 ? chunk : buf.subarray(0, head + n);
          writing = true;
          let timer: NodeJS.Timeout | undefined;
          const taken = new Promise<boolean>((resolve) => {
            wake = resolve;
            const flowing = socket.write(out, (err) => {
              writing = false;
              resolve(err === null || err === undefined);
            });
            if (!flowing) {
              timer = setTimeout(() => resolve(false), limits.idleTimeoutMs);
              timer.unref();
            }
          });
          opts.sent(swarmId, client, n);
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
          grant = typeof more === 'number' ? more : await more;
          if (grant === 0) return;
        }
      } finally {
        gone.off(onGone);
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
