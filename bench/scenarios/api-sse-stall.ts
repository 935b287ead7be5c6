// The measuring child of the `api-sse` scenario, run as its own process with --expose-gc (so the bench runner's own
// heap does not pollute the figures): `node --expose-gc api-sse-stall.js '<json StallArgs>'`. One EventHub on a real
// HTTP server on 127.0.0.1, N raw sockets that send the request and never read a byte, and one normal reader; events
// of about eventBytes each are published as fast as the loop allows (in batches, yielding between them; or at
// `rate` a second) for `seconds`. Prints one JSON line (StallResult): the process RSS and heap at the start, at the
// peak (50 ms samples) and at the end (after two full collections), the hub's stats and what the normal reader got.
// The box's memory must not grow with the stalled sockets: each is dropped once it holds clientMaxBytes unsent.

import { createServer, request } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { EventHub, type EventHubStats } from '../../src/api/event-hub.js';

const MiB = 1024 * 1024;

export interface StallArgs {
  stalled: number;
  seconds: number;
  /** About how large each published event is. */
  eventBytes: number;
  /** Events published per loop turn. */
  batch: number;
  /** The hub's per-stream bound of unsent bytes. */
  clientMaxBytes: number;
  /** Events a second; 0: as fast as the loop allows. */
  rate: number;
}

export const STALL_DEFAULTS: Omit<StallArgs, 'stalled' | 'seconds'> = { eventBytes: 1024, batch: 64, clientMaxBytes: MiB, rate: 0 };

export interface Mem {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

export interface StallResult {
  args: StallArgs;
  /** The figures are polluted when gc() was missing (not run with --expose-gc). */
  gc: boolean;
  start: Mem;
  end: Mem;
  peakRss: number;
  /** RSS once a second, MiB. */
  rssPerSecond: number[];
  published: number;
  elapsedSeconds: number;
  hub: EventHubStats;
  reader: { messages: number; bytes: number; outOfOrder: number; caughtUp: boolean; ended: boolean };
}

interface Reader {
  bytes: number;
  messages: number;
  lastId: number;
  outOfOrder: number;
  ended: boolean;
  close(): void;
}

/** A normal reader: reads everything, counts bytes and messages, checks that ids only grow. */
function openReader(port: number): Promise<Reader> {
  return new Promise((resolve, reject) => {
    const r: Reader = { bytes: 0, messages: 0, lastId: 0, outOfOrder: 0, ended: false, close: () => req.destroy() };
    let rest = '';
    const req = request({ host: '127.0.0.1', port, path: '/events', agent: false }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        r.bytes += Buffer.byteLength(chunk);
        rest += chunk;
        // Bounded: each turn consumes one complete message from `rest`.
        for (let end = rest.indexOf('\n\n'); end >= 0; end = rest.indexOf('\n\n')) {
          const m = /^id: (\d+)$/m.exec(rest.slice(0, end));
          rest = rest.slice(end + 2);
          if (m === null) continue;
          const id = Number(m[1]);
          if (id <= r.lastId) r.outOfOrder++;
          r.lastId = id;
          r.messages++;
        }
      });
      res.on('close', () => (r.ended = true));
      resolve(r);
    });
    req.on('error', (err) => (r.messages === 0 ? reject(err) : (r.ended = true)));
    req.end();
  });
}

/** A stalled client: sends the request, then never reads (the kernel buffers fill, then the server's). */
function openStalled(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    s.pause();
    s.once('error', reject);
    s.once('connect', () => {
      s.write('GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n');
      s.on('error', () => undefined); // reset by the hub when it drops us: expected
      resolve(s);
    });
  });
}

const gc = (globalThis as { gc?: () => void }).gc;

