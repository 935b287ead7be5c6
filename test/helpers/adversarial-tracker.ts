// A misbehaving tracker for tests: a real node:http server on 127.0.0.1 that answers announces according to
// a mode (fixed body, HTML, empty, redirect, endless body, no answer, a status with Retry-After, many or bad
// peers, odd intervals, a delay before any of those) and records every request it got and how many were open at once.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type TrackerMode =
  | { kind: 'body'; body: string | Buffer; status?: number; headers?: Record<string, string> }
  | { kind: 'html' }
  | { kind: 'empty' }
  | { kind: 'redirect'; location?: string }
  /** Chunked 200 that never ends (stops after `maxBytes`, default 64 MiB, as a guard for the test itself). */
  | { kind: 'endless'; maxBytes?: number }
  /** Accepts the request and never answers. */
  | { kind: 'hang' }
  /** Sends headers, then one byte every `everyMs`. */
  | { kind: 'slow'; everyMs?: number }
  | { kind: 'status'; status: number; retryAfter?: string; body?: string }
  /** A valid array (or `{peers, interval}` if `interval` is given) of `count` distinct peers. */
  | { kind: 'peers'; count: number; interval?: unknown; ip?: (i: number) => string }
  /** A list of raw entries, served as the array (or `{peers, interval}`). */
  | { kind: 'entries'; entries: unknown[]; interval?: unknown }
  /** Answers as `then` after `ms` (requests overlap, so concurrency can be counted). */
  | { kind: 'delay'; ms: number; then: TrackerMode };

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  fields: Record<string, string>;
  /** performance.now() when the request had been read. */
  at: number;
}

export interface AdversarialTracker {
  /** Announce URL `http://127.0.0.1:PORT/peers/<64 hex>.json`. */
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** Requests received and not yet answered or closed, now and at most so far. */
  readonly inFlight: number;
  readonly maxInFlight: number;
  setMode(mode: TrackerMode | ((n: number) => TrackerMode)): void;
  close(): Promise<void>;
}

export const SWARM = 'ab'.repeat(32);

/** Start one; `dieAfter` closes the server (and every connection) after that many requests. */
export async function startAdversarialTracker(
  mode: TrackerMode | ((n: number) => TrackerMode),
  opts: { dieAfter?: number } = {},
): Promise<AdversarialTracker> {
  let current = mode;
  const requests: RecordedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let inFlight = 0;
  let maxInFlight = 0;
  const server = createServer((req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.once('close', () => inFlight--);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body,
        fields: Object.fromEntries(new URLSearchParams(body)),
        at: performance.now(),
      });
      const m = typeof current === 'function' ? current(requests.length) : current;
      answer(m, res);
      if (opts.dieAfter !== undefined && requests.length >= opts.dieAfter) {
        res.on('finish', () => {
          server.close();
          server.closeAllConnections();
        });
      }
    });
  });

  function answer(m: TrackerMode, res: ServerResponse): void {
    switch (m.kind) {
      case 'delay': {
        const t = setTimeout(() => {
          timers.delete(t);
          if (!res.destroyed) answer(m.then, res);
        }, m.ms);
        timers.add(t);
        return;
      }
      case 'body':
        res.writeHead(m.status ?? 200, { 'content-type': 'application/json', ...m.headers });
        res.end(m.body);
        return;
      case 'html':
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html><body><h1>It works!</h1></body></html>');
        return;
      case 'empty':
        res.writeHead(200, { 'content-length': '0' });
        res.end();
        return;
      case 'redirect':
        res.writeHead(302, { location: m.location ?? '/elsewhere' });
        res.end();
        return;
      case 'endless': {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        let sent = 0;
        const max = m.maxBytes ?? 64 * 1024 * 1024;
        const pump = (): void => {
          while (!res.destroyed && sent < max) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          if (!res.destroyed) res.end();
        };
        res.write('[');
        pump();
        return;
      }
      case 'hang':
        return;
      case 'slow': {
        res.writeHead(200, { 'content-type': 'application/json' });
        const t = setInterval(() => {
          if (res.destroyed) return void clearInterval(t);
          res.write(' ');
        }, m.everyMs ?? 1000);
        timers.add(t);
        return;
      }
      case 'status':
        res.writeHead(m.status, {
          'content-type': 'application/json',
          ...(m.retryAfter === undefined ? {} : { 'retry-after': m.retryAfter }),
        });
        res.end(m.body ?? JSON.stringify({ error: `status ${m.status}` }));
        return;
      case 'peers': {
        const ip = m.ip ?? ((i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
        const peers = Array.from({ length: m.count }, (_, i) => ({ ip: ip(i), port: 1000 + (i % 60000), progress: 1, feeder: false }));
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(m.interval === undefined ? peers : { peers, interval: m.interval }));
        return;
      }
      case 'entries':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(m.interval === undefined ? m.entries : { peers: m.entries, interval: m.interval }));
        return;
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/peers/${SWARM}.json`,
    port,
    requests,
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    setMode(m) {
      current = m;
    },
    close() {
      for (const t of timers) clearInterval(t); // clears timeouts too
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
