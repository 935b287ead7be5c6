// A small static HTTP server with Range support for the benchmarks when nginx is missing (and, with a delay, the
// slow peer of the `tail` scenario): serves one file at /<filehash> from one fd with positional reads.
// Run as a process: node dist/bench/static-server.js --file F --id FILEHASH [--port 0] [--delay-ms N].

import { createReadStream, fstatSync, openSync, closeSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export interface StaticServerOptions {
  file: string;
  /** The URL path component: the file is served at `/<id>`. */
  id: string;
  port?: number;
  /** Wait this long before answering each request (a slow peer). */
  delayMs?: number;
  /** Serve only the first `limit` bytes, as if the file ended there (a peer that lacks the end of the file). */
  limit?: number;
  /** Answer 416 to any range that is not exactly one aligned block of this size, as original Kascade peers do. */
  singleBlock?: number;
}

export interface StaticServer {
  port: number;
  addr: string;
  /** Requests for the file received (including those still waiting or cut off). */
  requests(): number;
  /** performance.now() of the first request for the file, if any. */
  firstRequestAt(): number | undefined;
  /** Each response fully handed to the socket: first byte of its range, last byte, and performance.now(). */
  served: { first: number; last: number; at: number }[];
  /** Requests open now (arrived, response not finished), and their integral over time in request·ms. */
  inFlight(): { now: number; integralMs: number };
  close(): Promise<void>;
}

/** Start the server on 127.0.0.1; resolves once it listens. */
export async function startStaticServer(o: StaticServerOptions): Promise<StaticServer> {
  const fd = openSync(o.file, 'r');
  const size = Math.min(fstatSync(fd).size, o.limit ?? Infinity);
  const served: StaticServer['served'] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let requests = 0;
  let firstAt: number | undefined;
  // Time-weighted count of open requests: what a client kept in flight at this server.
  let open = 0;
  let integral = 0;
  let markAt = performance.now();
  const mark = (delta: number): void => {
    const now = performance.now();
    integral += open * (now - markAt);
    markAt = now;
    open += delta;
  };
  const server: Server = createServer((req, res) => {
    if (req.url !== `/${o.id}` || (req.method !== 'GET' && req.method !== 'HEAD')) return void res.writeHead(404).end();
    requests++;
    firstAt ??= performance.now();
    mark(1);
    res.once('close', () => mark(-1));
    let first = 0;
    let last = size - 1;
    let status = 200;
    const range = req.headers.range;
    if (range !== undefined) {
      const m = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (m === null || Number(m[1]) >= size) {
        return void res.writeHead(416, { 'Content-Range': `bytes */${size}` }).end();
      }
      first = Number(m[1]);
      last = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
      if (last < first) return void res.writeHead(416, { 'Content-Range': `bytes */${size}` }).end();
      const b = o.singleBlock;
      if (b !== undefined && (first % b !== 0 || last !== Math.min(first + b, size) - 1)) {
        return void res.writeHead(416, { 'Content-Range': `bytes */${size}` }).end();
      }
      status = 206;
    }
    const answer = (): void => {
      const headers: Record<string, string | number> = {
        'Content-Length': last - first + 1,
        'Content-Type': 'application/octet-stream',
        'Accept-Ranges': 'bytes',
      };
      if (status === 206) headers['Content-Range'] = `bytes ${first}-${last}/${size}`;
      res.writeHead(status, headers);
      if (req.method === 'HEAD') return void res.end();
      res.once('finish', () => served.push({ first, last, at: performance.now() }));
      createReadStream('', { fd, start: first, end: last, autoClose: false, highWaterMark: 1024 * 1024 }).pipe(res);
    };
    if ((o.delayMs ?? 0) > 0) {
      const t = setTimeout(() => {
        timers.delete(t);
        answer();
      }, o.delayMs);
      timers.add(t);
    } else answer();
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    addr: `127.0.0.1:${port}`,
    served,
    requests: () => requests,
    firstRequestAt: () => firstAt,
    inFlight: () => {
      mark(0);
      return { now: open, integralMs: integral };
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        for (const s of sockets) s.destroy();
        server.close(() => {
          closeSync(fd);
          resolve();
        });
      }),
  };
}

// As a process: print `listening on http://127.0.0.1:PORT` (like kfetch) and serve until SIGTERM/SIGINT.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { file: { type: 'string' }, id: { type: 'string' }, port: { type: 'string', default: '0' }, 'delay-ms': { type: 'string', default: '0' } },
  });
  if (values.file === undefined || values.id === undefined) throw new Error('static-server: --file and --id are required');
  const s = await startStaticServer({ file: values.file, id: values.id, port: Number(values.port), delayMs: Number(values['delay-ms']) });
  process.stdout.write(`listening on http://${s.addr}\n`);
  const stop = (): void => void s.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
