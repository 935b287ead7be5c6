// The event stream's memory bound under stalled consumers (issue 12's closing note): one EventHub on a real HTTP
// server on 127.0.0.1, N raw sockets that send the request and never read a byte, and one normal reader; events of
// about --event-bytes each are published as fast as the loop allows (in batches, yielding between them) for
// --seconds. Prints the process RSS and heap at the start, at the peak and at the end, the hub's stats and what
// the normal reader got. The box's memory must not grow with the stalled sockets: each is dropped once it holds
// 1 MiB unsent.
// Run: npm run build && node --expose-gc dist/bench/api-sse-stall.js [--stalled 8] [--seconds 10] [--event-bytes 1024]
// [--batch 64] [--client-max-kib 1024] [--rate N events/s, default as fast as possible]

import { createServer, request } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { EventHub } from '../src/api/event-hub.js';

const MiB = 1024 * 1024;

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

/** Memory after two full collections a turn apart (array buffers are freed by a sweeper after the first). */
async function mem(): Promise<{ rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  await new Promise((r) => setTimeout(r, 100));
  gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

const fmt = (b: number): string => `${(b / MiB).toFixed(1)} MiB`;
const show = (m: Awaited<ReturnType<typeof mem>>): string =>
  `rss ${fmt(m.rss)}, heap ${fmt(m.heapUsed)} used of ${fmt(m.heapTotal)}, external ${fmt(m.external)} (array buffers ${fmt(m.arrayBuffers)})`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      stalled: { type: 'string', default: '8' },
      seconds: { type: 'string', default: '10' },
      'event-bytes': { type: 'string', default: '1024' },
      batch: { type: 'string', default: '64' },
      'client-max-kib': { type: 'string', default: '1024' },
      rate: { type: 'string', default: '0' },
    },
  });
  const stalledN = Number(values.stalled);
  const seconds = Number(values.seconds);
  const eventBytes = Number(values['event-bytes']);
  const batch = Number(values.batch);
  const clientMaxBytes = Number(values['client-max-kib']) * 1024;
  const rate = Number(values.rate); // events a second; 0: as fast as the loop allows

  let state = 0;
  const hub = new EventHub({ snapshot: () => ({ v: 1, kascades: [], n: state }), clientMaxBytes });
  const server = createServer((req, res) => {
    hub.attach(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  const reader = await openReader(port);
  const stalled: Socket[] = [];
  for (let i = 0; i < stalledN; i++) stalled.push(await openStalled(port));
  // Bounded wait for every stream to be attached.
  for (let t = 0; t < 500 && hub.stats().clients < stalledN + 1; t++) await new Promise((r) => setTimeout(r, 10));
  const start = await mem();
  const pace = rate > 0 ? `${rate} events/s` : 'as fast as possible';
  console.log(`api-sse-stall: ${stalledN} stalled + 1 reader, ${eventBytes} B events, ${pace} in batches ≤ ${batch}, ${seconds} s, clientMaxBytes ${clientMaxBytes}`);
  console.log(`  start: ${show(start)}`);

  const pad = 'p'.repeat(Math.max(0, eventBytes - 120));
  let peakRss = start.rss;
  const perSecond: number[] = [];
  let ticks = 0;
  const sampler = setInterval(() => {
    const rss = process.memoryUsage().rss;
    peakRss = Math.max(peakRss, rss);
    if (++ticks % 20 === 0) perSecond.push(Math.round(rss / MiB));
  }, 50);
  let published = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  // Bounded by time: each turn publishes one batch (with --rate: what the rate allows so far), then yields.
  while (performance.now() < end) {
    const n = rate > 0 ? Math.min(batch, Math.floor(((performance.now() - t0) / 1000) * rate) - published) : batch;
    for (let k = 0; k < n; k++) {
      state++;
      hub.publish('kascade.changed', { v: 1, kascade: { id: (state % 1000).toString(16).padStart(16, '0'), receivedBytes: state, pad } });
      published++;
    }
    if (rate > 0) await new Promise((r) => setTimeout(r, 5));
    else await new Promise((r) => setImmediate(r));
  }
  const elapsed = (performance.now() - t0) / 1000;
  // Let the reader drain what is in flight (bounded).
  const lastId = hub.stats().nextId - 1;
  for (let t = 0; t < 500 && reader.lastId < lastId && !reader.ended; t++) await new Promise((r) => setTimeout(r, 10));
  clearInterval(sampler);
  const stats = hub.stats();
  const endMem = await mem();
  console.log(`  end:   ${show(endMem)}`);
  console.log(`  peak rss (50 ms samples): ${fmt(peakRss)}; rss growth start→end ${fmt(endMem.rss - start.rss)}`);
  console.log(`  rss each second (MiB): ${perSecond.join(' ')}`);
  console.log(`  published ${published} events (${fmt(published * eventBytes)}) in ${elapsed.toFixed(1)} s: ${Math.round(published / elapsed)} events/s`);
  console.log(`  hub: ${JSON.stringify(stats)}`);
  console.log(
    `  reader: ${reader.messages} messages, ${fmt(reader.bytes)} (${(reader.bytes / MiB / elapsed).toFixed(1)} MiB/s), ` +
      `${reader.outOfOrder} out of order, caught up: ${reader.lastId === lastId}, ended: ${reader.ended}`,
  );
  console.log(`  stalled sockets dropped by the hub: ${stats.droppedSlow} of ${stalledN}`);

  reader.close();
  for (const s of stalled) s.destroy();
  hub.close();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

await main();