/** Memory after two full collections a turn apart (array buffers are freed by a sweeper after the first). */
async function mem(): Promise<Mem> {
  gc?.();
  await new Promise((r) => setTimeout(r, 100));
  gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

/** Run one measurement; resolves with its figures (everything it started is stopped). */
export async function runStall(a: StallArgs): Promise<StallResult> {
  let state = 0;
  const hub = new EventHub({ snapshot: () => ({ v: 1, kascades: [], n: state }), clientMaxBytes: a.clientMaxBytes });
  const server = createServer((req, res) => {
    hub.attach(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const stalled: Socket[] = [];
  let reader: Reader | undefined;
  try {
    reader = await openReader(port);
    for (let i = 0; i < a.stalled; i++) stalled.push(await openStalled(port));
    // Bounded wait for every stream to be attached.
    for (let t = 0; t < 500 && hub.stats().clients < a.stalled + 1; t++) await new Promise((r) => setTimeout(r, 10));
    const start = await mem();

    const pad = 'p'.repeat(Math.max(0, a.eventBytes - 120));
    let peakRss = start.rss;
    const rssPerSecond: number[] = [];
    let ticks = 0;
    const sampler = setInterval(() => {
      const rss = process.memoryUsage().rss;
      peakRss = Math.max(peakRss, rss);
      if (++ticks % 20 === 0) rssPerSecond.push(Math.round(rss / MiB));
    }, 50);
    let published = 0;
    const t0 = performance.now();
    const end = t0 + a.seconds * 1000;
    // Bounded by time: each turn publishes one batch (with a rate: what the rate allows so far), then yields.
    while (performance.now() < end) {
      const n = a.rate > 0 ? Math.min(a.batch, Math.floor(((performance.now() - t0) / 1000) * a.rate) - published) : a.batch;
      for (let k = 0; k < n; k++) {
        state++;
        hub.publish('kascade.changed', { v: 1, kascade: { id: (state % 1000).toString(16).padStart(16, '0'), receivedBytes: state, pad } });
        published++;
      }
      if (a.rate > 0) await new Promise((r) => setTimeout(r, 5));
      else await new Promise((r) => setImmediate(r));
    }
    const elapsedSeconds = (performance.now() - t0) / 1000;
    // Let the reader drain what is in flight (bounded).
    const lastId = hub.stats().nextId - 1;
    for (let t = 0; t < 500 && reader.lastId < lastId && !reader.ended; t++) await new Promise((r) => setTimeout(r, 10));
    clearInterval(sampler);
    const hubStats = hub.stats();
    const endMem = await mem();
    const rd = reader;
    return {
      args: a,
      gc: gc !== undefined,
      start,
      end: endMem,
      peakRss,
      rssPerSecond,
      published,
      elapsedSeconds,
      hub: hubStats,
      reader: { messages: rd.messages, bytes: rd.bytes, outOfOrder: rd.outOfOrder, caughtUp: rd.lastId === lastId, ended: rd.ended },
    };
  } finally {
    reader?.close();
    for (const s of stalled) s.destroy();
    hub.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** The arguments of the command line, each checked (a number in its range), defaults filled in. */
export function parseStallArgs(json: string): StallArgs {
  const raw = JSON.parse(json) as Record<string, unknown>;
  const a = { ...STALL_DEFAULTS, ...raw } as Record<string, unknown>;
  const num = (k: keyof StallArgs, min: number, max: number): number => {
    const v = a[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw new Error(`api-sse-stall: ${k} must be a number in ${min}..${max}, got ${String(v)}`);
    return v;
  };
  return {
    stalled: num('stalled', 0, 1000),
    seconds: num('seconds', 0.1, 3600),
    eventBytes: num('eventBytes', 120, 64 * 1024),
    batch: num('batch', 1, 100_000),
    clientMaxBytes: num('clientMaxBytes', 1024, 1024 * MiB),
    rate: num('rate', 0, 10_000_000),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  Promise.resolve()
    .then(() => runStall(parseStallArgs(process.argv[2] ?? '{}')))
    .then(
      (res) => process.stdout.write(`${JSON.stringify(res)}\n`),
      (err: unknown) => {
        process.stderr.write(`api-sse-stall: ${err instanceof Error ? err.stack : String(err)}\n`);
        process.exitCode = 1;
      },
    );
}
