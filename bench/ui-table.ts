// `node dist/bench/ui-table.js [--rows 10000] [--screenshot PATH-PREFIX]`: the web page's table at 10,000 kascades in Debian's Chromium.
// A stand-in for the box's API on 127.0.0.1 serves the real page files (src/api/static-files.ts) and an event
// stream with a snapshot of N records, then a burst of kascade.changed (each record once, over 5 s, ~N/5 a
// second); the page is measured from outside (load → first row) and inside (frame times while scrolling to
// random places and during the burst, rows in the DOM, long tasks). The stand-in is for measuring the page alone:
// the real API is tested in test/browser/box-ui.test.ts.

import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { createStaticFiles } from '../src/api/static-files.js';

// The page-side callbacks run in Chromium; the project's lib has no DOM, so the globals they use are declared here.
declare const document: { querySelector(s: string): { scrollTop: number; scrollHeight: number } | null; querySelectorAll(s: string): { length: number } };
declare function requestAnimationFrame(cb: (t: number) => void): number;

const { values } = parseArgs({ options: { rows: { type: 'string', default: '10000' }, screenshot: { type: 'string' } } });
const ROWS = Number(values.rows);
if (!Number.isSafeInteger(ROWS) || ROWS < 1 || ROWS > 1_000_000) throw new Error(`--rows must be 1..1000000, got ${values.rows}`);

const STATES = ['downloading', 'seeding', 'seeding', 'seeding', 'queued', 'paused', 'stalled'];
const record = (i: number, progress: number) => {
  const id = i.toString(16).padStart(16, '0');
  const size = 1_048_576 * (1 + (i % 900));
  return {
    id, file: `file-${i}.kascade`, state: STATES[i % STATES.length], name: `file-${String(i).padStart(6, '0')}.iso`,
    filehash: id.repeat(4), swarmId: id, size, blockSize: 1_048_576, blocks: Math.ceil(size / 1_048_576),
    receivedBytes: Math.round(size * progress), verifiedBytes: Math.round(size * progress), durableBytes: Math.round(size * progress),
    progress, downRate: progress < 1 ? 1_000_000 : 0, upRate: 50_000, eta: progress < 1 ? 60 : null,
    servedBytes: 0, fetchedBytes: 0, badBlocks: 0, bans: 0, peers: 3,
    tracker: { url: 'http://127.0.0.1:9/announce', lastAnnounce: null, nextAnnounce: null, lastError: null },
    lastScrub: null, data: `/data/file-${i}.iso`,
  };
};
const settings = { maxUpload: 0, maxPeers: 30, maxDownloads: 4 };
let eventId = 1;
const send = (res: ServerResponse, type: string, data: unknown) => res.write(`id: ${eventId++}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`);

