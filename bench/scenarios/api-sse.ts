// `api-sse`: the event stream's memory under stalled consumers (issue 12). api-sse-stall.js runs as its own process
// with --expose-gc (the runner's heap would pollute the figures): one EventHub on a real HTTP server on 127.0.0.1,
// 0 and then 8 raw sockets that send the request and never read, and one normal reader; ~1 KiB events published as
// fast as the loop allows for 10 s (quick: 2 s). Rows: RSS at the start, the end (after full collections) and the
// peak (50 ms samples), the heap, the hub's stats (streams dropped as too slow, the most unsent bytes a stream held)
// and the normal reader's MiB/s. Target: peak RSS with 8 stalled readers ≤ peak RSS with none + 16 MiB, and every
// stalled reader dropped (each is dropped once it holds 1 MiB unsent).

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { trackChild } from '../measure.js';
import { round, type Row, type Target } from '../report.js';
import { STALL_DEFAULTS, type StallArgs, type StallResult } from './api-sse-stall.js';
import { MiB, type ScenarioContext, type ScenarioResult } from './common.js';

const STALL = fileURLToPath(new URL('./api-sse-stall.js', import.meta.url));
const STALLED = [0, 8];
const SLACK_MiB = 16;

/** Run api-sse-stall.js as a child (node --expose-gc) and resolve with its result line. */
function runStallChild(args: StallArgs, timeoutMs: number, signal: AbortSignal): Promise<StallResult> {
  const proc = trackChild(spawn(process.execPath, ['--expose-gc', STALL, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out = (out + d).slice(-64 * 1024)));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4000)));
  const kill = (): void => void proc.kill('SIGKILL');
  const timer = setTimeout(kill, timeoutMs);
  signal.addEventListener('abort', kill, { once: true });
  return new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('close', (code, sig) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', kill);
      if (code !== 0) return reject(new Error(`api-sse-stall exited ${code ?? sig}: ${err.trim().slice(-600)}`));
      try {
        resolve(JSON.parse(out) as StallResult);
      } catch {
        reject(new Error(`api-sse-stall printed no result: ${out.slice(0, 200)} ${err.trim().slice(-400)}`));
      }
    });
  });
}

const mib = (b: number): number => round(b / MiB, 1);

export async function apiSse(ctx: ScenarioContext): Promise<ScenarioResult> {
  const seconds = ctx.opts.quick ? 2 : 10;
  const rows: Row[] = [];
  const results = new Map<number, StallResult>();
  for (const stalled of STALLED) {
    if (ctx.signal.aborted) throw new Error('api-sse: aborted');
    const r = await runStallChild({ ...STALL_DEFAULTS, stalled, seconds }, (seconds + 60) * 1000, ctx.signal);
    if (!r.gc) throw new Error('api-sse: the child ran without gc() (--expose-gc missing)');
    results.set(stalled, r);
    const readerMiBps = r.reader.bytes / MiB / r.elapsedSeconds;
    ctx.log(
      `api-sse: ${stalled} stalled: RSS ${mib(r.start.rss)} → ${mib(r.end.rss)} MiB (peak ${mib(r.peakRss)}; each second ${r.rssPerSecond.join(' ')}), ` +
        `${r.published} events in ${r.elapsedSeconds.toFixed(1)} s, hub ${JSON.stringify(r.hub)}, reader ${readerMiBps.toFixed(1)} MiB/s ` +
        `(${r.reader.outOfOrder} out of order, caught up ${r.reader.caughtUp})`,
    );
    rows.push({
      scenario: 'api-sse',
      tool: `event hub, ${stalled} stalled + 1 reader`,
      sizeMiB: mib(r.published * r.args.eventBytes),
      seconds: round(r.elapsedSeconds, 2),
      MiBps: round(readerMiBps, 1),
      peakRssMiB: mib(r.peakRss),
      extra: {
        'RSS start MiB': mib(r.start.rss),
        'RSS end MiB': mib(r.end.rss),
        'RSS peak MiB': mib(r.peakRss),
        'heap used end MiB': mib(r.end.heapUsed),
        'external end MiB': mib(r.end.external),
        'events/s': Math.round(r.published / r.elapsedSeconds),
        droppedSlow: r.hub.droppedSlow,
        'peakUnsent KiB': round(r.hub.peakUnsentBytes / 1024, 0),
        'reader caught up': r.reader.caughtUp && r.reader.outOfOrder === 0 ? 'yes' : `no (${r.reader.outOfOrder} out of order)`,
      },
    });
  }
  const none = results.get(0)!;
  const eight = results.get(8)!;
  const within = eight.peakRss <= none.peakRss + SLACK_MiB * MiB;
  const targets: Target[] = [
    {
      scenario: 'api-sse',
      text: `peak RSS with 8 stalled readers ≤ peak RSS with none + ${SLACK_MiB} MiB, and every stalled reader dropped`,
      value: `${mib(eight.peakRss)} vs ${mib(none.peakRss)} + ${SLACK_MiB} MiB; dropped ${eight.hub.droppedSlow} of 8`,
      met: within && eight.hub.droppedSlow === 8,
    },
  ];
  return { rows, targets };
}
