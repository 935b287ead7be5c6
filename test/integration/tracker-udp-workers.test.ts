// `kfetch tracker --workers N --udp-port P` (issue 14, UDP beside --workers): N real processes read one shared
// datagram socket (node:cluster) and share the connection-id secret the primary drew. Raw datagrams from several
// client sockets: every connect/announce pair is answered whichever worker each half reached (no "connect again"),
// and /metrics shows that both workers answered; workers killed with -9 come back with the same secret (ids given
// before still prove the source) on the same UDP port; misuse fails with the catalogue's codes.
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VERSION } from '../../src/version.js';
import { decodeReply, encodeAnnounceRequest, encodeConnectRequest, type UdpReply } from '../../src/tracker/udp-wire.js';
import { killAllChildren, startCli, type CliRun } from '../helpers/cli.js';
import { redisSkipReason, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { pidAlive } from '../helpers/system.js';
import { until } from '../helpers/wait.js';

const skip = redisSkipReason();
if (skip !== undefined) console.warn(skip);

/** GET `path` on its own connection (so the cluster hands it to the next worker). */
function get(url: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { agent: false, headers: { 'user-agent': `kfetch/${VERSION}`, connection: 'close' }, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** The value of each series of `name` in a /metrics text whose labels include all of `labels`, keyed by its worker label. */
function series(metrics: string, name: string, labels: Record<string, string>): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of metrics.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\d+)$`, 'gm'))) {
    const l = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (Object.entries(labels).every(([k, v]) => l[k] === v)) out.set(l.worker ?? '', Number(m[2]));
  }
  return out;
}
const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

/** A raw UDP tracker client on one loopback socket: each request retransmitted every 500 ms, at most 6 times. */
class RawClient {
  private readonly waiting = new Map<number, (r: UdpReply) => void>();
  private nextTx: number;
  private constructor(
    private readonly socket: Socket,
    private readonly port: number,
    seed: number,
  ) {
    this.nextTx = seed * 1_000_000;
    socket.on('message', (msg) => {
      const r = decodeReply(msg);
      if (r.ok) this.waiting.get(r.value.transactionId)?.(r.value);
    });
  }

  static async open(port: number, seed: number): Promise<RawClient> {
    const s = createSocket('udp4');
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
    return new RawClient(s, port, seed);
  }

  private async ask(make: (tx: number) => Buffer): Promise<UdpReply> {
    const tx = this.nextTx++;
    const d = make(tx);
    return new Promise<UdpReply>((resolve, reject) => {
      let tries = 0;
      let timer: NodeJS.Timeout | undefined;
      const send = (): void => {
        if (++tries > 6) {
          this.waiting.delete(tx);
          return reject(new Error(`udp transaction ${tx}: no reply`));
        }
        this.socket.send(d, this.port, '127.0.0.1');
        timer = setTimeout(send, 500);
      };
      this.waiting.set(tx, (r) => {
        clearTimeout(timer);
        this.waiting.delete(tx);
        resolve(r);
      });
      send();
    });
  }

  async connect(): Promise<Buffer> {
    const r = await this.ask((tx) => encodeConnectRequest(tx));
    if (r.action !== 'connect') throw new Error(`connect answered ${r.action}`);
    return r.connectionId;
  }

  announce(connectionId: Buffer, swarmId: string, port: number): Promise<UdpReply> {
    return this.ask((transactionId) => encodeAnnounceRequest({ connectionId, transactionId, swarmId, port, progress: 500_000, event: 'none', numWant: 0 }));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** The UDP secret a worker was started with (its initial environment, which /proc keeps; same user only). */
function startedWithSecret(pid: number): string | undefined {
  const env = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
  return env.find((e) => e.startsWith('KFETCH_TRACKER_WORKER_UDP_SECRET='))?.split('=')[1];
}
const cmdline = (pid: number): string => readFileSync(`/proc/${pid}/cmdline`, 'latin1');

const swarm = (i: number): string => i.toString(16).padStart(8, '0').repeat(8);

describe.skipIf(skip !== undefined)('kfetch tracker --workers with --udp-port', () => {
  let redis: RedisServer;
  const runs: CliRun[] = [];
  const clients: RawClient[] = [];
  const tracker = async (args: string[]): Promise<{ run: CliRun; http: string; udpPort: number }> => {
    const run = startCli(['tracker', '--port', '0', '--udp-port', '0', '--store', redis.url, ...args]);
    runs.push(run);
    const http = (await run.waitForLine(/^listening on (http:\/\/\S+)$/, 30_000))[1]!;
    const udp = (await run.waitForLine(/^listening on udp:\/\/127\.0\.0\.1:(\d+)$/, 30_000))[1]!;
    return { run, http, udpPort: Number(udp) };
  };
  /** The worker pids answering HTTP on `url`: fresh connections until `n` are seen (bounded). */
  const workerPids = async (url: string, n: number): Promise<Map<number, number>> => {
    const seen = new Map<number, number>();
    for (let i = 0; i < 40 && seen.size < n; i++) {
      const s = JSON.parse(await get(url, '/status')) as { pid: number; worker: number };
      seen.set(s.worker, s.pid);
    }
    return seen;
  };

  beforeEach(async () => {
    redis = await startRedisServer();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    for (const r of runs.splice(0)) if (r.child.exitCode === null) r.child.kill('SIGKILL');
    killAllChildren();
    await redis.close();
  });

  it('a connect answered by one worker is good for an announce another answers: both answer, none says connect again', async () => {
    const { run, http, udpPort } = await tracker(['--workers', '2']);
    expect(run.stdout().match(/^listening on /gm)).toHaveLength(2);
    // 4 client sockets × 50 connect/announce pairs at once, each pair on a swarm of its own (no minimum gap applies).
    for (let c = 0; c < 4; c++) clients.push(await RawClient.open(udpPort, c + 1));
    const replies: UdpReply['action'][] = [];
    await Promise.all(
      clients.map(async (client, c) => {
        for (let i = 0; i < 50; i++) {
          const id = await client.connect();
          replies.push((await client.announce(id, swarm(c * 1000 + i), 7000 + c)).action);
        }
      }),
    );
    expect(replies).toHaveLength(200);
    expect(replies.filter((a) => a !== 'announce')).toEqual([]);

    const metrics = await get(http, '/metrics');
    expect(metrics).toMatch(/^kfetch_tracker_processes 2$/m);
    // Counted per worker, as the HTTP counters are: both workers read datagrams, and their sum is every pair.
    const connects = series(metrics, 'kfetch_tracker_udp_datagrams_total', { kind: 'connect' });
    const announced = series(metrics, 'kfetch_tracker_udp_answers_total', { outcome: 'announced' });
    expect([...connects.keys()].sort()).toEqual(['1', '2']);
    expect([...announced.entries()].filter(([, n]) => n > 0).map(([w]) => w).sort()).toEqual(['1', '2']);
    expect(total(connects)).toBe(200);
    expect(total(announced)).toBe(200);
    expect(total(series(metrics, 'kfetch_tracker_udp_datagrams_total', { kind: 'bad_connection_id' }))).toBe(0);
    expect(total(series(metrics, 'kfetch_tracker_udp_datagrams_total', { kind: 'received' }))).toBeGreaterThanOrEqual(400);
    expect(total(series(metrics, 'kfetch_tracker_udp_bytes_total', { direction: 'out' }))).toBeGreaterThan(0);
    // One store behind both doors: HTTP lists what UDP announced.
    expect(metrics).toMatch(/^kfetch_tracker_peers 200$/m);
    // One secret for both, from the environment the primary gave them: on no command line, in no log line.
    const pids = await workerPids(http, 2);
    const secrets = [...pids.values()].map(startedWithSecret);
    expect(secrets[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(new Set(secrets).size).toBe(1);
    for (const pid of [run.child.pid!, ...pids.values()]) expect(cmdline(pid)).not.toContain(secrets[0]);
    expect(run.stderr() + run.stdout()).not.toContain(secrets[0]);

    run.child.kill('SIGTERM');
    expect(await run.exited(20_000)).toBe(0);
  });

  it('workers killed with -9 come back on the same UDP port with the same secret: ids given before still hold', async () => {
    const { run, http, udpPort } = await tracker(['--workers', '2']);
    for (let c = 0; c < 4; c++) clients.push(await RawClient.open(udpPort, c + 1));
    const ids = await Promise.all(clients.map((c) => c.connect()));

    // Both at once (each restart names the printed ports: the shared sockets closed with the last worker), then one
    // again (it shares the sockets of the one that listens, asking for them as that one did).
    const before = await workerPids(http, 2);
    const secret = startedWithSecret(before.get(1)!);
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    for (const pid of before.values()) process.kill(pid, 'SIGKILL');
    await until(() => (run.stderr().match(/worker back/g) ?? []).length >= 2, 20_000, 'both workers back');
    const middle = await workerPids(http, 2);
    process.kill(middle.get(2)!, 'SIGKILL');
    await until(() => (run.stderr().match(/worker back/g) ?? []).length >= 3, 20_000, 'worker 2 back again');
    expect(run.stderr()).not.toMatch(/listens elsewhere/);
    const after = await workerPids(http, 2);
    expect(after.size).toBe(2);
    for (const pid of [...before.values(), middle.get(2)!]) expect(pidAlive(pid)).toBe(false);
    for (const pid of after.values()) expect(startedWithSecret(pid)).toBe(secret);

    // Every process now reading the socket was started after the ids were given: each announce is answered.
    const replies: UdpReply['action'][] = [];
    await Promise.all(
      clients.map(async (client, c) => {
        for (let i = 0; i < 25; i++) replies.push((await client.announce(ids[c]!, swarm(c * 1000 + i), 7000 + c)).action);
      }),
    );
    expect(replies.filter((a) => a !== 'announce')).toEqual([]);
    const metrics = await get(http, '/metrics');
    const announced = series(metrics, 'kfetch_tracker_udp_answers_total', { outcome: 'announced' });
    expect(total(announced)).toBe(100);
    expect(total(series(metrics, 'kfetch_tracker_udp_datagrams_total', { kind: 'bad_connection_id' }))).toBe(0);

    run.child.kill('SIGTERM');
    expect(await run.exited(20_000)).toBe(0);
  });

  it('a busy UDP port fails the command with KF_E_LISTEN (exit 4) and leaves no worker behind', async () => {
    const busy = createSocket('udp4');
    await new Promise<void>((resolve) => busy.bind(0, '127.0.0.1', () => resolve()));
    try {
      const run = startCli(['tracker', '--port', '0', '--udp-port', String(busy.address().port), '--workers', '2', '--store', redis.url]);
      runs.push(run);
      expect(await run.exited(20_000)).toBe(4);
      expect(run.stderr()).toMatch(/KF_E_LISTEN/);
      expect(run.stderr()).toMatch(/udp/);
      expect(run.stdout()).toBe('');
      // Every worker is gone: none is still connected to Redis (the test's own connection is the one left).
      const raw = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await raw.connect();
        await until(async () => Number((await raw.info('clients')).match(/connected_clients:(\d+)/)![1]) === 1, 10_000, 'worker connections closed');
      } finally {
        raw.disconnect();
      }
    } finally {
      await new Promise<void>((resolve) => busy.close(() => resolve()));
    }
  });

  it('several workers on the memory store stay refused with --udp-port too (exit 2, names --workers)', async () => {
    const run = startCli(['tracker', '--port', '0', '--udp-port', '0', '--workers', '2']);
    runs.push(run);
    expect(await run.exited(15_000)).toBe(2);
    expect(run.stderr()).toMatch(/--workers/);
    expect(run.stdout()).toBe('');
  });
});
