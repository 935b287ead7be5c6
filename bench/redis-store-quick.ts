// A quick in-process measure of the Redis peer store (issue 13), without HTTP: announces per second through the
// store alone (and the in-memory registry for scale), latency per announce, and Redis memory per 100,000 peers.
// `node dist/bench/redis-store-quick.js [--in-flight N]`: starts its own redis-server on a free loopback port with a
// temp dir and stops it after. The HTTP load generator with many tracker processes is `bench tracker`'s job.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { openRedisPeerStore } from '../src/tracker/redis-peer-store.js';
import { DEFAULT_FEEDER_POLICY } from '../src/tracker/feeder-policy.js';
import type { PeerStoreLimits } from '../src/tracker/peer-store.js';
import { SwarmRegistry } from '../src/tracker/swarm-registry.js';

const LIMITS: PeerStoreLimits = {
  maxSwarms: 100_000,
  maxPeersPerSwarm: 10_000,
  maxPeersPerAddress: 64,
  maxPeers: 1_000_000,
  expiryMs: 180_000,
  completeExpiryMs: 6 * 3_600_000,
  minIntervalMs: 5_000,
  maxBitfieldBytesPerSwarm: 32 * 1024 * 1024,
  maxBitfieldBytes: 256 * 1024 * 1024,
  feeders: DEFAULT_FEEDER_POLICY,
};

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

const swarmId = (i: number): string => i.toString(16).padStart(40, '0');
const peerOf = (i: number, progress: number) => ({ ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 6881, progress });

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'in-flight': { type: 'string', default: '8' } } });
  const inFlight = Math.max(1, Math.min(256, Number(values['in-flight'])));
  const dir = mkdtempSync(join(tmpdir(), 'kfetch-redis-bench-'));
  const port = await freePort();
  const child = spawn('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}/0`;
  // Queued until redis-server listens (retried every 50 ms, up to 5 s).
  const raw = new Redis(url, { retryStrategy: (n: number) => (n > 100 ? null : 50) });
  raw.on('error', () => undefined);
  try {
    await raw.ping();
    const store = await openRedisPeerStore(url, LIMITS);
    /** `count` announces, the i-th from peer i into swarm i % swarms, `inFlight` at once. */
    const redisCpu = async (): Promise<number> => {
      const info = await raw.info('cpu');
      return Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1]);
    };
    const flood = async (count: number, swarms: number, sample: number, progress: number) => {
      const cpu0 = await redisCpu();
      const node0 = process.cpuUsage();
      const lat: number[] = [];
      let next = 0;
      const now = Date.now();
      const t0 = performance.now();
      await Promise.all(
        [...Array(inFlight).keys()].map(async () => {
          while (next < count) {
            const i = next++;
            const t = performance.now();
            const o = await store.announce(swarmId(i % swarms), peerOf(i, progress), { now, sample });
            if (!o.result.ok) throw new Error(`announce ${i} refused: ${JSON.stringify(o.result)}`);
            lat.push(performance.now() - t);
          }
        }),
      );
      const s = (performance.now() - t0) / 1000;
      lat.sort((a, b) => a - b);
      const nodeCpu = process.cpuUsage(node0);
      return {
        perSecond: Math.round(count / s),
        p50ms: +pct(lat, 50).toFixed(3),
        p99ms: +pct(lat, 99).toFixed(3),
        redisCpuUsPerAnnounce: Math.round((((await redisCpu()) - cpu0) * 1e6) / count),
        nodeCpuUsPerAnnounce: Math.round((nodeCpu.user + nodeCpu.system) / count),
      };
    };

    const first = await flood(20_000, 1_000, 50, 0.5);
    const refresh = await flood(20_000, 1_000, 50, 0.6);
    console.log(`redis store, 20,000 new peers into 1,000 swarms, sample 50, ${inFlight} in flight:`, first);
    console.log('redis store, the same 20,000 refreshing (a changed progress), sample 50:', refresh);

    const reg = new SwarmRegistry(LIMITS);
    const t0 = performance.now();
    const wall = new Date().toISOString();
    for (let i = 0; i < 20_000; i++) {
      reg.record(swarmId(i % 1_000), peerOf(i, 0.5), t0, wall);
      reg.sample(swarmId(i % 1_000), 50, t0, undefined, Math.random);
    }
    console.log('memory registry, the same 20,000 (record + sample 50, no I/O):', { perSecond: Math.round(20_000 / ((performance.now() - t0) / 1000)) });

    await raw.flushall();
    const used = async (): Promise<number> => Number(/used_memory:(\d+)/.exec(await raw.info('memory'))?.[1]);
    const before = await used();
    await flood(100_000, 1_000, 0, 0.5);
    const plain = (await used()) - before;
    await raw.flushall();
    const before2 = await used();
    await flood(100_000, 10_000, 0, 0.5);
    const spread = (await used()) - before2;
    const mib = (b: number): string => `${(b / 1024 / 1024).toFixed(1)} MiB (${Math.round(b / 100_000)} B/peer)`;
    console.log(`redis used_memory per 100,000 peers (no bitfields): 1,000 swarms × 100: ${mib(plain)}; 10,000 swarms × 10: ${mib(spread)}`);
    await store.close();
  } finally {
    raw.disconnect();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
