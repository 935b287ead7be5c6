// A raw node:net seeder that answers exactly like the original 2015 Python Kascade peer (SPEC §6), for tests that
// kfetch can download from the originals. One request per connection, then close (HTTP/1.0, no keep-alive):
// - one block's worth of a complete file (`Range: bytes=a-b`, b-a+1 = blockSize, or the short tail ending at the
//   last byte; alignment is not checked) → `HTTP/1.0 206` with `Range: bytes=a-b/size` in place of Content-Range
//   and `Content-length` (lower-case l), the body, close;
// - anything else (/<hash>/blocks, multi-block or sub-block ranges, no Range, another path or method, or a block
//   `refuse` names) → a 404 whose header block never ends: the status line and BaseHTTPServer's Server and Date
//   headers, no blank line, close.
// Every request is logged (arrival time, what was asked, what was answered) so tests can count and time them.

import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface OriginalServerOptions {
  /** The whole (complete) file. */
  bytes: Buffer;
  /** The file's SHA-256 (its id in URLs). */
  id: string;
  /** The block size the peer hard-codes: 1024 or 4096 in the originals. */
  blockSize: number;
  /** Added latency before each response (a request's answer, 206 or 404), ms. */
  latencyMs?: number;
  /** Blocks (index of the range's first byte / blockSize) this seeder answers with the headerless 404. */
  refuse?: (block: number) => boolean;
}

export interface OriginalRequest {
  /** performance.now() when the request head arrived. */
  at: number;
  method: string;
  path: string;
  /** The Range header as sent, if any. */
  range: string | undefined;
  /** The block the range starts in, when there was a parsable range. */
  block: number | undefined;
  status: 206 | 404;
  /** performance.now() when the answer was handed to the socket (after the latency). */
  answeredAt?: number;
}

export interface OriginalServer {
  addr: string;
  port: number;
  /** Every request, in arrival order. */
  log: OriginalRequest[];
  /** Connections accepted so far. */
  connections: () => number;
  close(): Promise<void>;
}

const SERVER_HEADER = 'Server: BaseHTTP/0.3 Python/2.7.6\r\n';

export async function startOriginalServer(o: OriginalServerOptions): Promise<OriginalServer> {
  const log: OriginalRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let connections = 0;
  const size = o.bytes.length;

  const answer = (s: Socket, head: string): void => {
    const [requestLine = '', ...lines] = head.split('\r\n');
    const [method = '', path = ''] = requestLine.split(' ');
    let range: string | undefined;
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === 'range') range = line.slice(colon + 1).trim();
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(range ?? '');
    const first = m === null ? undefined : Number(m[1]);
    const last = m === null ? undefined : Number(m[2]);
    const block = first === undefined ? undefined : Math.floor(first / o.blockSize);
    const oneBlock =
      first !== undefined &&
      last !== undefined &&
      last >= first &&
      last < size &&
      (last - first + 1 === o.blockSize || (last === size - 1 && last - first + 1 < o.blockSize));
    const serve = method === 'GET' && path === `/${o.id}` && oneBlock && !(o.refuse?.(block!) ?? false);
    const entry: OriginalRequest = { at: performance.now(), method, path, range, block, status: serve ? 206 : 404 };
    log.push(entry);
    const date = `Date: ${new Date().toUTCString()}\r\n`;
    const send = (): void => {
      entry.answeredAt = performance.now();
      if (s.destroyed) return;
      if (!serve) {
        // send_response(404) without end_headers(): the head never ends; the handler returns and the socket closes.
        s.end(`HTTP/1.0 404 Not Found\r\n${SERVER_HEADER}${date}`, 'latin1');
        return;
      }
      const body = o.bytes.subarray(first, last! + 1);
      s.write(`HTTP/1.0 206 Partial Content\r\n${SERVER_HEADER}${date}Range: bytes=${first}-${last}/${size}\r\nContent-length: ${body.length}\r\n\r\n`, 'latin1');
      s.end(body);
    };
    const delay = o.latencyMs ?? 0;
    if (delay <= 0) return send();
    const t = setTimeout(() => {
      timers.delete(t);
      send();
    }, delay);
    timers.add(t);
  };

  const server: Server = createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      s.off('data', onData); // one request per connection
      answer(s, buf.slice(0, end));
    };
    s.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    addr: `127.0.0.1:${port}`,
    port,
    log,
    connections: () => connections,
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
