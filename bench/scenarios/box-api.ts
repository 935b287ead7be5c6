// `box-api`: the box's control API at scale (issue 12: "10,000 entries answer in well under 100 ms"). A real box
// child with N kascades in its watch folder (quick: 1,000; full: 10,000; tiny files without data, so all but one wait
// queued behind --max-downloads 1: a list costs the same in any state), then timed calls from this process over one
// keep-alive connection: the first page (100), a page of 1,000 (whole records, and 3 fields), a state filter, one
// record, the stats, a walk of every page, and the event stream's snapshot (connect to its last byte); the box's
// RSS. Each row: p50 / p95 / max of --runs × 10 calls (walks and snapshots: max(3, runs)).

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stopChildren } from '../../src/cli/local-swarm.js';
import { round, type Row, type Target } from '../report.js';
import { startKfetch, type ScenarioContext, type ScenarioResult } from './common.js';

function kascade(i: number): string {
  const data = Buffer.from(`kascade ${i}\n`);
  const md5 = createHash('md5').update(data).digest('hex');
  const sha = createHash('sha256').update(data).digest('hex');
  return JSON.stringify({ filename: `file-${i}.bin`, filesize: data.length, filehash: sha, tracker: 'http://127.0.0.1:9/announce', blockhashes: { '1024': [md5] } });
}

interface Reply {
  ms: number;
  status: number;
  bytes: number;
  body: string;
}

function get(agent: Agent, port: number, path: string, token: string): Promise<Reply> {
  const t0 = performance.now();
  return new Promise((res, rej) => {
    const req = request({ host: '127.0.0.1', port, path, agent, headers: { Authorization: `Bearer ${token}` } }, (r) => {
      const parts: Buffer[] = [];
      r.on('data', (c: Buffer) => parts.push(c));
      r.on('end', () => {
        const body = Buffer.concat(parts);
        res({ ms: performance.now() - t0, status: r.statusCode ?? 0, bytes: body.length, body: body.toString('utf8') });
      });
    });
    req.setTimeout(60_000, () => req.destroy(new Error(`${path}: no answer in 60 s`)));
    req.on('error', rej);
    req.end();
  });
}

/** Connect to the event stream and time it to the end of its first message (the snapshot). */
function snapshot(port: number, token: string): Promise<{ ms: number; bytes: number }> {
  const t0 = performance.now();
  return new Promise((res, rej) => {
    let done = false;
    const req = request({ host: '127.0.0.1', port, path: '/api/v1/events', agent: false, headers: { Authorization: `Bearer ${token}` } }, (r) => {
      const parts: Buffer[] = [];
      r.on('data', (c: Buffer) => {
        parts.push(c);
        const text = Buffer.concat(parts).toString('utf8');
        const end = text.indexOf('\n\n');
        if (end >= 0 && !done) {
          done = true;
          res({ ms: performance.now() - t0, bytes: Buffer.byteLength(text.slice(0, end)) });
          req.destroy();
        }
      });
    });
    req.setTimeout(60_000, () => req.destroy(new Error('snapshot: none in 60 s')));
    req.on('error', (err) => (done ? undefined : rej(err)));
    req.end();
  });
}

function quantiles(xs: number[]): { p50: number; p95: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { p50: q(0.5), p95: q(0.95), max: s[s.length - 1]! };
}

