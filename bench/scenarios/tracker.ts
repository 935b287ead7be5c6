// `tracker` (issue 13 point 5): announces per second and p50/p99 latency of `kfetch tracker` under a flood of
// keep-alive kfetch-like clients (tracker-load.ts, its own process) into 10,000 swarms (quick: 1,000), for the
// memory store on one process, the Redis store on one process, and two processes on one Redis (the clients split
// between their ports); Redis memory per 100,000 peers (INFO memory's used_memory before and after filling N peers
// through announces); and a restart check (SIGTERM the Redis-backed tracker, start a new one on the same Redis, and
// ask as a new caller for swarms whose every peer is known). Starts its own redis-server (/usr/bin/redis-server) on
// a free loopback port with a temp dir; without the binary the Redis rows are skipped with a note.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { request } from 'node:http';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { Child } from '../../src/cli/local-swarm.js';
import { VERSION } from '../../src/version.js';
import { cpuOf, processTree, trackChild } from '../measure.js';
import { round, type Row, type Target } from '../report.js';
import { freePort, startKfetch, type ScenarioContext, type ScenarioResult } from './common.js';
import type { LoadArgs, LoadResult } from './tracker-load.js';

const LOAD = fileURLToPath(new URL('./tracker-load.js', import.meta.url));
const REDIS_SERVER = '/usr/bin/redis-server';
const CLIENTS = 64;
/** Swarms whose peers the restart check asks for (each holds at most a reply's 50 peers, so all must be listed). */
const SAMPLE_SWARMS = 20;
/** The address of the restart check's new caller (no load client uses 127.0.250.x). */
const NEW_CALLER = '127.0.250.1';
const STOP_GRACE_MS = 5_000;

interface RunningRedis {
  proc: ChildProcess;
  port: number;
  dir: string;
}

/** Start a redis-server on a free loopback port, no persistence, its files in `dir`; resolves once it answers PING. */
async function startRedis(dir: string): Promise<RunningRedis> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  const proc = trackChild(spawn(REDIS_SERVER, args, { stdio: 'ignore' }));
  const r = redisClient(port);
  try {
    await r.call('PING');
  } finally {
    r.disconnect();
  }
  return { proc, port, dir };
}

/** An ioredis client; commands queue until the server answers (retried every 50 ms, for 5 s at most). */
function redisClient(port: number, db = 0): Redis {
  const r = new Redis({ host: '127.0.0.1', port, db, lazyConnect: false, retryStrategy: (n: number) => (n > 100 ? null : 50) });
  r.on('error', () => undefined);
  return r;
}

/** Stop a child with SIGTERM (SIGKILL after a grace), resolving once it exited. */
function stop(proc: ChildProcess | undefined): Promise<void> {
  if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => proc.kill('SIGKILL'), STOP_GRACE_MS);
    proc.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}

async function startTracker(ctx: ScenarioContext, name: string, store: string, extra: string[] = []): Promise<Child> {
  const home = join(ctx.dir, `tracker-${name}`);
  mkdirSync(home, { recursive: true });
  return startKfetch(['tracker', '--host', '127.0.0.1', '--port', '0', '--store', store, ...extra], home);
}

/** Run tracker-load.js as a child and resolve with its result line. */
function runLoad(args: LoadArgs, timeoutMs: number): Promise<LoadResult> {
  const proc = trackChild(spawn(process.execPath, [LOAD, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4000)));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  timer.unref();
  return new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`tracker-load exited ${code ?? signal}: ${err.trim().slice(-600)}`));
      try {
        resolve(JSON.parse(out) as LoadResult);
      } catch {
        reject(new Error(`tracker-load printed no result: ${out.slice(0, 200)} ${err.trim().slice(-400)}`));
      }
    });
  });
}

/** The peers (`ip:port`) a new caller is told for `swarm`: an announce with port 0 (told the peers, never listed). */
function listed(trackerUrl: string, swarm: string): Promise<Set<string>> {
  const url = new URL(trackerUrl);
  const body = 'port=0&progress=0';
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path: `/peers/${swarm}.json`,
        localAddress: NEW_CALLER,
        headers: {
          'User-Agent': `kfetch/${VERSION}`,
          'Content-Type': 'application/x-www-form-urlencoded',
          'Content-Length': String(body.length),
          Connection: 'close',
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let total = 0;
        res.on('data', (c: Buffer) => {
          total += c.length;
          if (total > 2 * 1024 * 1024) res.destroy(new Error('reply over 2 MiB'));
          else chunks.push(c);
        });
        res.once('error', reject);
        res.once('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`tracker answered ${res.statusCode} for swarm ${swarm}`));
          try {
            const peers = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { ip?: unknown; port?: unknown }[];
            resolve(new Set(peers.map((p) => `${String(p.ip)}:${String(p.port)}`)));
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        });
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('listing timed out')));
    req.once('error', reject);
    req.end(body);
  });
}

