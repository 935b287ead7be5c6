// `ui-table`: the web page's table (issue 12) at 10,000 kascades (quick: 2,000) in Debian's Chromium
// (/usr/bin/chromium through playwright-core, headless; skipped, with a row saying so, when it is not there). A
// stand-in for the box's API on 127.0.0.1 serves the real page files (src/api/static-files.ts) and an event stream
// with a snapshot of N records, then a burst of kascade.changed (each record once, over 5 s; quick: 2 s); the page is
// measured from outside (load → first row) and inside (frame times while idle, scrolling a little each frame,
// jumping to random places, and during the burst; rows in the DOM; long tasks; the JS heap). The stand-in is for
// measuring the page alone: the real API is tested in test/browser/box-ui.test.ts. Targets: small scroll ≤ 20 ms a
// frame (≈ 50 fps) and rows in the DOM ≤ 100, judged at 10,000 rows only (a quick run's are n/a).

import { existsSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createStaticFiles } from '../../src/api/static-files.js';
import { round, type Row, type Target } from '../report.js';
import { MiB, type ScenarioContext, type ScenarioResult } from './common.js';

// The page-side callbacks run in Chromium; the project's lib has no DOM, so the globals they use are declared here.
declare const document: { querySelector(s: string): { scrollTop: number; scrollHeight: number } | null; querySelectorAll(s: string): { length: number } };
declare function requestAnimationFrame(cb: (t: number) => void): number;

const CHROMIUM = '/usr/bin/chromium';
const JUDGED_ROWS = 10_000;
const FRAME_TARGET_MS = 20;
const DOM_ROWS_TARGET = 100;