export async function boxApi(ctx: ScenarioContext): Promise<ScenarioResult> {
  const n = ctx.opts.quick ? 1_000 : 10_000;
  const calls = ctx.opts.runs * 10;
  const dir = join(ctx.dir, 'box-api');
  const watch = join(dir, 'watch');
  const data = join(dir, 'data');
  const home = join(dir, 'home');
  for (const d of [watch, data, home]) mkdirSync(d, { recursive: true });
  for (let i = 0; i < n; i++) writeFileSync(join(watch, `k-${String(i).padStart(6, '0')}.kascade`), kascade(i));
  const box = await startKfetch(['seed', '--watch', watch, '--data', data, '--port', '0', '--max-downloads', '1', '--stall-timeout', '0'], home);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const rows: Row[] = [];
  const figures: Record<string, { p50: number; p95: number; max: number }> = {};
  try {
    const port = Number(new URL(box.url).port);
    const token = readFileSync(join(home, 'api-token'), 'utf8').trim();
    const t0 = performance.now();
    for (let i = 0; ; i++) {
      const r = await get(agent, port, '/api/v1/kascades?limit=1&fields=state', token);
      if (r.status === 200 && (JSON.parse(r.body) as { total: number }).total >= n) break;
      if (i > 1200 || ctx.signal.aborted) throw new Error(`box-api: the box took fewer than ${n} kascades in within 5 min`);
      await sleep(250);
    }
    ctx.log(`box-api: ${n} kascades taken in ${((performance.now() - t0) / 1000).toFixed(1)} s after listening`);
    await sleep(2000); // let the intake settle
    const first = JSON.parse((await get(agent, port, '/api/v1/kascades?limit=1', token)).body) as { items: { id: string }[] };
    const cases: [string, string][] = [
      ['first page (100 records)', '/api/v1/kascades'],
      ['page of 1,000 records', '/api/v1/kascades?limit=1000'],
      ['page of 1,000, 3 fields', '/api/v1/kascades?limit=1000&fields=state,progress,name'],
      ['state filter (100 records)', '/api/v1/kascades?state=queued'],
      ['one record', `/api/v1/kascades/${first.items[0]!.id}`],
      ['stats', '/api/v1/stats'],
    ];
    const addRow = (what: string, ms: number[], extra: Record<string, number | string> = {}): void => {
      const q = quantiles(ms);
      figures[what] = q;
      ctx.log(`box-api: ${what}: p50 ${q.p50.toFixed(1)} ms, p95 ${q.p95.toFixed(1)} ms, max ${q.max.toFixed(1)} ms`);
      rows.push({ scenario: 'box-api', tool: `${what} @${n} kascades`, sizeMiB: 0, seconds: round(q.p50 / 1000, 4), extra: { 'p50 ms': round(q.p50, 1), 'p95 ms': round(q.p95, 1), 'max ms': round(q.max, 1), ...extra } });
    };
    for (const [what, path] of cases) {
      const ms: number[] = [];
      let bytes = 0;
      for (let i = 0; i < calls; i++) {
        const r = await get(agent, port, path, token);
        if (r.status !== 200) throw new Error(`box-api: ${path}: ${r.status} ${r.body.slice(0, 200)}`);
        ms.push(r.ms);
        bytes = r.bytes;
      }
      addRow(what, ms, { 'reply KiB': round(bytes / 1024, 0) });
    }
    const walks: number[] = [];
    for (let i = 0; i < Math.max(3, ctx.opts.runs); i++) {
      const t = performance.now();
      let cursor: string | null = null;
      let got = 0;
      for (let p = 0; p < 1000; p++) {
        const r = await get(agent, port, `/api/v1/kascades?limit=1000${cursor === null ? '' : `&cursor=${cursor}`}`, token);
        const page = JSON.parse(r.body) as { items: unknown[]; next: string | null };
        got += page.items.length;
        cursor = page.next;
        if (cursor === null) break;
      }
      if (got !== n) throw new Error(`box-api: a walk saw ${got} of ${n}`);
      walks.push(performance.now() - t);
    }
    addRow('walk of every page of 1,000', walks);
    const snaps: number[] = [];
    let snapBytes = 0;
    for (let i = 0; i < Math.max(3, ctx.opts.runs); i++) {
      const s = await snapshot(port, token);
      snaps.push(s.ms);
      snapBytes = s.bytes;
    }
    const status = readFileSync(`/proc/${box.proc.pid}/status`, 'utf8');
    const rssMiB = Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
    addRow('event stream snapshot', snaps, { 'snapshot MiB': round(snapBytes / 1024 / 1024, 1), 'box RSS MiB': round(rssMiB, 0) });
  } finally {
    agent.destroy();
    await stopChildren([box]);
  }
  const targets: Target[] = ['first page (100 records)', 'page of 1,000 records'].map((what) => ({
    scenario: 'box-api',
    text: `GET /api/v1/kascades at ${n} kascades, ${what}: p95 well under 100 ms (≤ 50 ms)`,
    value: `p95 ${figures[what]!.p95.toFixed(1)} ms (p50 ${figures[what]!.p50.toFixed(1)} ms)`,
    met: figures[what]!.p95 <= 50,
  }));
  return { rows, targets };
}
