// The load generator of the `box-soak` scenario, run as its own process (so its CPU and memory are not the
// measured box's): `node box-load.js '<json LoadArgs>'`. C clients, each one keep-alive connection from its own
// loopback address (127.0.x.y: distinct client addresses, as the box's fair serving sees real peers), each asking
// for one random aligned block of a random kascade at a time for S seconds and checking every body's MD5 against
// the kascade. A 503 waits its Retry-After (at most 1 s). Prints one JSON line (LoadResult) and exits 0.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export interface LoadArgs {
  url: string;
  /** Path of the library's manifest ({ blockSize, files: [{ filehash, size, md5 }] }). */
  manifest: string;
  clients: number;
  seconds: number;
  /** Seed of the clients' random choices (the same run asks for the same blocks). */
  seed: number;
}

export interface LoadResult {
  clients: number;
  seconds: number;
  requests: number;
  ok: number;
  bytes: number;
  status503: number;
  /** 206 bodies whose length or MD5 is wrong. */
  wrongBytes: number;
  /** Other statuses, by status. */
  otherStatus: Record<string, number>;
  /** Socket errors and timeouts, by message. */
  errors: Record<string, number>;
  /** Latency of 206 answers, ms: request sent to body complete. */
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

interface Manifest {
  blockSize: number;
  files: { filehash: string; size: number; md5: string[] }[];
}

/** A request that takes this long is an error (the box's own queue timeout is 10 s). */
const REQUEST_TIMEOUT_MS = 30_000;

/** mulberry32: a small seeded PRNG, so runs ask for the same blocks. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Client i's source address: 127.0.1.1 … 127.0.1.250, 127.0.2.1 …; all reach the box on 127.0.0.1. */
function clientAddress(i: number): string {
  return `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}

interface Answer {
  status: number;
  body: Buffer;
  retryAfter: string | undefined;
}

function get(agent: Agent, url: URL, path: string, range: string, localAddress: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ agent, host: url.hostname, port: url.port, path, localAddress, headers: { Range: range } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), retryAfter: res.headers['retry-after'] }));
      res.once('error', reject);
    });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error('request timed out')));
    req.once('error', reject);
    req.end();
  });
}

/** Run the load; resolves with its figures. */
export async function runLoad(a: LoadArgs): Promise<LoadResult> {
  const m = JSON.parse(readFileSync(a.manifest, 'utf8')) as Manifest;
  const url = new URL(a.url);
  const r: Omit<LoadResult, 'p50Ms' | 'p90Ms' | 'p99Ms' | 'maxMs'> = {
    clients: a.clients,
    seconds: 0,
    requests: 0,
    ok: 0,
    bytes: 0,
    status503: 0,
    wrongBytes: 0,
    otherStatus: {},
    errors: {},
  };
  const latencies: number[] = [];
  const t0 = performance.now();
  const end = t0 + a.seconds * 1000;
  const client = async (i: number): Promise<void> => {
    const rand = prng(a.seed * 100_003 + i);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const local = clientAddress(i);
    try {
      while (performance.now() < end) {
        const f = m.files[Math.floor(rand() * m.files.length)]!;
        const b = Math.floor(rand() * f.md5.length);
        const first = b * m.blockSize;
        const last = Math.min(first + m.blockSize, f.size) - 1;
        const sent = performance.now();
        r.requests++;
        try {
          const ans = await get(agent, url, `/${f.filehash}`, `bytes=${first}-${last}`, local);
          if (ans.status === 206) {
            latencies.push(performance.now() - sent);
            r.ok++;
            r.bytes += ans.body.length;
            if (ans.body.length !== last - first + 1 || createHash('md5').update(ans.body).digest('hex') !== f.md5[b]) r.wrongBytes++;
          } else if (ans.status === 503) {
            r.status503++;
            const wait = Math.min(1000, Math.max(0, Number(ans.retryAfter ?? '1') * 1000 || 1000));
            await sleep(Math.min(wait, Math.max(0, end - performance.now())));
          } else {
            r.otherStatus[ans.status] = (r.otherStatus[ans.status] ?? 0) + 1;
          }
        } catch (err) {
          const msg = err instanceof Error ? err.message : String(err);
          r.errors[msg] = (r.errors[msg] ?? 0) + 1;
          await sleep(100);
        }
      }
    } finally {
      agent.destroy();
    }
  };
  await Promise.all(Array.from({ length: a.clients }, (_, i) => client(i)));
  r.seconds = (performance.now() - t0) / 1000;
  latencies.sort((x, y) => x - y);
  const q = (p: number): number => (latencies.length === 0 ? NaN : latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!);
  return { ...r, p50Ms: q(0.5), p90Ms: q(0.9), p99Ms: q(0.99), maxMs: latencies.at(-1) ?? NaN };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = JSON.parse(process.argv[2] ?? '{}') as LoadArgs;
  runLoad(args).then(
    (res) => process.stdout.write(`${JSON.stringify(res)}\n`),
    (err: unknown) => {
      process.stderr.write(`box-load: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
