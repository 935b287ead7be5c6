// A quick measure of `kfetch tracker --workers N --udp-port 0` on Redis (UDP beside --workers): for each N asked
// (default 1 and 2), a real tracker child on its own redis-server (started here on a free loopback port, a temp dir,
// no persistence), loaded over UDP by lanes of one socket each, one announce at a time, each lane's connection id
// got once (so connects and announces land on whichever worker reads first: cross-worker ids all the time).
// Reports announces/s, CPU µs per announce of the tracker processes (primary + workers, /proc utime+stime) and of
// redis-server, how the announces spread over the workers (/metrics, `worker` label), and the replies that were not
// announce answers (a "connect again" would mean the workers disagree on the secret).
// `node dist/bench/udp-tracker-workers.js [--workers 1,2] [--lanes N] [--seconds S] [--swarms N]`. Loopback only.

import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { decodeReply, encodeAnnounceRequest, encodeConnectRequest } from '../src/tracker/udp-wire.js';
import { udpExchange } from './udp-exchange.js';

const BIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const REDIS = process.env.KFETCH_REDIS_SERVER ?? '/usr/bin/redis-server';
const TICK_US = 1e6 / 100; // USER_HZ on Linux

/** A process's user + system CPU so far, µs (0 once it is gone). */
function cpuUs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_US;
  } catch {
    return 0;
  }
}

/** `pid` and its children (the cluster workers), from /proc. */
function tree(pid: number): number[] {
  let kids: number[] = [];
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // gone
  }
  return [pid, ...kids];
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Resolves with the `listening on` URLs once `count` are printed. */
function urls(child: ChildProcess, count: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = [...out.matchAll(/^listening on (\S+)$/gm)].map((x) => x[1]!);
      if (m.length === count) resolve(m);
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}`)));
  });
}

interface Load {
  announces: number;
  notAnnounce: number;
  lost: number;
}

const swarmOf = (i: number, swarms: number): string => (i % swarms).toString(16).padStart(64, '0');

/** One lane: its own socket and connection id, one announce at a time (a lost datagram is re-sent after 1 s). */
async function udpLane(port: number, lane: number, until: number, swarms: number, load: Load): Promise<void> {
  const s: UdpSocket = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const send = udpExchange(s, port);
  const exchange = (d: Buffer): Promise<Buffer> => send(d, () => load.lost++);
  const c = decodeReply(await exchange(encodeConnectRequest(lane)));
  if (!c.ok || c.value.action !== 'connect') throw new Error('udp connect failed');
  const connectionId = c.value.connectionId;
  for (let i = 0; performance.now() < until; i++) {
    const d = encodeAnnounceRequest({
      connectionId,
      transactionId: i,
      swarmId: swarmOf(i * 7 + lane, swarms),
      port: 1024 + lane * 500 + (i % 500),
      progress: ((i % 997) + 1) * 1000,
      event: 'none',
      numWant: 50,
    });
    const r = decodeReply(await exchange(d));
    if (!r.ok || r.value.action !== 'announce') load.notAnnounce++;
    load.announces++;
  }
  s.close();
}

interface Figures {
  workers: number;
  announcesPerSecond: number;
  trackerCpuUsPerAnnounce: number;
  redisCpuUsPerAnnounce: number;
  /** Announces answered per worker (from /metrics), over warm-up and run. */
  perWorker: Record<string, number>;
  notAnnounce: number;
  lost: number;
}

async function one(workers: number, o: { lanes: number; seconds: number; swarms: number }): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), 'kfetch-bench-redis-'));
  const redisPort = await freePort();
  const redis = spawn(REDIS, ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  let tracker: ChildProcess | undefined;
  try {
    await new Promise((r) => setTimeout(r, 300));
    tracker = spawn(
      process.execPath,
      [BIN, 'tracker', '--port', '0', '--udp-port', '0', '--min-interval', '0.001', '--store', `redis://127.0.0.1:${redisPort}`, '--workers', String(workers)],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const [http, udp] = await urls(tracker, 2);
    const udpPort = Number(udp!.split(':').pop());
    const warm: Load = { announces: 0, notAnnounce: 0, lost: 0 };
    await Promise.all(Array.from({ length: o.lanes }, (_, i) => udpLane(udpPort, i, performance.now() + 1000, o.swarms, warm)));
    const pids = tree(tracker.pid!);
    const cpu = (): { t: number; r: number } => ({ t: pids.reduce((n, p) => n + cpuUs(p), 0), r: cpuUs(redis.pid!) });
    const load: Load = { announces: 0, notAnnounce: 0, lost: 0 };
    const c0 = cpu();
    const t0 = performance.now();
    await Promise.all(Array.from({ length: o.lanes }, (_, i) => udpLane(udpPort, i, t0 + o.seconds * 1000, o.swarms, load)));
    const secs = (performance.now() - t0) / 1000;
    const c1 = cpu();
    const metrics = await (await fetch(`${http}/metrics`)).text();
    const perWorker: Record<string, number> = {};
    for (const m of metrics.matchAll(/^kfetch_tracker_udp_answers_total\{([^}]*)\} (\d+)$/gm)) {
      if (!m[1]!.includes('outcome="announced"')) continue;
      perWorker[/worker="(\d+)"/.exec(m[1]!)?.[1] ?? '1'] = Number(m[2]);
    }
    return {
      workers,
      announcesPerSecond: Math.round(load.announces / secs),
      trackerCpuUsPerAnnounce: Math.round(((c1.t - c0.t) / load.announces) * 10) / 10,
      redisCpuUsPerAnnounce: Math.round(((c1.r - c0.r) / load.announces) * 10) / 10,
      perWorker,
      notAnnounce: load.notAnnounce + warm.notAnnounce,
      lost: load.lost + warm.lost,
    };
  } finally {
    if (tracker !== undefined && tracker.exitCode === null) {
      const gone = new Promise((r) => tracker!.once('exit', r));
      tracker.kill('SIGTERM');
      await gone;
    }
    redis.kill('SIGTERM');
    await new Promise((r) => redis.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { workers: { type: 'string', default: '1,2' }, lanes: { type: 'string', default: '32' }, seconds: { type: 'string', default: '5' }, swarms: { type: 'string', default: '100' } },
  });
  const o = { lanes: Number(values.lanes), seconds: Number(values.seconds), swarms: Number(values.swarms) };
  const runs: Figures[] = [];
  for (const w of values.workers.split(',').map(Number)) runs.push(await one(w, o));
  const result = {
    date: new Date().toISOString(),
    machine: `${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}, loopback`,
    ...o,
    runs,
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

await main();
