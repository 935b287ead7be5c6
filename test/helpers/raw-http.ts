// Sends exact request bytes over a plain TCP socket and parses the HTTP/1.1 responses by hand. Path-traversal and
// header tests need this: fetch, undici and WHATWG URL normalise `..` and backslashes away before sending.

import { connect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  statusText: string;
  /** Header names lowercased; repeated headers joined with ', '. */
  headers: Record<string, string>;
  body: Buffer;
}

/** One raw connection; responses are read in order, each with its Content-Length body (none for HEAD). */
export class RawConnection {
  private buf = Buffer.alloc(0);
  private ended = false;
  private waiter: (() => void) | undefined;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => {
      this.ended = true;
      this.wake();
    });
  }

  /** Connect to host:port (optionally from a given local address, e.g. 127.0.0.2, to look like another client). */
  static open(port: number, opts: { host?: string; localAddress?: string; timeoutMs?: number } = {}): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host: opts.host ?? '127.0.0.1', ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('connect timeout'));
      }, opts.timeoutMs ?? 5_000);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new RawConnection(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  send(bytes: string | Buffer): void {
    this.socket.write(bytes);
  }

  /** True once the server closed its side. */
  get closed(): boolean {
    return this.ended;
  }

  /** Read the next response; `head` for a response to HEAD (no body even with Content-Length). */
  async readResponse(opts: { head?: boolean; timeoutMs?: number } = {}): Promise<RawResponse> {
    const deadline = Date.now() + (opts.timeoutMs ?? 5_000);
    let end: number;
    while ((end = this.buf.indexOf('\r\n\r\n')) < 0) await this.more(deadline);
    const headText = this.buf.subarray(0, end).toString('latin1');
    const [statusLine = '', ...lines] = headText.split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(statusLine);
    if (m === null) throw new Error(`bad status line: ${JSON.stringify(statusLine)}`);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const i = line.indexOf(':');
      const name = line.slice(0, i).trim().toLowerCase();
      const value = line.slice(i + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    const status = Number(m[1]);
    const length = opts.head || status === 304 || status === 204 ? 0 : Number(headers['content-length'] ?? '0');
    while (this.buf.length < end + 4 + length) await this.more(deadline);
    const body = Buffer.from(this.buf.subarray(end + 4, end + 4 + length));
    this.buf = this.buf.subarray(end + 4 + length);
    return { status, statusText: m[2] ?? '', headers, body };
  }

  /** Wait until the server closes the connection (true) or the time runs out (false). */
  async waitClosed(timeoutMs = 5_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    try {
      while (!this.ended) await this.more(deadline);
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private more(deadline: number): Promise<void> {
    if (this.ended) return Promise.reject(new Error(`connection closed; received so far: ${this.buf.toString('latin1').slice(0, 300)}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`timeout; received so far: ${this.buf.toString('latin1').slice(0, 300)}`));
      }, Math.max(0, deadline - Date.now()));
      this.waiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/** Send one raw request (exact bytes) on a fresh connection and read one response. */
export async function rawRequest(
  port: number,
  bytes: string | Buffer,
  opts: { head?: boolean; timeoutMs?: number; localAddress?: string } = {},
): Promise<RawResponse> {
  const conn = await RawConnection.open(port, opts.localAddress ? { localAddress: opts.localAddress } : {});
  try {
    conn.send(bytes);
    return await conn.readResponse(opts);
  } finally {
    conn.close();
  }
}

/** Build request bytes: `METHOD target HTTP/1.1` plus headers (Host first unless given), then an empty line. */
export function requestBytes(method: string, target: string, headers: Record<string, string> = {}, port?: number): string {
  const all = { ...(headers.Host === undefined && port !== undefined ? { Host: `127.0.0.1:${port}` } : {}), ...headers };
  return `${method} ${target} HTTP/1.1\r\n${Object.entries(all)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
}