const STATES = ['downloading', 'seeding', 'seeding', 'seeding', 'queued', 'paused', 'stalled'];
const record = (i: number, progress: number): Record<string, unknown> => {
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

/** The stand-in API: the page files, settings, and one event stream (a snapshot of `rows` records). */
interface StandIn {
  server: Server;
  base: string;
  snapshotBytes: number;
  /** The page's stream, once it attached. */
  stream(): ServerResponse | undefined;
  send(res: ServerResponse, type: string, data: unknown): void;
}

async function startStandIn(rows: number): Promise<StandIn> {
  let eventId = 1;
  let snapshotBytes = 0;
  let stream: ServerResponse | undefined;
  const send = (res: ServerResponse, type: string, data: unknown): number => {
    const msg = `id: ${eventId++}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
    res.write(msg);
    return msg.length;
  };
  const files = createStaticFiles();
  const server = createServer((req, res) => {
    const url = req.url ?? '';
    if (url.startsWith('/ui/') && files.handle(req, res, url.slice(4))) return;
    if (url === '/api/v1/settings') return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ v: 1, ...settings }));
    if (url === '/api/v1/events') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
      for (let i = 0; i < 60; i++) send(res, 'box.stats', { v: 1, downRate: 4e6 + 3e6 * Math.sin(i / 6), upRate: 1e6 + 5e5 * Math.cos(i / 9), kascades: rows, connections: 12, settings });
      snapshotBytes = send(res, 'snapshot', { v: 1, settings, stats: { v: 1, downRate: 0, upRate: 0 }, kascades: Array.from({ length: rows }, (_, i) => record(i, (i % 10) / 10)) });
      stream = res;
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    server,
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get snapshotBytes() {
      return snapshotBytes;
    },
    stream: () => stream,
    send: (res, type, data) => void send(res, type, data),
  };
}

export async function uiTable(ctx: ScenarioContext): Promise<ScenarioResult> {
  const rowsN = ctx.opts.quick ? 2_000 : JUDGED_ROWS;
  const jumps = ctx.opts.quick ? 50 : 200;
  const burstMs = ctx.opts.quick ? 2_000 : 5_000;
  const tool = `page table, ${rowsN.toLocaleString('en')} rows, Chromium`;
  const skippedTargets = (why: string): Target[] => [
    { scenario: 'ui-table', text: `small scroll ≤ ${FRAME_TARGET_MS} ms a frame (≈ 50 fps) at 10,000 rows`, value: why, met: null },
    { scenario: 'ui-table', text: `rows in the DOM ≤ ${DOM_ROWS_TARGET} at 10,000 rows`, value: why, met: null },
  ];
  if (!existsSync(CHROMIUM)) {
    const why = `${CHROMIUM} not installed (apt-get install chromium)`;
    return { rows: [{ scenario: 'ui-table', tool, sizeMiB: 0, skipped: why }], targets: skippedTargets('skipped') };
  }
  // Loaded here, not at the top: a run of other scenarios needs neither playwright-core nor Chromium.
  const { chromium } = await import('playwright-core');
  const standIn = await startStandIn(rowsN);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const version = browser.version();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const t0 = performance.now();
    await page.goto(`${standIn.base}/ui/#token=bench`);
    const firstRowAt = await page.waitForFunction(() => document.querySelector('[data-testid="row"]') !== null && performance.now(), null, { polling: 'raf', timeout: 60_000 });
    const loadToFirstRowMs = performance.now() - t0;
    const inPageFirstRowMs = (await firstRowAt.jsonValue()) as number;
    const count = (await page.textContent('[data-testid="count"]')) ?? '';
    if (!count.replace(/[,\s]/g, '').includes(String(rowsN))) throw new Error(`ui-table: the page counts "${count}", expected ${rowsN} kascades`);

    // Where the main thread's time goes (Chromium's own counters, in seconds), around the scrolling.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
    const metrics = async (): Promise<Record<string, number>> => Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
    const before = await metrics();
    // 60 idle frames, 60 frames scrolling 7 px each, then `jumps` random places, two frames each, each jump timed.
    const scroll = await page.evaluate(async (jumpCount: number) => {
      const longTasks: number[] = [];
      new PerformanceObserver((l) => l.getEntries().forEach((e) => longTasks.push(e.duration))).observe({ type: 'longtask' as 'mark', buffered: false });
      const scroller = document.querySelector('[data-testid="table"]')!;
      const frame = (): Promise<number> => new Promise<number>((r) => requestAnimationFrame(r));
      const run = async (f: (i: number) => void): Promise<number> => {
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
      for (let i = 0; i < jumpCount; i++) {
        seed = (seed * 16807) % 2147483647;
        const a = performance.now();
        scroller.scrollTop = (seed / 2147483647) * scroller.scrollHeight;
        await frame();
        await frame();
        times.push((performance.now() - a) / 2);
      }
      times.sort((x, y) => x - y);
      const rowsInDom = document.querySelectorAll('[data-testid="row"]').length;
      return {
        idleFrameMs,
        smallScrollFrameMs,
        meanFrameMs: times.reduce((s, t) => s + t, 0) / times.length,
        p95FrameMs: times[Math.floor(times.length * 0.95)]!,
        maxFrameMs: times.at(-1)!,
        rowsInDom,
        longTasks: longTasks.length,
      };
    }, jumps);
    const after = await metrics();
    const spentMs = (k: string): number => Math.round(((after[k] ?? 0) - (before[k] ?? 0)) * 1000);

    // A burst: every record changes once over burstMs while the page counts its frames.
    const burstFrames = page.evaluate(async (ms: number) => {
      const gaps: number[] = [];
      let last = performance.now();
      const end = last + ms + 500;
      while (performance.now() < end) {
        await new Promise((r) => requestAnimationFrame(r));
        const now = performance.now();
        gaps.push(now - last);
        last = now;
      }
      gaps.sort((x, y) => x - y);
      return { frames: gaps.length, p95GapMs: gaps[Math.floor(gaps.length * 0.95)]!, maxGapMs: gaps.at(-1)! };
    }, burstMs);
    const stream = standIn.stream();
    if (stream === undefined) throw new Error('ui-table: the page never opened the event stream');
    const ticks = burstMs / 100;
    const perTick = Math.ceil(rowsN / ticks);
    for (let tick = 0; tick < ticks; tick++) {
      if (ctx.signal.aborted) throw new Error('ui-table: aborted');
      for (let i = tick * perTick; i < Math.min(rowsN, (tick + 1) * perTick); i++) standIn.send(stream, 'kascade.changed', { v: 1, kascade: record(i, 0.95) });
      await new Promise((r) => setTimeout(r, 100));
    }
    const burst = await burstFrames;
    const heapBytes = await page.evaluate(() => (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? NaN);
    ctx.log(
      `ui-table: ${rowsN} rows in Chromium ${version}: first row ${Math.round(loadToFirstRowMs)} ms, ${JSON.stringify(scroll)}, ` +
        `main thread while scrolling (ms): task ${spentMs('TaskDuration')}, script ${spentMs('ScriptDuration')}, layout ${spentMs('LayoutDuration')}, style ${spentMs('RecalcStyleDuration')}; burst ${JSON.stringify(burst)}`,
    );
    const r1 = (x: number): number => round(x, 1);
    const row: Row = {
      scenario: 'ui-table',
      tool: `${tool} ${version}`,
      sizeMiB: round(standIn.snapshotBytes / MiB, 1),
      extra: {
        'first row ms': Math.round(loadToFirstRowMs),
        'in-page first row ms': Math.round(inPageFirstRowMs),
        'rows in DOM': scroll.rowsInDom,
        'idle frame ms': r1(scroll.idleFrameMs),
        'small-scroll frame ms': r1(scroll.smallScrollFrameMs),
        [`${jumps} jumps mean ms`]: r1(scroll.meanFrameMs),
        'jump p95 ms': r1(scroll.p95FrameMs),
        'jump max ms': r1(scroll.maxFrameMs),
        'long tasks': scroll.longTasks,
        'burst p95 gap ms': r1(burst.p95GapMs),
        'burst max gap ms': r1(burst.maxGapMs),
        'heap MiB': r1(heapBytes / MiB),
      },
    };
    const judged = rowsN === JUDGED_ROWS;
    const at = judged ? '' : ` at ${rowsN.toLocaleString('en')} rows (judged at 10,000)`;
    const targets: Target[] = [
      {
        scenario: 'ui-table',
        text: `small scroll ≤ ${FRAME_TARGET_MS} ms a frame (≈ 50 fps) at 10,000 rows`,
        value: `${scroll.smallScrollFrameMs.toFixed(1)} ms${at}`,
        met: judged ? scroll.smallScrollFrameMs <= FRAME_TARGET_MS : null,
      },
      {
        scenario: 'ui-table',
        text: `rows in the DOM ≤ ${DOM_ROWS_TARGET} at 10,000 rows`,
        value: `${scroll.rowsInDom}${at}`,
        met: judged ? scroll.rowsInDom <= DOM_ROWS_TARGET : null,
      },
    ];
    return { rows: [row], targets };
  } finally {
    await browser.close();
    standIn.stream()?.end();
    standIn.server.closeAllConnections();
    await new Promise<void>((r) => standIn.server.close(() => r()));
  }
}
