// The control API at scale (issue 12's "10,000 entries answer in well under 100 ms"): a real box child process with
// N kascades in its watch folder (tiny files, no data: all queued behind --max-downloads 1, which gives the same
// list cost as any other state), then timed API calls from this process over loopback with keep-alive: the first
// page (100), a page of 1,000, a state filter, a full walk of every page, one record, the event stream's snapshot
// (connect to its last byte), and the box's RSS. Prints p50 / p95 / max of each.
// Run: npm run build && node dist/bench/box-api.js [--kascades 10000] [--runs 30]

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const BIN = resolve(import.meta.dirname, '../src/cli/main.js');

function kascade(i: number): string {
  const data = Buffer.from(`kascade ${i}\n`);
  const md5 = createHash('md5').update(data).digest('hex');
  const sha = createHash('sha256').update(data).digest('hex');
  return JSON.stringify({ filename: `file-${i}.bin`, filesize: data.length, filehash: sha, tracker: 'http://127.0.0.1:9/announce', blockhashes: { '1024': [md5] } });
}

const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function get(port: number, path: string, token: string): Promise<{ ms: number; status: number; bytes: number; body: string }> {
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
    req.on('error', rej);
    req.end();
  });
}

/** Time from connecting to the event stream to the end of its first message (the snapshot). */
function snapshotMs(port: number, token: string): Promise<{ ms: number; bytes: number }> {
  const t0 = performance.now();
  return new Promise((res, rej) => {
    const req = request({ host: '127.0.0.1', port, path: '/api/v1/events', agent: false, headers: { Authorization: `Bearer ${token}` } }, (r) => {
      let bytes = 0;
      let text = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => {
        bytes += Buffer.byteLength(c);
        text += c;
        if (text.includes('\n\n')) {
          res({ ms: performance.now() - t0, bytes: Buffer.byteLength(text.slice(0, text.indexOf('\n\n'))) });
          req.destroy();
        }
      });
    });
    req.on('error', (err) => (err.message.includes('socket hang up') ? undefined : rej(err)));
    req.end();
  });
}

function stats(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return `p50 ${q(0.5).toFixed(1)} ms, p95 ${q(0.95).toFixed(1)} ms, max ${s[s.length - 1]!.toFixed(1)} ms`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { kascades: { type: 'string', default: '10000' }, runs: { type: 'string', default: '30' } } });
  const n = Number(values.kascades);
  const runs = Number(values.runs);
  const dir = mkdtempSync(join(tmpdir(), 'kfetch-box-api-'));
  const watch = join(dir, 'watch');
  const data = join(dir, 'data');
  const home = join(dir, 'home');
  for (const d of [watch, data, home]) mkdirSync(d);
  for (let i = 0; i < n; i++) writeFileSync(join(watch, `k-${String(i).padStart(6, '0')}.kascade`), kascade(i));
  console.log(`box-api: ${n} kascades; node ${process.version}; ${new Date().toISOString()}`);
  const child = spawn(process.execPath, [BIN, 'seed', '--watch', watch, '--data', data, '--port', '0', '--max-downloads', '1', '--stall-timeout', '0'], {
    env: { ...process.env, KFETCH_HOME: home },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  try {
    const url = await new Promise<string>((res, rej) => {
      let out = '';
      child.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m !== null) res(m[1]!);
      });
      child.once('exit', (code) => rej(new Error(`box exited ${code}`)));
    });
    const port = Number(new URL(url).port);
    const token = readFileSync(join(home, 'api-token'), 'utf8').trim();
    const t0 = performance.now();
    for (let i = 0; i < 600; i++) {
      const r = await get(port, '/api/v1/kascades?limit=1&fields=state', token);
      if (r.status === 200 && (JSON.parse(r.body) as { total: number }).total >= n) break;
      await new Promise((res) => setTimeout(res, 250));
    }
    console.log(`all ${n} taken in: ${((performance.now() - t0) / 1000).toFixed(1)} s after listening`);
    await new Promise((res) => setTimeout(res, 2000)); // let the intake settle
    const cases: [string, string][] = [
      ['first page (limit 100)', '/api/v1/kascades'],
      ['page of 1,000', '/api/v1/kascades?limit=1000'],
      ['page of 1,000, 3 fields', '/api/v1/kascades?limit=1000&fields=state,progress,name'],
      ['state filter (queued, 100)', '/api/v1/kascades?state=queued'],
      ['one record', ''],
      ['stats', '/api/v1/stats'],
    ];
    const first = JSON.parse((await get(port, '/api/v1/kascades?limit=1', token)).body) as { items: { id: string }[] };
    cases[4]![1] = `/api/v1/kascades/${first.items[0]!.id}`;
    for (const [what, path] of cases) {
      const ms: number[] = [];
      let bytes = 0;
      for (let i = 0; i < runs; i++) {
        const r = await get(port, path, token);
        if (r.status !== 200) throw new Error(`${path}: ${r.status} ${r.body.slice(0, 200)}`);
        ms.push(r.ms);
        bytes = r.bytes;
      }
      console.log(`${what.padEnd(28)} ${stats(ms)}  (${(bytes / 1024).toFixed(0)} KiB)`);
    }
    const walks: number[] = [];
    for (let i = 0; i < Math.max(3, Math.floor(runs / 5)); i++) {
      const t = performance.now();
      let cursor: string | null = null;
      let got = 0;
      for (let p = 0; p < 1000; p++) {
        const r = await get(port, `/api/v1/kascades?limit=1000${cursor === null ? '' : `&cursor=${cursor}`}`, token);
        const page = JSON.parse(r.body) as { items: unknown[]; next: string | null };
        got += page.items.length;
        cursor = page.next;
        if (cursor === null) break;
      }
      if (got !== n) throw new Error(`walk saw ${got} of ${n}`);
      walks.push(performance.now() - t);
    }
    console.log(`${'walk of every page (1,000)'.padEnd(28)} ${stats(walks)}`);
    const snaps: number[] = [];
    let snapBytes = 0;
    for (let i = 0; i < Math.max(3, Math.floor(runs / 5)); i++) {
      const s = await snapshotMs(port, token);
      snaps.push(s.ms);
      snapBytes = s.bytes;
    }
    console.log(`${'event stream snapshot'.padEnd(28)} ${stats(snaps)}  (${(snapBytes / 1024 / 1024).toFixed(1)} MiB)`);
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    console.log(`box: ${/VmRSS:\s+(\d+)/.exec(status)![1]} KiB RSS, ${/VmHWM:\s+(\d+)/.exec(status)![1]} KiB peak`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((res) => child.once('exit', res));
    agent.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
