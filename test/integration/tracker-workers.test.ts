// Issue 13 point 2: `kfetch tracker --workers N --store redis://…` — N real processes on one port and one real
// redis-server. Any worker answers any swarm; a worker killed with -9 in the middle of a flood of announces loses
// none that were answered 200 (each is in Redis), the others go on answering meanwhile and the dead one comes back;
// GET /metrics adds the workers' figures up; SIGTERM stops every process and exits 0. Misuse fails with the
// catalogue's codes: several workers on the memory store (2), a Redis that does not answer (4), a busy port (4).
import { request } from 'node:http';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VERSION } from '../../src/version.js';
import { killAllChildren, startCli, type CliRun } from '../helpers/cli.js';
import { redisSkipReason, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { freePort, pidAlive } from '../helpers/system.js';
import { until } from '../helpers/wait.js';

const skip = redisSkipReason();
if (skip !== undefined) console.warn(skip);

interface Reply {
  status: number;
  body: string;
}

/** One request on its own connection (so the primary hands each to the next worker). */
function call(url: string, path: string, o: { method?: string; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}${path}`,
      {
        method: o.method ?? 'GET',
        agent: false,
        headers: { 'user-agent': `kfetch/${VERSION}`, connection: 'close', ...(o.body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }) },
        timeout: 10_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(o.body);
  });
}

const swarm = (i: number): string => i.toString(16).padStart(8, '0').repeat(8);
const announce = (url: string, i: number): Promise<Reply> => call(url, `/peers/${swarm(i)}.json`, { method: 'POST', body: `port=${10_000 + i}&progress=0.5` });
const status = async (url: string): Promise<{ pid: number; worker?: number }> => JSON.parse((await call(url, '/status')).body) as { pid: number; worker?: number };
describe.skipIf(skip !== undefined)('kfetch tracker --workers (issue 13)', () => {
  let redis: RedisServer;
  let raw: Redis;
  const runs: CliRun[] = [];
  const tracker = async (args: string[]): Promise<{ run: CliRun; url: string }> => {
    const run = startCli(['tracker', '--port', '0', '--store', redis.url, ...args]);
    runs.push(run);
    const m = await run.waitForLine(/^listening on (http:\/\/\S+)$/, 30_000);
    return { run, url: m[1]! };
  };
  /** The worker pids answering on `url`: fresh connections until both are seen (bounded). */
  const workerPids = async (url: string, n: number): Promise<Map<number, number>> => {
    const seen = new Map<number, number>();
    for (let i = 0; i < 40 && seen.size < n; i++) {
      const s = await status(url);
      seen.set(s.worker!, s.pid);
    }
    return seen;
  };

  beforeEach(async () => {
    redis = await startRedisServer();
    raw = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await raw.connect();
  });
  afterEach(async () => {
    for (const r of runs.splice(0)) if (r.child.exitCode === null) r.child.kill('SIGKILL');
    killAllChildren();
    raw.disconnect();
    await redis.close();
  });

  it('two workers on one port answer any swarm; /metrics adds them up; SIGTERM stops both and exits 0', async () => {
    const { run, url } = await tracker(['--workers', '2']);
    expect(run.stdout().match(/listening on/g)).toHaveLength(1);
    const pids = await workerPids(url, 2);
    expect([...pids.keys()].sort()).toEqual([1, 2]);
    expect(new Set(pids.values()).size).toBe(2);
    expect([...pids.values()]).not.toContain(run.child.pid);

    // Peer 1 announces into swarm 7 through one connection; peer 2 (another worker, the next connection) sees it.
    expect((await call(url, `/peers/${swarm(7)}.json`, { method: 'POST', body: 'port=7001&progress=0' })).status).toBe(200);
    const other = await call(url, `/peers/${swarm(7)}.json`, { method: 'POST', body: 'port=7002&progress=0' });
    expect(other.status).toBe(200);
    expect((JSON.parse(other.body) as { port: number }[]).map((p) => p.port)).toEqual([7001]);
    for (let i = 0; i < 6; i++) expect((await announce(url, 100 + i)).status).toBe(200);

    const metrics = (await call(url, '/metrics')).body;
    expect(metrics).toMatch(/^kfetch_tracker_processes 2$/m);
    // Counters per worker (a restarted worker's series starts again from 0, which Prometheus reads as its reset).
    const announced = [...metrics.matchAll(/^kfetch_tracker_answers_total\{outcome="announced",worker="(\d)"\} (\d+)$/gm)];
    expect(announced.map((m) => m[1]).sort()).toEqual(['1', '2']);
    expect(announced.reduce((n, m) => n + Number(m[2]), 0)).toBe(8); // 2 + 6, over both workers
    expect(metrics).toMatch(/^kfetch_tracker_peers 8$/m); // the store's count, once (not once per worker)
    expect(metrics).toMatch(/^kfetch_tracker_store_up 1$/m);

    run.child.kill('SIGTERM');
    expect(await run.exited(20_000)).toBe(0);
    for (const pid of pids.values()) expect(pidAlive(pid)).toBe(false);
    expect(run.stderr()).toMatch(/shutting down.*worker=1|worker=1.*shutting down/);
  });

  it('a worker killed with -9 mid-flood loses no answered announce; the other answers meanwhile; it comes back', async () => {
    const { run, url } = await tracker(['--workers', '2']);
    const pids = await workerPids(url, 2);
    const victim = pids.get(1)!;
    const answered: number[] = [];
    let failed = 0;
    let next = 0;
    let killedAt = Number.POSITIVE_INFINITY;
    let answeredAfterKill = 0;
    const deadline = performance.now() + 4_000;
    const client = async (): Promise<void> => {
      // Bounded: at most 4 s and 2,000 announces per client.
      for (let k = 0; k < 2_000 && performance.now() < deadline; k++) {
        const i = next++;
        try {
          const r = await announce(url, i);
          if (r.status === 200) {
            answered.push(i);
            if (performance.now() > killedAt) answeredAfterKill++;
          } else failed++;
        } catch {
          failed++; // the connection was with the killed worker: not answered, so not counted as kept
        }
      }
    };
    const flood = Promise.all(Array.from({ length: 8 }, () => client()));
    await until(() => answered.length >= 100, 10_000, '100 announces answered');
    process.kill(victim, 'SIGKILL');
    killedAt = performance.now();
    await flood;

    expect(answered.length).toBeGreaterThan(100);
    expect(answeredAfterKill).toBeGreaterThan(0); // the surviving worker answered while the other was down
    // Every announce answered 200 is in Redis, whichever worker took it and whether or not it died after.
    const pipeline = raw.pipeline();
    for (const i of answered) pipeline.zscore(`kf:{${swarm(i)}}:a`, `127.0.0.1:${10_000 + i}`);
    const scores = (await pipeline.exec())!.map(([err, v]) => (err === null ? v : null));
    const missing = answered.filter((_, j) => scores[j] === null);
    expect(missing).toEqual([]);

    await until(() => /worker back/.test(run.stderr()), 15_000, 'the killed worker restarted');
    expect(run.stderr()).toMatch(/worker exited.*worker=1|worker=1.*worker exited/);
    const after = await workerPids(url, 2);
    expect(after.size).toBe(2);
    expect(after.get(1)).not.toBe(victim);
    void failed;
  });

  it('SIGTERM while the workers start: every process stops well within the 10 s grace, exit 0', async () => {
    const run = startCli(['tracker', '--port', '0', '--store', redis.url, '--workers', '2']);
    runs.push(run);
    await until(() => /redis store up/.test(run.stderr()), 15_000, 'the primary probed the store');
    run.child.kill('SIGTERM');
    const t0 = performance.now();
    const code = await run.exited(20_000);
    expect(performance.now() - t0).toBeLessThan(8_000);
    expect([0, 143]).toContain(code);
    expect(run.stderr()).not.toMatch(/killing it/);
    await until(async () => Number((await raw.info('clients')).match(/connected_clients:(\d+)/)![1]) === 1, 10_000, 'no worker left connected');
  });

  it('--port 0: workers restarted after all of them died listen on the printed port again', async () => {
    const { run, url } = await tracker(['--workers', '2']);
    const pids = await workerPids(url, 2);
    for (const pid of pids.values()) process.kill(pid, 'SIGKILL');
    await until(() => (run.stderr().match(/worker back/g) ?? []).length >= 2, 20_000, 'both workers back');
    expect((await announce(url, 1)).status).toBe(200);
    const after = await workerPids(url, 2);
    expect(after.size).toBe(2);
  });

  it('Redis gone: /metrics says store_up 0 without any announce; a worker restart that fails says why; back: store_up 1', async () => {
    const { run, url } = await tracker(['--workers', '2']);
    const pids = await workerPids(url, 2);
    expect((await call(url, '/metrics')).body).toMatch(/^kfetch_tracker_store_up 1$/m);
    await redis.stop();
    await until(async () => /^kfetch_tracker_store_up 0$/m.test((await call(url, '/metrics')).body), 15_000, 'store_up 0 from a scrape alone');
    // A worker that dies now cannot start again: the primary logs the reason, and keeps trying with back-off.
    process.kill(pids.get(2)!, 'SIGKILL');
    // The restart fails with the store's error, and exits with its status (4), which the primary logs with the reason.
    await until(() => /restarting it worker=2 .*code=4 .*reason=tracker worker 2 of 2: redis store/.test(run.stderr()), 20_000, 'the failed restart logged with its reason');
    await redis.restart();
    await until(async () => /^kfetch_tracker_store_up 1$/m.test((await call(url, '/metrics')).body), 20_000, 'store_up 1 again');
  });

  it('behind a reverse proxy (--trust-proxy) loopback no longer reads /metrics and /status unless --metrics-allow names it', async () => {
    const proxied = startCli(['tracker', '--port', '0', '--trust-proxy', '127.0.0.1']);
    runs.push(proxied);
    const u1 = (await proxied.waitForLine(/^listening on (http:\/\/\S+)$/))[1]!;
    expect((await call(u1, '/metrics')).status).toBe(403);
    expect((await call(u1, '/status')).status).toBe(403);
    const allowed = startCli(['tracker', '--port', '0', '--trust-proxy', '127.0.0.1', '--metrics-allow', '127.0.0.1/32']);
    runs.push(allowed);
    const u2 = (await allowed.waitForLine(/^listening on (http:\/\/\S+)$/))[1]!;
    expect((await call(u2, '/metrics')).status).toBe(200);
    const plain = startCli(['tracker', '--port', '0']);
    runs.push(plain);
    const u3 = (await plain.waitForLine(/^listening on (http:\/\/\S+)$/))[1]!;
    expect((await call(u3, '/status')).status).toBe(200);
  });

  it('refuses several workers on the memory store (exit 2, names --workers)', async () => {
    const run = startCli(['tracker', '--port', '0', '--workers', '2']);
    expect(await run.exited(15_000)).toBe(2);
    expect(run.stderr()).toMatch(/--workers/);
    expect(run.stderr()).toMatch(/redis/);
    expect(run.stdout()).toBe('');
  });

  it('a Redis that does not answer: KF_E_STORE_UNAVAILABLE (exit 4) before any worker starts, for one process or several', async () => {
    const port = await freePort();
    for (const workers of ['1', '3']) {
      const run = startCli(['tracker', '--port', '0', '--workers', workers, '--store', `redis://127.0.0.1:${port}`]);
      expect(await run.exited(15_000)).toBe(4);
      expect(run.stderr()).toMatch(/KF_E_STORE_UNAVAILABLE/);
      expect(run.stderr()).not.toMatch(/at .*\.js:\d+/); // a message, not a stack
      expect(run.stderr()).not.toMatch(/worker=/);
    }
  });

  it('a busy port fails the command with KF_E_LISTEN (exit 4) and leaves no worker behind', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const port = (busy.address() as { port: number }).port;
    try {
      const run = startCli(['tracker', '--port', String(port), '--workers', '2', '--store', redis.url]);
      expect(await run.exited(20_000)).toBe(4);
      expect(run.stderr()).toMatch(/KF_E_LISTEN/);
      // Every worker is gone: none is still connected to Redis (the primary's own probe closed long ago).
      await until(async () => Number((await raw.info('clients')).match(/connected_clients:(\d+)/)![1]) === 1, 10_000, 'worker connections closed');
    } finally {
      busy.close();
    }
  });
});