/** How many of the sample's peers (swarms of at most 50 peers) `trackerUrl` lists to a new caller. */
async function countListed(trackerUrl: string, sample: Record<string, string[]>): Promise<{ listed: number; of: number }> {
  let n = 0;
  let of = 0;
  for (const [swarm, peers] of Object.entries(sample)) {
    if (peers.length > 50) continue;
    const got = await listed(trackerUrl, swarm);
    of += peers.length;
    n += peers.filter((p) => got.has(p)).length;
  }
  return { listed: n, of };
}

async function usedMemory(port: number): Promise<number> {
  const r = redisClient(port);
  try {
    const info = await r.info('memory');
    const m = /^used_memory:(\d+)\r?$/m.exec(info);
    if (m === null) throw new Error('INFO memory has no used_memory');
    return Number(m[1]);
  } finally {
    r.disconnect();
  }
}

interface Variant {
  name: string;
  load: LoadResult;
  /** CPU seconds over the load: the tracker processes, redis-server. */
  trackerCpu: number;
  redisCpu: number;
}

/** CPU µs per 200 answer over the whole load (warm-up included). */
function perAnnounce(cpuSeconds: number, v: Variant): number {
  return v.load.allOk === 0 ? NaN : (cpuSeconds * 1e6) / v.load.allOk;
}

