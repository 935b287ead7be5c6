// The block server (SPEC §3): answers block and byte-range requests, whole-file GETs of complete files and the
// /blocks bitfield extension from the files in a Library, streaming bytes from their fds with positional reads.
// Used by `kfetch seed` and by download sessions (which serve what they already hold). Requests that find no free
// slot wait in a fair queue (admission.ts); an optional upload rate limit paces every chunk (upload-rate.ts); the
// same port answers /metrics and /status when the owner supplies them (observability-route.ts).
//
// Plain node:http rather than a framework: the hot path is "validate, then positional reads into the response with
// backpressure", which needs the raw `res.write`/'drain' contract and the exact raw request target (frameworks
// normalise or decode paths, add routing and body parsing we must not have, and cost per request).

import { STATUS_CODES, createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { KfetchError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { VERSION } from '../version.js';
import { isLoopbackHost as isLoopbackAddress } from '../util/address-policy.js';
import { NotHeldNowError } from '../store/data-file.js';
import { Admission, type BusyReason, type Release } from './admission.js';
import { ReadBuffers, type ReadBuffersStats } from './buffer-pool.js';
import { ConnectionCap } from './connection-cap.js';
import { openFileLimit } from './fd-limit.js';
import { isLoopbackHost } from './host-policy.js';
import { decideRange, isComplete, type Library, type ServedFile } from './library.js';
import { UploadTally, type ClientUpload } from './upload-tally.js';
import { observabilityReply, observabilityRoute, type Observability, type ObservabilityRoute } from '../util/observability-route.js';
import { parseRequest, type ServerRequest } from './parse-request.js';
import { admitSlot, goneSignal, pacedBytes, type Gone } from './response-waits.js';
import { UploadRate, chunkBytesFor } from './upload-rate.js';
import { startWireServer, type WireServer, type WireServerStats } from './wire-server.js';

export type { BusyReason } from './admission.js';
export type { WireServerStats } from './wire-server.js';
export type { Observability } from '../util/observability-route.js';

/** Bounds of one block server; defaults from LIMITS. */
export interface BlockServerLimits {
  /** Requests in flight overall and per client address; more wait in the queue. */
  maxConcurrent: number;
  maxPerClient: number;
  /** Requests waiting for a slot overall and per client address (0: no queue, 503 at once); beyond them 503. */
  maxQueued: number;
  maxQueuedPerClient: number;
  /** A request queued this long gets 503. */
  queueTimeoutMs: number;
  /** Distinct client addresses with requests in flight or queued; a new address beyond it gets 503. */
  maxClients: number;
  /** Upload rate limit over all responses, bytes/s, shared round-robin by client address; 0 is unlimited. */
  maxUploadBytesPerSec: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** A response waiting this long for the client to drain is destroyed. */
  idleTimeoutMs: number;
  maxRangeBytes: number;
  /** Read (and write) chunk of a response holding a large buffer: a whole ≤ 1 MiB range in one read by default. */
  readChunkBytes: number;
  /** Chunk of a response that finds readBufferMaxBytes of large buffers out (many slow readers): a small buffer. */
  readChunkSmallBytes: number;
  /** Large read buffers at most, in bytes, over all responses (they are pooled; responses beyond get small ones). */
  readBufferMaxBytes: number;
  /** close(): in-flight responses get this long to finish before their connections are cut. */
  closeGraceMs: number;
  /** Open connections overall and per client address (connection-cap.ts); default below the fd limit. */
  maxConnections: number;
  maxConnectionsPerAddress: number;
  /** Connections beyond those caps for the owner's /status and /metrics (with `observability` only). */
  ownerConnections: number;
}

export interface BlockServerOptions {
  library: Library;
  host: string;
  port: number;
  log: Logger;
  /** Overrides of the defaults; an undefined value keeps the default (so CLI flags can be passed through as is). */
  limits?: { [K in keyof BlockServerLimits]?: BlockServerLimits[K] | undefined };
  /** Answer GET/HEAD /metrics and /status on this port; absent, those paths get the block parser's 404. */
  observability?: Observability;
  /**
   * Other routes on this port (the box's control API and page): a request whose target `claims` is handed to
   * `handle` before anything else (it checks address and Host itself), outside admission and the rate limit.
   */
  extraRoutes?: { claims(target: string): boolean; handle(req: IncomingMessage, res: ServerResponse): void };
  /**
   * Also serve the binary peer wire (docs/spec-peer-wire.md) on this TCP port (0: any free port), on the same host,
   * sharing this server's admission, upload rate, buffers and connection cap; HTTP replies then advertise it in
   * `X-Kascade-Wire: <port>`. Absent (the default): no wire, no header.
   */
  wirePort?: number | undefined;
}

export interface BlockServerStats {
  /** Requests seen, except those to the observability routes. */
  requests: number;
  /** Responses by status code (observability routes excluded). */
  statuses: Record<number, number>;
  /** File bytes handed to sockets (overall and per swarm id), and bytes read from data files. */
  bytesSent: number;
  bytesSentBySwarm: Record<string, number>;
  bytesRead: number;
  /** Requests holding a slot, and distinct client addresses with a request holding one. */
  inFlight: number;
  activeClients: number;
  /** Requests waiting for a slot now; requests that ever waited; time they spent waiting (ms, summed) and its count. */
  queueDepth: number;
  queuedTotal: number;
  queueWaitMsSum: number;
  queueWaitCount: number;
  /** 503s by reason. */
  rejectedBusy: Record<BusyReason, number>;
  /** Responses waiting for upload-rate tokens now. */
  rateWaiting: number;
  /** Requests to /metrics and /status (any status). */
  observabilityRequests: number;
  /** Open connections, those on owner slots, those closed at once when full, idle ones closed to make room. */
  connections: number;
  ownerConnections: number;
  refusedConnections: number;
  idleClosed: number;
  /** Pooled read buffers: held by responses now (≤ one each), free, ever allocated (server/buffer-pool.ts). */
  readBuffers: ReadBuffersStats;
  /** The peer wire's own counts, when it runs (its bytes and busy refusals are in the totals above too). */
  wire?: WireServerStats;
}

export interface BlockServer {
  /** `http://HOST:PORT` (IPv6 hosts in brackets). */
  url: string;
  host: string;
  port: number;
  /** The peer wire's port when `wirePort` was given (what `X-Kascade-Wire` says), else undefined. */
  wirePort: number | undefined;
  /** Stop accepting, let in-flight responses finish for closeGraceMs, then cut the rest. Idempotent. */
  close(): Promise<void>;
  stats(): BlockServerStats;
  /** Bytes of blocks sent for one swarm (what stats().bytesSentBySwarm holds, without building it all). */
  bytesSentFor(swarmId: string): number;
  /** The client addresses served for one swarm lately: bytes and a rate (upload-tally.ts). */
  uploadsFor(swarmId: string): ClientUpload[];
  /** Change the live limits at once (the API's PATCH /settings); KF_E_INPUT naming the field for a bad value. */
  setLimits(l: LiveLimits): void;
  /** The live limits now. */
  limits(): Required<LiveLimits>;
}

/**
 * The limits that change at run time without a restart. The upload rate (0: none) paces the next chunk of every
 * response, also those running (upload-rate.ts setRate); maxClients bounds client addresses admitted from now on
 * (addresses already served or queued keep their requests).
 */
export interface LiveLimits {
  maxUploadBytesPerSec?: number;
  maxClients?: number;
}

const DEFAULTS: BlockServerLimits = {
  maxConcurrent: LIMITS.serverMaxConcurrent,
  maxPerClient: LIMITS.serverMaxPerClient,
  maxQueued: LIMITS.serverMaxQueued,
  maxQueuedPerClient: LIMITS.serverMaxQueuedPerClient,
  queueTimeoutMs: LIMITS.serverQueueTimeoutMs,
  maxClients: LIMITS.serverMaxClients,
  maxUploadBytesPerSec: LIMITS.serverMaxUploadBytesPerSec,
  headersTimeoutMs: LIMITS.serverHeadersTimeoutMs,
  requestTimeoutMs: LIMITS.serverRequestTimeoutMs,
  idleTimeoutMs: LIMITS.serverIdleTimeoutMs,
  maxRangeBytes: LIMITS.serverMaxRangeBytes,
  readChunkBytes: LIMITS.serverReadChunkBytes,
  readChunkSmallBytes: LIMITS.serverReadChunkSmallBytes,
  readBufferMaxBytes: LIMITS.serverReadBufferMaxBytes,
  closeGraceMs: 1_000,
  maxConnections: Math.max(16, Math.min(LIMITS.serverMaxConnections, openFileLimit() - LIMITS.serverFdReserve)),
  maxConnectionsPerAddress: LIMITS.serverMaxConnectionsPerAddress,
  ownerConnections: LIMITS.serverOwnerConnections,
};

/**
 * The Server header, given to writeHead with the others rather than set first with setHeader: with no header set
 * beforehand node:http takes writeHead's object as is instead of validating and storing every field twice.
 */
const SERVER = `kfetch/${VERSION}`;

/** Node's default header limit, stated so a change of Node default cannot widen it silently (64 KiB headers -> 431). */
const MAX_HEADER_BYTES = 16 * 1024;

/**
 * Headers node:http keeps per request; it drops the rest without a word, so a late Range would vanish and turn a
 * block request into a whole-file GET. A request that reaches the count may have lost some: it gets 431 (issue 10
 * point 17). No real client sends anywhere near this many.
 */
const MAX_HEADERS = 1_000;

/** What a valid block request asks for once checked against its file; only these need a slot. */
type Plan =
  | { kind: 'bitfield'; file: ServedFile; blockSize: number }
  | { kind: 'stream'; file: ServedFile; first: number; last: number; status: 200 | 206; headers: Record<string, string>; head: boolean };

const BUSY_MESSAGES: Record<BusyReason, string> = {
  maxClients: 'busy: too many clients',
  queueFull: 'busy: too many requests in flight',
  clientQueueFull: 'busy: too many requests from this address',
  queueTimeout: 'busy: waited too long for a slot',
};

/** Start a block server on host:port (port 0: any free port). Rejects with KF_E_LISTEN if it cannot bind. */
export async function startBlockServer(opts: BlockServerOptions): Promise<BlockServer> {
  const limits: BlockServerLimits = { ...DEFAULTS };
  for (const [k, v] of Object.entries(opts.limits ?? {})) {
    if (v !== undefined) (limits as unknown as Record<string, number>)[k] = v;
  }
  const { library, log, observability, extraRoutes } = opts;
  const admission = new Admission(limits);
  // The upload rate and the admission's maxClients change at run time (setLimits); the rate decides the chunk size
  // and so the read buffers' size.
  const burstFor = (r: number): number => Math.max(LIMITS.serverUploadMinChunkBytes, (r * LIMITS.serverUploadBurstMs) / 1000);
  // Under a low rate a full read chunk would wait seconds for its tokens (and hold its buffer meanwhile).
  const chunkFor = (r: number): number =>
    r > 0 ? chunkBytesFor(r, LIMITS.serverUploadChunkMs, LIMITS.serverUploadMinChunkBytes, limits.readChunkBytes) : limits.readChunkBytes;
  const newBuffers = (chunk: number): ReadBuffers =>
    new ReadBuffers(chunk, limits.readChunkSmallBytes, limits.readBufferMaxBytes, LIMITS.serverPoolFreeBytes);
  const rate = new UploadRate({ bytesPerSec: limits.maxUploadBytesPerSec, burstBytes: burstFor(limits.maxUploadBytesPerSec) });
  let chunkBytes = chunkFor(limits.maxUploadBytesPerSec);
  let buffers = newBuffers(chunkBytes);
  /** Pools replaced by a change of chunk size that responses still hold buffers of (counted in stats until empty). */
  let retired: ReadBuffers[] = [];
  const stats = { requests: 0, statuses: {} as Record<number, number>, bytesSent: 0, bytesRead: 0, observabilityRequests: 0 };
  /** Headers on every reply of ours: Server, and X-Kascade-Wire once the wire listens. */
  const base: Record<string, string> = { Server: SERVER };
  const bytesBySwarm = new Map<string, number>();
  const uploads = new UploadTally();
  const rejectedBusy: Record<BusyReason, number> = { maxClients: 0, queueFull: 0, clientQueueFull: 0, queueTimeout: 0 };
  let loopbackOnly = false;
  // The Host check is pure and clients send the same Host on every request: remember the last answer.
  let lastHost = '';
  let lastHostLoopback = false;
  const loopbackHostMemo = (host: string): boolean => {
    if (host !== lastHost) {
      lastHostLoopback = isLoopbackHost(host);
      lastHost = host;
    }
    return lastHostLoopback;
  };

  const server = createServer({
    maxHeaderSize: MAX_HEADER_BYTES,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // Node checks those two timeouts only every connectionsCheckingInterval (default 30 s): check often enough that
    // a slowloris client is cut near the stated bound, not up to 30 s later.
    connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4))),
    keepAlive: true,
  });
  server.maxHeadersCount = MAX_HEADERS;
  const connections = new ConnectionCap(
    { ...limits, maxConnectionsPerAddress: Math.min(limits.maxConnectionsPerAddress, limits.maxConnections) },
    (address) => observability?.allowed(address) === true,
  );
  server.on('connection', (socket: Socket) => connections.open(socket));
  // A client that half-closes after its request (FIN once the request is sent) still wants the reply: without this
  // node:http aborts the request on the FIN and the client gets nothing (issue 10 point 17). The connection closes
  // once the replies in progress are done.
  (server as typeof server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;

  const reply = (res: ServerResponse, status: number, body: string, type: string, headers: Record<string, string>): void => {
    const bytes = Buffer.from(body, 'utf8');
    res.writeHead(status, { ...base, ...headers, 'Content-Type': type, 'Content-Length': String(bytes.length) });
    res.end(bytes); // Node drops the body itself for HEAD.
  };
  const send = (res: ServerResponse, status: number, body: string, type: string, headers: Record<string, string> = {}): void => {
    stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
    reply(res, status, body, type, headers);
  };
  const sendError = (res: ServerResponse, status: number, error: string, headers: Record<string, string> = {}): void => {
    send(res, status, `${JSON.stringify({ error })}\n`, 'application/json; charset=utf-8', headers);
  };

  const admit = (client: string, gone: Gone): Promise<Release | BusyReason | 'gone'> =>
    admitSlot(admission, client, gone, limits.queueTimeoutMs);
  const paced = (client: string, bytes: number, gone: Gone): number | Promise<number> => pacedBytes(rate, client, bytes, gone);

  /**
   * Stream [first, last] of the file as the body of a `status` response (empty when last < first). The response
   * holds one pooled buffer for its whole body: read a chunk into it, hand it to the socket, and read the next only
   * once the socket has taken all of it (the write's callback), so a slow or paused reader holds one chunk plus the
   * socket buffers, and one that takes nothing for idleTimeoutMs is cut (its slot is freed on close).
   */
  const stream = async (client: string, res: ServerResponse, gone: Gone, p: Plan & { kind: 'stream' }): Promise<void> => {
    const { file, first, last, status, head } = p;
    const length = last - first + 1;
    const all = { ...base, ...p.headers, 'Content-Type': 'application/octet-stream', 'Content-Length': String(Math.max(0, length)) };
    const swarmId = file.kascade.swarmId;
    if (head || length <= 0) {
      stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
      res.writeHead(status, all).end();
      return;
    }
    // Tokens for the first chunk are taken before the buffer, so a response waiting for them holds none (with only
    // a small buffer left the surplus tokens are lost: the limit is under-used, never exceeded). Each chunk is as
    // large as the tokens taken for it, and those follow the rate now (setLimits may change it mid-response).
    // (No await when granted at once: a microtask per chunk is measurable on the hot path.)
    const first0 = paced(client, Math.min(chunkBytes, length), gone);
    let grant = typeof first0 === 'number' ? first0 : await first0;
    if (grant === 0) return; // the client left while waiting for tokens
    let pool = buffers;
    let buf = pool.take();
    /** A write the socket has not finished with: the buffer is dropped, never reused, if the response ends so. */
    let writing = false;
    let wake: ((ok: boolean) => void) | undefined;
    const onGone = (): void => wake?.(false);
    gone.on(onGone);
    try {
      let pos = first;
      for (;;) {
        const n = Math.min(buf.length, grant, last - pos + 1);
        const chunk = n === buf.length ? buf : buf.subarray(0, n);
        try {
          // All n bytes, or a rejection (a short read is one). Not `stats.bytesRead += await …`: that reads the
          // counter before the await and loses what concurrent responses added meanwhile.
          const got = await file.read(chunk, n, pos);
          stats.bytesRead += got;
        } catch (err) {
          if (pos === first) throw err; // before the headers: a clean 400 "not held now" or 500
          // Headers are gone: never send wrong or missing bytes in their place; the client sees a short body.
          log.warn({ err: String(err), file: file.kascade.filename, pos }, 'read failed mid-response; dropping connection');
          res.destroy();
          return;
        }
        if (pos === first) {
          // The first chunk is read before the headers go out, so a failing disk still gets a clean 500, not a 206.
          stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
          res.writeHead(status, all);
        }
        if (res.destroyed || gone.aborted) return;
        writing = true;
        let timer: NodeJS.Timeout | undefined;
        const taken = new Promise<boolean>((resolve) => {
          wake = resolve;
          const flowing = res.write(chunk, (err) => {
            writing = false;
            resolve(err === null || err === undefined);
          });
          // Still queued after the write: timed even under the high-water mark (a 4 KiB range to a client that reads
          // nothing waited forever, with its slot, when only a `false` from write armed the timer).
          if (!flowing || res.writableLength > 0) {
            timer = setTimeout(() => resolve(false), limits.idleTimeoutMs);
            timer.unref();
          }
        });
        stats.bytesSent += n;
        bytesBySwarm.set(swarmId, (bytesBySwarm.get(swarmId) ?? 0) + n);
        uploads.add(swarmId, client, n);
        pos += n;
        const written = await taken;
        clearTimeout(timer);
        if (!written || writing) {
          if (!gone.aborted) res.destroy(); // idle for idleTimeoutMs, or the write failed
          return;
        }
        if (pos > last) break;
        if (pool !== buffers) {
          // The rate changed the chunk size: trade this buffer (idle now) for one of the new size, so a long response
          // neither keeps a large buffer at a low rate nor crawls in small chunks at a high one.
          pool.give(buf);
          pool = buffers;
          buf = pool.take();
        }
        const more = paced(client, Math.min(buf.length, chunkBytes, last - pos + 1), gone);
        grant = typeof more === 'number' ? more : await more;
        if (grant === 0) return;
      }
      res.end();
    } finally {
      gone.off(onGone);
      if (writing) pool.drop(buf);
      else pool.give(buf);
    }
  };

  /** Check a parsed request against the library: an error to send at once (no slot needed), or what to serve. */
  const plan = (res: ServerResponse, r: ServerRequest): Plan | undefined => {
    const file = library.get(r.swarmId);
    // The same answer for every unknown id: the server does not say which ids exist in any other way.
    if (file === undefined) return void sendError(res, 404, 'unknown file');
    const k = file.kascade;
    switch (r.kind) {
      case 'bitfield': {
        if (!k.offers(r.blockSize)) return void sendError(res, 400, `block size ${r.blockSize} is not offered`);
        return { kind: 'bitfield', file, blockSize: r.blockSize };
      }
      case 'whole': {
        if (!isComplete(file)) return void sendError(res, 416, 'file not complete; ask for a Range of held blocks');
        return { kind: 'stream', file, first: 0, last: k.filesize - 1, status: 200, headers: { 'Accept-Ranges': 'bytes' }, head: r.head };
      }
      case 'range': {
        const d = decideRange(file, r.first, r.last, limits.maxRangeBytes);
        if (!d.ok) {
          return void sendError(res, d.status, d.error, d.status === 416 ? { 'Content-Range': `bytes */${k.filesize}` } : {});
        }
        const headers = { 'Accept-Ranges': 'bytes', 'Content-Range': `bytes ${d.first}-${d.last}/${k.filesize}` };
        return { kind: 'stream', file, first: d.first, last: d.last, status: 206, headers, head: r.head };
      }
    }
  };

  /** Wait for a slot, then serve; 503 + Retry-After when refused or queued too long. */
  const serve = async (client: string, res: ServerResponse, gone: Gone, p: Plan): Promise<void> => {
    const slot = await admit(client, gone);
    if (slot === 'gone') return;
    if (typeof slot === 'string') {
      rejectedBusy[slot]++;
      return sendError(res, 503, BUSY_MESSAGES[slot], { 'Retry-After': '1' });
    }
    if (gone.aborted) return slot();
    gone.on(slot);
    // Waiting may have taken seconds: serve only if the file is still in the library.
    if (library.get(p.file.kascade.swarmId) !== p.file) return sendError(res, 404, 'unknown file');
    // …and only blocks still held (a block found bad on disk meanwhile is no longer served).
    if (p.kind === 'stream' && p.status === 206 && !decideRange(p.file, p.first, p.last, Number.MAX_SAFE_INTEGER).ok) {
      return sendError(res, 400, 'block not held (yet)');
    }
    if (p.kind === 'bitfield') return send(res, 200, p.file.held(p.blockSize).toHex(), 'text/plain; charset=utf-8');
    return stream(client, res, gone, p);
  };

  const serveObservability = (req: IncomingMessage, res: ServerResponse, obs: Observability, route: ObservabilityRoute): void => {
    stats.observabilityRequests++;
    if (hasBody(req)) res.setHeader('Connection', 'close'); // the body is not read; do not parse it as a next request
    const remote = req.socket.remoteAddress ?? '';
    observabilityReply(obs, route, req.method ?? '', remote).then(
      (r) => reply(res, r.status, r.body, r.type, r.headers),
      (err: unknown) => {
        log.warn({ err: String(err), route }, 'observability route failed');
        if (!res.headersSent) reply(res, 500, `${JSON.stringify({ error: `${route} unavailable` })}\n`, 'application/json; charset=utf-8', {});
      },
    );
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    res.on('error', () => undefined); // a client gone mid-write is normal; 'close' handles it
    const socket = req.socket;
    connections.busy(socket);
    res.once('close', () => connections.done(socket));
    if (extraRoutes?.claims(req.url ?? '') === true) return extraRoutes.handle(req, res);
    if (req.rawHeaders.length >= 2 * MAX_HEADERS) {
      stats.requests++;
      res.setHeader('Connection', 'close');
      return sendError(res, 431, `more than ${MAX_HEADERS - 1} header lines`);
    }
    // DNS rebinding needs a browser, and browsers always send Host: a request without one (HTTP/1.0; node:http
    // refuses HTTP/1.1 without Host itself) is a plain client on this machine, like an original peer (SPEC §6).
    if (loopbackOnly && req.headers.host !== undefined && !loopbackHostMemo(req.headers.host)) {
      stats.requests++;
      return sendError(res, 403, 'Host header must name a loopback address on a loopback-bound server');
    }
    // Routed before the block parser and outside admission and the rate limit: a busy seeder still answers scrapes.
    const route = observability === undefined ? undefined : observabilityRoute(req.url ?? '');
    if (route !== undefined) return serveObservability(req, res, observability!, route);
    stats.requests++;
    if (connections.onOwnerSlot(socket)) {
      res.setHeader('Connection', 'close');
      return sendError(res, 503, 'busy: too many connections (this one is kept for /status and /metrics)', { 'Retry-After': '1' });
    }
    if (hasBody(req)) {
      res.setHeader('Connection', 'close');
      return sendError(res, 400, 'requests to the block server carry no body');
    }
    const parsed = parseRequest(req.method ?? '', req.url ?? '', req.headers.range);
    if (!parsed.ok) {
      return sendError(res, parsed.status, parsed.error, parsed.status === 405 ? { Allow: 'GET, HEAD' } : {});
    }
    const p = plan(res, parsed.request);
    if (p === undefined) return;
    const client = req.socket.remoteAddress ?? 'unknown';
    serve(client, res, goneSignal(req, res), p).catch((err: unknown) => {
      log.warn({ err: String(err), url: (req.url ?? '').slice(0, 200), client }, 'block request failed');
      if (res.headersSent) res.destroy();
      else if (err instanceof NotHeldNowError) sendError(res, 400, 'block not held now');
      else sendError(res, 500, 'read error');
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

  let wire: WireServer | undefined;
  if (opts.wirePort !== undefined) {
    wire = await startWireServer({
      host: opts.host,
      port: opts.wirePort,
      library,
      log,
      admission,
      rate,
      connections,
      limits,
      buffers: () => buffers,
      chunkBytes: () => chunkBytes,
      sent: (swarmId, client, n) => {
        stats.bytesSent += n;
        bytesBySwarm.set(swarmId, (bytesBySwarm.get(swarmId) ?? 0) + n);
        uploads.add(swarmId, client, n);
      },
      read: (n) => {
        stats.bytesRead += n;
      },
      busy: (reason) => {
        rejectedBusy[reason]++;
      },
    });
    base['X-Kascade-Wire'] = String(wire.port);
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      void wire?.close();
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

  const readBufferStats = (): ReadBuffersStats => {
    const now = buffers.stats();
    retired = retired.filter((b) => b.stats().liveBytes > 0);
    return { ...now, liveBytes: retired.reduce((sum, b) => sum + b.stats().liveBytes, now.liveBytes) };
  };

  const setLimits = (l: LiveLimits): void => {
    const rateNow = l.maxUploadBytesPerSec;
    if (rateNow !== undefined && (!Number.isSafeInteger(rateNow) || rateNow < 0)) {
      throw new KfetchError('KF_E_INPUT', `maxUploadBytesPerSec must be an integer >= 0, got ${rateNow}`, { field: 'maxUploadBytesPerSec' });
    }
    if (l.maxClients !== undefined && (!Number.isSafeInteger(l.maxClients) || l.maxClients < 1)) {
      throw new KfetchError('KF_E_INPUT', `maxClients must be an integer >= 1, got ${l.maxClients}`, { field: 'maxClients' });
    }
    // Admission reads `limits` on every request: clients already served or queued keep their place, new addresses
    // meet the new bound.
    if (l.maxClients !== undefined) limits.maxClients = l.maxClients;
    if (rateNow === undefined || rateNow === limits.maxUploadBytesPerSec) return;
    limits.maxUploadBytesPerSec = rateNow;
    const chunk = chunkFor(rateNow);
    rate.setRate(rateNow, burstFor(rateNow), chunk);
    if (chunk !== chunkBytes) {
      chunkBytes = chunk;
      // New responses take buffers of the new size; those running keep theirs (using at most `chunkBytes` of it).
      if (buffers.stats().liveBytes > 0) retired.push(buffers);
      buffers = newBuffers(chunk);
    }
    log.info({ maxUploadBytesPerSec: rateNow, chunkBytes }, 'upload rate limit changed');
  };

  return {
    url: `http://${host}:${addr.port}`,
    host: opts.host,
    port: addr.port,
    wirePort: wire?.port,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        const wireClosed = wire?.close() ?? Promise.resolve();
        const timer = setTimeout(() => server.closeAllConnections(), limits.closeGraceMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          void wireClosed.then(() => {
            rate.stop();
            resolve();
          });
        });
        server.closeIdleConnections();
      })),
    setLimits,
    limits: () => ({ maxUploadBytesPerSec: limits.maxUploadBytesPerSec, maxClients: limits.maxClients }),
    bytesSentFor: (swarmId) => bytesBySwarm.get(swarmId) ?? 0,
    uploadsFor: (swarmId) => uploads.of(swarmId),
    stats: () => ({
      ...stats,
      statuses: { ...stats.statuses },
      bytesSentBySwarm: Object.fromEntries(bytesBySwarm),
      inFlight: admission.inFlight,
      activeClients: admission.activeClients,
      queueDepth: admission.queued,
      queuedTotal: admission.queuedTotal,
      queueWaitMsSum: admission.queueWaitMsSum,
      queueWaitCount: admission.queueWaitCount,
      rejectedBusy: { ...rejectedBusy },
      rateWaiting: rate.waiting,
      readBuffers: readBufferStats(),
      ...connections.stats(),
      ...(wire === undefined ? {} : { wire: wire.stats() }),
    }),
  };
}

/** A request with a body (Content-Length > 0 or any Transfer-Encoding): block requests never have one. */
function hasBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return (cl !== undefined && cl !== '0') || req.headers['transfer-encoding'] !== undefined;
}