const files = createStaticFiles();
let stream: ServerResponse | undefined;
const server = createServer((req, res) => {
  const url = req.url ?? '';
  if (url.startsWith('/ui/') && files.handle(req, res, url.slice(4))) return;
  if (url === '/api/v1/settings') return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ v: 1, ...settings }));
  if (url === '/api/v1/events') {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
    for (let i = 0; i < 60; i++) send(res, 'box.stats', { v: 1, downRate: 4e6 + 3e6 * Math.sin(i / 6), upRate: 1e6 + 5e5 * Math.cos(i / 9), kascades: ROWS, connections: 12, settings });
    send(res, 'snapshot', { v: 1, settings, stats: { v: 1, downRate: 0, upRate: 0 }, kascades: Array.from({ length: ROWS }, (_, i) => record(i, (i % 10) / 10)) });
    stream = res;
    return;
  }
  res.writeHead(404).end();
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const t0 = Date.now();
  await page.goto(`${base}/ui/#token=bench`);
  const firstRowAt = await page.waitForFunction(() => document.querySelector('[data-testid="row"]') !== null && performance.now(), null, { polling: 'raf', timeout: 60_000 });
  const loadToFirstRowMs = Date.now() - t0;
  const inPageFirstRowMs = (await firstRowAt.jsonValue()) as number;
  const count = await page.textContent('[data-testid="count"]');

  // Where the main thread's time goes (Chromium's own counters, in seconds), around the scrolling.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const metrics = async () => Object.fromEntries(((await cdp.send('Performance.getMetrics')).metrics).map((m) => [m.name, m.value]));
  const before = await metrics();
  // Scroll to 200 random places, two frames each; time each jump's frame.
  const scroll = await page.evaluate(async () => {
    const longTasks: number[] = [];
    new PerformanceObserver((l) => l.getEntries().forEach((e) => longTasks.push(e.duration))).observe({ type: 'longtask' as 'mark', buffered: false });
    const scroller = document.querySelector('[data-testid="table"]')!;
    const frame = () => new Promise<number>((r) => requestAnimationFrame(r));
    const run = async (f: (i: number) => void) => {
      const a = performance.now();
      for (let i = 0; i < 60; i++) {
        f(i);
        await frame();
      }
      return (performance.now() - a) / 60;
    };
    const idleFrameMs = await run(() => {});
    const smallScrollFrameMs = await run((i) => (scroller.scrollTop = 1000 + i * 7));
    const times: number[] = [];
    let seed = 1;
    for (let i = 0; i < 200; i++) {
      seed = (seed * 16807) % 2147483647;
      const a = performance.now();
      scroller.scrollTop = (seed / 2147483647) * scroller.scrollHeight;
      await frame();
      await frame();
      times.push((performance.now() - a) / 2);
    }
    times.sort((x, y) => x - y);
    const rowsInDom = document.querySelectorAll('[data-testid="row"]').length;
    return { idleFrameMs, smallScrollFrameMs, meanFrameMs: times.reduce((s, t) => s + t, 0) / times.length, p95FrameMs: times[Math.floor(times.length * 0.95)]!, maxFrameMs: times.at(-1)!, rowsInDom, longTasks: longTasks.length, scrollHeight: scroller.scrollHeight };
  });

  const after = await metrics();
  const spent = Object.fromEntries(['TaskDuration', 'ScriptDuration', 'LayoutDuration', 'RecalcStyleDuration'].map((k) => [k, Math.round(((after[k] ?? 0) - (before[k] ?? 0)) * 1000)]));
  // A burst: every record changes once over 5 s while the page counts its frames.
  const burstFrames = page.evaluate(async () => {
    const gaps: number[] = [];
    let last = performance.now();
    const end = last + 5500;
    while (performance.now() < end) {
      await new Promise((r) => requestAnimationFrame(r));
      const now = performance.now();
      gaps.push(now - last);
      last = now;
    }
    gaps.sort((x, y) => x - y);
    return { frames: gaps.length, p95GapMs: gaps[Math.floor(gaps.length * 0.95)]!, maxGapMs: gaps.at(-1)! };
  });
  const perTick = Math.ceil(ROWS / 50);
  for (let tick = 0; tick < 50; tick++) {
    for (let i = tick * perTick; i < Math.min(ROWS, (tick + 1) * perTick); i++) send(stream!, 'kascade.changed', { v: 1, kascade: record(i, 0.95) });
    await new Promise((r) => setTimeout(r, 100));
  }
  const burst = await burstFrames;
  if (values.screenshot) {
    await page.screenshot({ path: `${values.screenshot}-desktop.png` });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: `${values.screenshot}-phone.png` });
  }
  const heapMB = (await page.evaluate(() => (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? 0)) / 1e6;
  console.log(JSON.stringify({ rows: ROWS, count, loadToFirstRowMs, inPageFirstRowMs: Math.round(inPageFirstRowMs), scroll, scrollMainThreadMs: spent, burst, heapMB: Math.round(heapMB) }, null, 2));
} finally {
  await browser.close();
  stream?.end();
  server.closeAllConnections();
  server.close();
}