export async function tracker(ctx: ScenarioContext): Promise<ScenarioResult> {
  const quick = ctx.opts.quick;
  const swarms = quick ? 1_000 : 10_000;
  const seconds = quick ? 2 : 20;
  const warmupSeconds = quick ? 0.5 : 3;
  const fillPeers = quick ? 10_000 : 100_000;
  const floodArgs = (urls: string[], seed: number): LoadArgs => ({
    urls,
    clients: CLIENTS,
    mode: 'flood',
    seconds,
    warmupSeconds,
    swarms,
    peersPerClient: Math.max(64, Math.ceil((2 * swarms) / CLIENTS)),
    seed,
    sampleSwarms: 0,
  });
  const timeoutMs = (warmupSeconds + seconds + 60) * 1000;
  const variants: Variant[] = [];
  const rows: Row[] = [];
  const targets: Target[] = [];
  const notes: string[] = [];
  const trackers: Child[] = [];

  const flood = async (name: string, urls: string[], redis: RunningRedis | undefined, seed: number): Promise<Variant> => {
    ctx.log(`tracker: ${name}: ${CLIENTS} clients, ${swarms} swarms, ${warmupSeconds} + ${seconds} s`);
    // Every tracker process: with --workers, the primary and its workers.
    const pids = trackers.flatMap((t) => processTree(t.proc.pid!));
    const t0 = cpuOf(pids);
    const r0 = redis === undefined ? { user: 0, sys: 0 } : cpuOf([redis.proc.pid!]);
    const load = await runLoad(floodArgs(urls, seed), timeoutMs);
    const t1 = cpuOf(pids);
    const r1 = redis === undefined ? { user: 0, sys: 0 } : cpuOf([redis.proc.pid!]);
    const v = { name, load, trackerCpu: t1.user + t1.sys - t0.user - t0.sys, redisCpu: r1.user + r1.sys - r0.user - r0.sys };
    variants.push(v);
    return v;
  };
  const stopTrackers = async (): Promise<void> => {
    await Promise.all(trackers.splice(0).map((t) => stop(t.proc)));
  };

  let redis: RunningRedis | undefined;
  try {
    // 1. Memory store, one process.
    trackers.push(await startTracker(ctx, 'memory', 'memory'));
    const mem = await flood('memory, 1 process', [trackers[0]!.url], undefined, 1);
    await stopTrackers();

    let redis1: Variant | undefined;
    let redis2: Variant | undefined;
    let workers2: Variant | undefined;
    let memory: { bytesPerPeer: number; peers: number; fillRate: number } | undefined;
    let restart: { before: { listed: number; of: number }; after: { listed: number; of: number } } | undefined;
    if (!existsSync(REDIS_SERVER)) {
      notes.push(`tracker: ${REDIS_SERVER} is absent: the Redis rows, the memory figure and the restart check are skipped (Debian: apt-get install redis-server)`);
    } else {
      redis = await startRedis(join(ctx.dir, 'redis'));
      const store = (db: number): string => `redis://127.0.0.1:${redis!.port}/${db}`;
      // 2. Redis store, one process (db 1).
      trackers.push(await startTracker(ctx, 'redis-a', store(1)));
      redis1 = await flood('Redis, 1 process', [trackers[0]!.url], redis, 1);
      await stopTrackers();
      // 3. Redis store, two processes on one Redis (db 2), the clients split between their ports.
      trackers.push(await startTracker(ctx, 'redis-a', store(2)), await startTracker(ctx, 'redis-b', store(2)));
      redis2 = await flood('Redis, 2 processes', trackers.map((t) => t.url), redis, 1);
      await stopTrackers();
      // 3b. The same two processes from one command: --workers 2 on one port (the primary hands out connections).
      trackers.push(await startTracker(ctx, 'redis-w', store(3), ['--workers', '2']));
      workers2 = await flood('Redis, --workers 2 (one port)', [trackers[0]!.url], redis, 1);
      await stopTrackers();

      // 4. Memory per peer: an empty Redis, then N peers announced through one tracker (db 0).
      const flush = redisClient(redis.port);
      try {
        await flush.flushall();
      } finally {
        flush.disconnect();
      }
      trackers.push(await startTracker(ctx, 'redis-a', store(0)));
      const before = await usedMemory(redis.port);
      ctx.log(`tracker: filling ${fillPeers} peers into ${swarms} swarms`);
      const fill = await runLoad(
        { ...floodArgs([trackers[0]!.url], 7), mode: 'fill', peersPerClient: Math.ceil(fillPeers / CLIENTS), sampleSwarms: SAMPLE_SWARMS },
        timeoutMs + 600_000,
      );
      const after = await usedMemory(redis.port);
      const errs = Object.values(fill.errors).reduce((a, b) => a + b, 0);
      if (fill.ok < fill.requests || errs > 0) {
        notes.push(`tracker: the fill had ${fill.requests - fill.ok} non-200 answers ${JSON.stringify(fill.statuses)} and ${errs} errors ${JSON.stringify(fill.errors)}`);
      }
      memory = { bytesPerPeer: (after - before) / fill.ok, peers: fill.ok, fillRate: fill.ok / fill.seconds };

      // 5. Restart: the sample swarms listed before, SIGTERM, a new process on the same Redis, listed after.
      const listedBefore = await countListed(trackers[0]!.url, fill.sample);
      ctx.log('tracker: restart check (SIGTERM, a new process on the same Redis)');
      await stopTrackers();
      trackers.push(await startTracker(ctx, 'redis-b', store(0)));
      const listedAfter = await countListed(trackers[0]!.url, fill.sample);
      restart = { before: listedBefore, after: listedAfter };
      await stopTrackers();
    }

    for (const v of variants) {
      const errs = Object.values(v.load.errors).reduce((a, b) => a + b, 0);
      rows.push({
        scenario: 'tracker',
        tool: `kfetch tracker, ${v.name}`,
        sizeMiB: 0,
        seconds: round(v.load.seconds, 1),
        cpuSeconds: round(v.trackerCpu, 1),
        extra: {
          'announces/s': round(v.load.ok / v.load.seconds, 0),
          'p50 ms': round(v.load.p50Ms, 2),
          'p99 ms': round(v.load.p99Ms, 2),
          'reply bytes': round(v.load.replyBytes, 0),
          'non-200': Object.entries(v.load.statuses).map(([s, n]) => `${s}×${n}`).join(' ') || 0,
          errors: errs,
          'CPU s tracker/redis/load': `${v.trackerCpu.toFixed(1)}/${v.redisCpu.toFixed(1)}/${v.load.cpuSeconds.toFixed(1)}`,
          'CPU µs/announce tracker/redis': `${perAnnounce(v.trackerCpu, v).toFixed(0)}/${perAnnounce(v.redisCpu, v).toFixed(0)}`,
        },
      });
    }
    if (memory !== undefined) {
      rows.push({
        scenario: 'tracker',
        tool: 'Redis memory (used_memory)',
        sizeMiB: round((memory.bytesPerPeer * memory.peers) / 1024 / 1024, 1),
        extra: {
          peers: memory.peers,
          'bytes/peer': round(memory.bytesPerPeer, 0),
          'MiB per 100,000 peers': round((memory.bytesPerPeer * 100_000) / 1024 / 1024, 1),
          'fill announces/s': round(memory.fillRate, 0),
        },
      });
    }
    const rate = (v: Variant | undefined): number => (v === undefined ? NaN : v.load.ok / v.load.seconds);
    const clean = (v: Variant): string => {
      const bad = v.load.requests - v.load.ok + Object.values(v.load.errors).reduce((a, b) => a + b, 0);
      return bad === 0 ? '' : `; ${bad} non-200 or failed`;
    };
    targets.push({
      scenario: 'tracker',
      text: 'memory store ≥ 10,000 announces/s on one process',
      value: `${rate(mem).toFixed(0)}/s (p50 ${mem.load.p50Ms.toFixed(2)} ms, p99 ${mem.load.p99Ms.toFixed(2)} ms${clean(mem)})`,
      met: rate(mem) >= 10_000,
    });
    if (redis1 !== undefined && redis2 !== undefined) {
      targets.push(
        {
          scenario: 'tracker',
          text: 'Redis store ≥ 60% of the memory store per process',
          value: `${rate(redis1).toFixed(0)}/s = ${((100 * rate(redis1)) / rate(mem)).toFixed(0)}% of ${rate(mem).toFixed(0)}/s${clean(redis1)}`,
          met: rate(redis1) >= 0.6 * rate(mem),
        },
        {
          scenario: 'tracker',
          text: '2 tracker processes on one Redis ≥ 1.6× one',
          value: `${rate(redis2).toFixed(0)}/s = ${(rate(redis2) / rate(redis1)).toFixed(2)}× ${rate(redis1).toFixed(0)}/s${clean(redis2)}`,
          met: rate(redis2) >= 1.6 * rate(redis1),
        },
      );
      if (workers2 !== undefined) {
        targets.push({
          scenario: 'tracker',
          text: '`--workers 2` (one command, one port) on one Redis ≥ 1.6× one process',
          value: `${rate(workers2).toFixed(0)}/s = ${(rate(workers2) / rate(redis1)).toFixed(2)}× ${rate(redis1).toFixed(0)}/s${clean(workers2)}`,
          met: rate(workers2) >= 1.6 * rate(redis1),
        });
      }
    }
    if (restart !== undefined) {
      const { before, after } = restart;
      targets.push({
        scenario: 'tracker',
        text: 'a tracker restart on Redis keeps every live peer listed',
        value: `${after.listed} of ${after.of} peers of ${SAMPLE_SWARMS} swarms listed to a new caller after the restart (${before.listed} of ${before.of} before)`,
        met: after.of > 0 && after.listed === after.of && before.listed === before.of,
      });
    }
    if (redis2 !== undefined && redis1 !== undefined) {
      const cpu = (v: Variant): string => `trackers ${v.trackerCpu.toFixed(1)}, redis ${v.redisCpu.toFixed(1)}, load ${v.load.cpuSeconds.toFixed(1)} CPU s`;
      notes.push(
        `tracker: 2-process scaling needs a core per tracker process beyond the load generator and Redis; on this ` +
          `${availableParallelism()}-core machine the load generator, redis-server and the trackers share the cores ` +
          `(1 process: ${cpu(redis1)}; 2 processes: ${cpu(redis2)} over ${seconds} s measured + ${warmupSeconds} s warm-up), ` +
          `so a second process can only take CPU from the others${availableParallelism() <= 2 ? ': this machine cannot show the 2× scaling' : ''}`,
      );
    }
    // The machine may be shared (other processes runnable): CPU per announce does not depend on the share we got.
    const perCore = (v: Variant): string => {
      const t = perAnnounce(v.trackerCpu, v);
      const r = perAnnounce(v.redisCpu, v);
      return `${v.name}: ${(1e6 / t).toFixed(0)}/s per tracker core${r > 0 ? `, redis-server ${(1e6 / r).toFixed(0)}/s per core` : ''}`;
    };
    notes.push(
      `tracker: announces per CPU-second (tracker and redis-server CPU from /proc over warm-up and measured window, divided by every 200 answer in it; load average ` +
        `${loadavg()[0]!.toFixed(1)} at the end on ${availableParallelism()} cores: the rates above are what this run's share of the CPU gave): ` +
        variants.map(perCore).join('; '),
    );
    notes.push(
      `tracker: ${CLIENTS} keep-alive clients from 127.0.x.y, ${swarms} swarms, peers announced without a bitfield ` +
        `(form port, progress, event=started on a peer's first announce); the memory figure is the peer record, ` +
        `its sorted-set entry and the swarm keys, over ${fillPeers} peers in ${swarms} swarms`,
    );
    return { rows, targets, notes };
  } finally {
    await stopTrackers();
    await stop(redis?.proc);
  }
}
