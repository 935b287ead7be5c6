// The block server (SPEC §3): answers block and byte-range requests, whole-file GETs of complete files and the
// /blocks bitfield extension from the files in a Library, streaming bytes from their fds with positional reads.
// Used by `kfetch seed` (and later by download sessions, which serve what they already hold).
//
// Plain node:http rather than a framework: the hot path is "validate, then positional reads into the response with
// backpressure", which needs the raw `res.write`/'drain' contract and the exact raw request target (frameworks
// normalise or decode paths, add routing and body parsing we must not have, and cost per request).

import { STATUS_CODES, createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { KfetchError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { VERSION } from '../version.js';
import { ClientLimiter } from './client-limiter.js';
import { isLoopbackHost as isLoopbackAddress } from '../peer/address-policy.js';
import { isLoopbackHost } from './host-policy.js';
import { decideRange, isComplete, type Library, type ServedFile } from './library.js';
import { parseRequest } from './parse-request.js';

/** Bounds of one block server; defaults from LIMITS. */
export interface BlockServerLimits {
  maxConcurrent: number;
  maxPerClient: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** A response waiting this long for the client to drain is destroyed. */
  idleTimeoutMs: number;
  maxRangeBytes: number;
  readChunkBytes: number;
  /** close(): in-flight responses get this long to finish before their connections are cut. */
  closeGraceMs: number;
}

export interface BlockServerOptions {
  library: Library;
  host: string;
  port: number;
  log: Logger;
  limits?: Partial<BlockServerLimits>;
}

export interface BlockServerStats {
  requests: number;
  /** Responses by status code. */
  statuses: Record<number, number>;
  /** Body bytes handed to sockets, and bytes read from data files. */
  bytesSent: number;
  bytesRead: number;
  inFlight: number;
}

export interface BlockServer {
  /** `http://HOST:PORT` (IPv6 hosts in brackets). */
  url: string;
  host: string;
  port: number;
  /** Stop accepting, let in-flight responses finish for closeGraceMs, then cut the rest. Idempotent. */
  close(): Promise<void>;
  stats(): BlockServerStats;
}

const DEFAULTS: BlockServerLimits = {
  maxConcurrent: LIMITS.serverMaxConcurrent,
  maxPerClient: LIMITS.serverMaxPerClient,
  headersTimeoutMs: LIMITS.serverHeadersTimeoutMs,
  requestTimeoutMs: LIMITS.serverRequestTimeoutMs,
  idleTimeoutMs: LIMITS.serverIdleTimeoutMs,
  maxRangeBytes: LIMITS.serverMaxRangeBytes,
  readChunkBytes: LIMITS.serverReadChunkBytes,
  closeGraceMs: 1_000,
};

/** Node's default header limit, stated so a change of Node default cannot widen it silently (64 KiB headers -> 431). */
const MAX_HEADER_BYTES = 16 * 1024;

/** A read returned fewer bytes than asked: the file was truncated under us. */
class ShortReadError extends Error {}

/** Start a block server on host:port (port 0: any free port). Rejects with KF_E_LISTEN if it cannot bind. */
export async function startBlockServer(opts: BlockServerOptions): Promise<BlockServer> {
  const limits: BlockServerLimits = { ...DEFAULTS, ...opts.limits };
  const { library, log } = opts;
  const limiter = new ClientLimiter(limits.maxConcurrent, limits.maxPerClient);
  const stats = { requests: 0, statuses: {} as Record<number, number>, bytesSent: 0, bytesRead: 0 };
  let loopbackOnly = false;

  const server = createServer({
    maxHeaderSize: MAX_HEADER_BYTES,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // Node checks those two timeouts only every connectionsCheckingInterval (default 30 s): check often enough that
    // a slowloris client is cut near the stated bound, not up to 30 s later.
    connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4))),
    keepAlive: true,
  });

  const send = (res: ServerResponse, status: number, body: string, type: string, headers: Record<string, string> = {}): void => {
    stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
    const bytes = Buffer.from(body, 'utf8');
    res.writeHead(status, { ...headers, 'Content-Type': type, 'Content-Length': String(bytes.length) });
    res.end(bytes); // Node drops the body itself for HEAD.
  };
  const sendError = (res: ServerResponse, status: number, error: string, headers: Record<string, string> = {}): void => {
    send(res, status, `${JSON.stringify({ error })}\n`, 'application/json; charset=utf-8', headers);
  };

  /** Stream [first, last] of the file's fd as the body of a `status` response (empty when last < first). */
  const stream = async (
    res: ServerResponse,
    file: ServedFile,
    first: number,
    last: number,
    status: 200 | 206,
    headers: Record<string, string>,
    head: boolean,
  ): Promise<void> => {
    const length = last - first + 1;
    const all = { ...headers, 'Content-Type': 'application/octet-stream', 'Content-Length': String(Math.max(0, length)) };
    const readChunk = async (pos: number): Promise<Buffer> => {
      const n = Math.min(limits.readChunkBytes, last - pos + 1);
      const buf = Buffer.allocUnsafe(n);
      const got = await file.read(buf, n, pos);
      stats.bytesRead += got;
      if (got !== n) throw new ShortReadError(`short read at ${pos + got}: the data file is shorter than the kascade`);
      return buf;
    };
    if (head || length <= 0) {
      stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
      res.writeHead(status, all).end();
      return;
    }
    // The first chunk is read before the headers go out, so a failing disk still gets a clean 500 and not a 206.
    let buf = await readChunk(first);
    stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
    res.writeHead(status, all);
    let pos = first;
    for (;;) {
      if (res.destroyed) return;
      const flowing = res.write(buf);
      stats.bytesSent += buf.length;
      pos += buf.length;
      if (pos > last) break;
      // Backpressure: a slow or paused reader holds at most one chunk plus the socket buffers in memory.
      if (!flowing && !(await drained(res, limits.idleTimeoutMs))) {
        res.destroy();
        return;
      }
      try {
        buf = await readChunk(pos);
      } catch (err) {
        // Headers are gone: never send wrong or missing bytes in their place; the client sees a short body.
        log.warn({ err: String(err), file: file.kascade.filename, pos }, 'read failed mid-response; dropping connection');
        res.destroy();
        return;
      }
    }
    res.end();
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const parsed = parseRequest(req.method ?? '', req.url ?? '', req.headers.range);
    if (!parsed.ok) {
      return sendError(res, parsed.status, parsed.error, parsed.status === 405 ? { Allow: 'GET, HEAD' } : {});
    }
    const r = parsed.request;
    const file = library.get(r.swarmId);
    // The same answer for every unknown id: the server does not say which ids exist in any other way.
    if (file === undefined) return sendError(res, 404, 'unknown file');
    const k = file.kascade;
    switch (r.kind) {
      case 'bitfield': {
        if (!k.offers(r.blockSize)) return sendError(res, 400, `block size ${r.blockSize} is not offered`);
        return send(res, 200, file.held(r.blockSize).toHex(), 'text/plain; charset=utf-8');
      }
      case 'whole': {
        if (!isComplete(file)) return sendError(res, 416, 'file not complete; ask for a Range of held blocks');
        return stream(res, file, 0, k.filesize - 1, 200, { 'Accept-Ranges': 'bytes' }, r.head);
      }
      case 'range': {
        const d = decideRange(file, r.first, r.last, limits.maxRangeBytes);
        if (!d.ok) {
          return sendError(res, d.status, d.error, d.status === 416 ? { 'Content-Range': `bytes */${k.filesize}` } : {});
        }
        const headers = { 'Accept-Ranges': 'bytes', 'Content-Range': `bytes ${d.first}-${d.last}/${k.filesize}` };
        return stream(res, file, d.first, d.last, 206, headers, r.head);
      }
    }
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    stats.requests++;
    res.on('error', () => undefined); // a client gone mid-write is normal; 'close' handles it
    res.setHeader('Server', `kfetch/${VERSION}`);
    if (loopbackOnly && !isLoopbackHost(req.headers.host)) {
      return sendError(res, 403, 'Host header must name a loopback address on a loopback-bound server');
    }
    if (hasBody(req)) {
      res.setHeader('Connection', 'close');
      return sendError(res, 400, 'requests to the block server carry no body');
    }
    const client = req.socket.remoteAddress ?? 'unknown';
    const release = limiter.tryAcquire(client);
    if (release === undefined) return sendError(res, 503, 'busy: too many requests in flight', { 'Retry-After': '1' });
    res.once('close', release);
    handle(req, res).catch((err: unknown) => {
      log.warn({ err: String(err), url: (req.url ?? '').slice(0, 200), client }, 'block request failed');
      if (!res.headersSent) sendError(res, 500, err instanceof ShortReadError ? 'data file shorter than expected' : 'read error');
      else res.destroy();
    });
  });

  // Requests Node's parser refuses (bad syntax 400, headers too large 431, too slow 408) get the same JSON error
  // shape and Server header as ours, then the connection closes (Node's default handler sends an empty body).
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const busy = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
    if (err.code === 'ECONNRESET' || !socket.writable || busy) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
    const body = `${JSON.stringify({ error: STATUS_CODES[status] ?? 'bad request' })}\n`;
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nServer: kfetch/${VERSION}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Connection: close\r\n\r\n${body}`,
    );
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(
        new KfetchError('KF_E_LISTEN', `cannot listen on ${opts.host}:${opts.port}: ${err.code ?? err.message}`, {
          field: 'port',
          cause: err,
        }),
      );
    };
    server.once('error', onError);
    server.listen(opts.port, opts.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err: String(err) }, 'block server error'));

  const addr = server.address() as AddressInfo;
  loopbackOnly = isLoopbackAddress(addr.address);
  const host = opts.host.includes(':') && !opts.host.startsWith('[') ? `[${opts.host}]` : opts.host;
  let closing: Promise<void> | undefined;

  return {
    url: `http://${host}:${addr.port}`,
    host: opts.host,
    port: addr.port,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), limits.closeGraceMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      })),
    stats: () => ({ ...stats, statuses: { ...stats.statuses }, inFlight: limiter.inFlight }),
  };
}

/** Wait for 'drain'; false if the response closed or stayed blocked for idleMs. Listeners are removed either way. */
function drained(res: ServerResponse, idleMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = (): void => done(true);
    const onClose = (): void => done(false);
    const timer = setTimeout(() => done(false), idleMs);
    timer.unref();
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

/** A request with a body (Content-Length > 0 or any Transfer-Encoding): block requests never have one. */
function hasBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return (cl !== undefined && cl !== '0') || req.headers['transfer-encoding'] !== undefined;
}
