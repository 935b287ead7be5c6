// A real node:http peer on 127.0.0.1 that serves a payload's bytes per SPEC §3 and misbehaves on demand, per block:
// corrupt, wrong-index, short, long, endless, slow, stall-headers, hangup-mid-body, lie-bitfield, error500, gzip,
// redirect. Every request is logged so tests can count fetches per block.

import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type PeerMode =
  | 'honest'
  | 'corrupt'
  | 'wrong-index'
  | 'short'
  | 'long'
  | 'endless'
  | 'slow'
  | 'stall-headers'
  | 'hangup-mid-body'
  | 'lie-bitfield'
  | 'error500'
  | 'gzip'
  | 'redirect';

export interface AdversarialPeerOptions {
  /** The whole payload. */
  bytes: Buffer;
  /** The id in URLs (filehash). */
  id: string;
  blockSize: number;
  /** Mode for the block at `first` (default honest). */
  mode?: (block: number) => PeerMode;
  /** Delay before answering each request, ms. */
  delayMs?: number;
  /** Serve `/<id>/blocks` (a kfetch extension); a plain HTTP server answers 404. */
  bitfield?: boolean;
  /** Answer 416 to a range that is not exactly one block, as original Kascade peers do. */
  singleBlockOnly?: boolean;
  /** Extra headers on every reply (say an `X-Kascade-Wire` advertisement of a wire port that misbehaves). */
  headers?: Record<string, string>;
}

export interface AdversarialPeer {
  addr: string;
  port: number;
  /** Block indices covered by each GET with a Range, in arrival order. */
  requests: number[];
  /** Honest responses fully handed to the socket: block index and performance.now() time. */
  served: { block: number; at: number }[];
  /** Most block requests open at once (arrived, response not yet closed). */
  readonly maxConcurrent: number;
  /** Each block request's opening (+1) and closing (-1), with performance.now() times, to merge across peers. */
  openLog: { at: number; delta: number }[];
  close(): Promise<void>;
}

export async function startAdversarialPeer(o: AdversarialPeerOptions): Promise<AdversarialPeer> {
  const requests: number[] = [];
  const served: { block: number; at: number }[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  const blocks = Math.ceil(o.bytes.length / o.blockSize);
  let open = 0;
  let maxConcurrent = 0;
  const openLog: { at: number; delta: number }[] = [];
  const server: Server = createServer((req, res) => {
    for (const [k, v] of Object.entries(o.headers ?? {})) res.setHeader(k, v);
    const url = req.url ?? '';
    if (url.startsWith(`/${o.id}/blocks`)) {
      if (o.bitfield !== true) return void res.writeHead(404).end();
      const bits = Buffer.alloc(Math.ceil(blocks / 8));
      // It claims every block, including those it then refuses (`lie-bitfield`).
      for (let i = 0; i < blocks; i++) bits[i >> 3]! |= 0x80 >> (i & 7);
      return void res.writeHead(200, { 'Content-Type': 'text/plain' }).end(bits.toString('hex'));
    }
    if (url !== `/${o.id}`) return void res.writeHead(404).end();
    const m = /^(?:bytes=)?(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (m === null) return void res.writeHead(416).end();
    const first = Number(m[1]);
    const last = Math.min(Number(m[2]), o.bytes.length - 1);
    const block = Math.floor(first / o.blockSize);
    if (o.singleBlockOnly === true && (first % o.blockSize !== 0 || last !== Math.min(first + o.blockSize, o.bytes.length) - 1)) {
      return void res.writeHead(416).end();
    }
    open++;
    maxConcurrent = Math.max(maxConcurrent, open);
    openLog.push({ at: performance.now(), delta: 1 });
    res.once('close', () => {
      open--;
      openLog.push({ at: performance.now(), delta: -1 });
    });
    // Every block the range covers (a multi-block range counts for each of its blocks).
    const covered: number[] = [];
    for (let b = block; b <= Math.floor(last / o.blockSize); b++) covered.push(b);
    requests.push(...covered);
    const mode = o.mode?.(block) ?? 'honest';
    const answer = (): void => {
      if (mode === 'honest') res.once('finish', () => served.push(...covered.map((b) => ({ block: b, at: performance.now() }))));
      serve(res, mode, o, first, last, later);
    };
    if (o.delayMs !== undefined && o.delayMs > 0) later(o.delayMs, answer);
    else answer();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    addr: `127.0.0.1:${port}`,
    port,
    requests,
    served,
    get maxConcurrent() {
      return maxConcurrent;
    },
    openLog,
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function serve(
  res: ServerResponse,
  mode: PeerMode,
  o: AdversarialPeerOptions,
  first: number,
  last: number,
  later: (ms: number, fn: () => void) => void,
): void {
  const body = Buffer.from(o.bytes.subarray(first, last + 1));
  const headers = (len: number): Record<string, string> => ({
    'Content-Type': 'application/octet-stream',
    'Content-Range': `bytes ${first}-${last}/${o.bytes.length}`,
    'Content-Length': String(len),
  });
  switch (mode) {
    case 'honest':
      return void res.writeHead(206, headers(body.length)).end(body);
    case 'corrupt':
      body[0]! ^= 0xff;
      return void res.writeHead(206, headers(body.length)).end(body);
    case 'wrong-index': {
      const other = Buffer.from(o.bytes.subarray(0, body.length));
      if (first === 0) other[0]! ^= 0x01;
      return void res.writeHead(206, headers(other.length)).end(other);
    }
    case 'short':
      res.writeHead(206, headers(body.length)).write(body.subarray(0, body.length >> 1));
      return void res.destroy();
    case 'long': {
      res.writeHead(206, { 'Content-Type': 'application/octet-stream', 'Content-Range': `bytes ${first}-${last}/${o.bytes.length}` });
      return void res.end(Buffer.concat([body, Buffer.alloc(1024, 7)]));
    }
    case 'endless': {
      res.writeHead(206, { 'Content-Type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 1);
      let sent = 0;
      const pump = (): void => {
        while (!res.destroyed && sent < 256 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      return pump();
    }
    case 'slow': {
      res.writeHead(206, headers(body.length));
      let at = 0;
      const drip = (): void => {
        if (res.destroyed || at >= body.length) return void res.end();
        res.write(body.subarray(at, at + 1));
        at++;
        later(1000, drip);
      };
      return drip();
    }
    case 'stall-headers':
      return; // never answers; closed with the server
    case 'hangup-mid-body':
      res.writeHead(206, headers(body.length));
      res.write(body.subarray(0, body.length >> 1));
      return void later(5, () => res.socket?.destroy());
    case 'lie-bitfield':
      return void res.writeHead(400, { 'Content-Type': 'application/json' }).end('{"error":"block not held (yet)"}');
    case 'error500':
      return void res.writeHead(500).end();
    case 'gzip':
      return void res.writeHead(206, { ...headers(body.length), 'Content-Encoding': 'gzip' }).end(body);
    case 'redirect':
      return void res.writeHead(302, { Location: 'http://127.0.0.1:1/' }).end();
  }
}
