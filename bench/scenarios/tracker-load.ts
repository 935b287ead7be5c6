// The load generator of the `tracker` scenario (issue 13 point 5), run as its own process (so its CPU is not the
// measured tracker's): `node tracker-load.js '<json LoadArgs>'`. C clients, each one keep-alive connection from its
// own loopback address (127.0.x.y: the tracker lists a caller under its source address and caps 64 peers per
// address per swarm), announcing one at a time, as kfetch does (POST of SPEC §2's urlencoded form, `User-Agent:
// kfetch/…`), into a set of random swarm ids (64 hex). Each client keeps its own peers (random swarm, random port)
// and re-announces them in turn with a changed progress, so the tracker's minimum gap (which refuses only a repeat
// of the same state) never refuses them.
// `flood`: as fast as they can for warm-up + S seconds; figures count the S seconds only. `fill`: each client
// announces each of its peers once, then stops; the peers of the first `sampleSwarms` swarms come back in the result
// (the scenario checks the tracker lists them, before and after a restart).
// The HTTP client is a minimal one over net.Socket (request bytes built once per announce, replies read by
// Content-Length and not parsed), so the generator spends as little of the shared CPU as it can.
// Prints one JSON line (LoadResult) and exits 0.

import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { VERSION } from '../../src/version.js';

export interface LoadArgs {
  /** Tracker origins (`http://127.0.0.1:P`); client i uses urls[i % urls.length]. */
  urls: string[];
  clients: number;
  mode: 'flood' | 'fill';
  /** flood: measured seconds (after the warm-up). */
  seconds: number;
  warmupSeconds: number;
  swarms: number;
  /** flood: peers each client cycles through; fill: peers each client announces once. */
  peersPerClient: number;
  /** Seed of the swarm ids, ports and choices (the same seed announces the same peers). */
  seed: number;
  /** fill: report the peers announced into swarms 0 … sampleSwarms-1. */
  sampleSwarms: number;
}

export interface LoadResult {
  clients: number;
  /** Measured seconds. */
  seconds: number;
  /** Requests completed in the measured window, and those answered 200. */
  requests: number;
  ok: number;
  /** 200 answers over the whole run, warm-up included (for CPU per announce). */
  allOk: number;
  /** Mean body bytes of the measured 200 answers. */
  replyBytes: number;
  /** Non-200 answers, by status. */
  statuses: Record<string, number>;
  /** Socket errors and timeouts, by message. */
  errors: Record<string, number>;
  /** Latency of the measured answers (any status), ms: request written to reply complete. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The generator's own CPU seconds (user + sys), the whole run. */
  cpuSeconds: number;
  /** fill: swarm id → `ip:port` of every peer announced there with a 200. */
  sample: Record<string, string[]>;
}

/** A reply slower than this is an error. */
const REPLY_TIMEOUT_MS = 10_000;
/** A reply's head and body bounds (the tracker's reply budget is 512 KiB). */
const HEAD_MAX = 16 * 1024;
const BODY_MAX = 2 * 1024 * 1024;

/** mulberry32: a small seeded PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Swarm i of a seed: 64 hex, random-looking. */
export function swarmIdOf(seed: number, i: number): string {
  return createHash('sha256').update(`kfetch-bench-tracker:${seed}:${i}`).digest('hex');
}

/** Client i's source address: 127.0.1.1 … 127.0.1.250, 127.0.2.1 …; all reach the tracker on 127.0.0.1. */
export function clientAddress(i: number): string {
  return `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}

/** Progress text of announce k of a peer: 0.000001 … 0.999999, canonical (announce-client.ts's progressText). */
function progressOf(k: number): string {
  return (((k % 999_999) + 1) / 1e6).toFixed(6).replace(/0+$/, '');
}

interface Reply {
  status: number;
  bytes: number;
}

/** One keep-alive HTTP/1.1 connection from `localAddress`, one request at a time; reconnects after a failure. */
class Conn {
  private sock: Socket | undefined;
  private buf: Buffer = Buffer.alloc(0);
  private waiting: { resolve: (r: Reply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly localAddress: string,
  ) {}

  request(head: string, body: string): Promise<Reply> {
    const sock = this.sock ?? this.open();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error('reply timed out')), REPLY_TIMEOUT_MS);
      this.waiting = { resolve, reject, timer };
      sock.write(head + body);
    });
  }

  close(): void {
    this.sock?.destroy();
    this.sock = undefined;
  }

  private open(): Socket {
    const s = connect({ host: this.host, port: this.port, localAddress: this.localAddress, noDelay: true });
    this.buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => this.onData(d));
    s.on('error', (err) => this.fail(err));
    s.on('close', () => this.fail(new Error('connection closed')));
    this.sock = s;
    return s;
  }

  private fail(err: Error): void {
    this.close();
    const w = this.waiting;
    if (w === undefined) return;
    this.waiting = undefined;
    clearTimeout(w.timer);
    w.reject(err);
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.buf.length > HEAD_MAX) this.fail(new Error('reply head too long'));
      return;
    }
    const head = this.buf.toString('latin1', 0, end);
    const status = Number(head.slice(9, 12));
    const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (cl === null || !Number.isInteger(status)) return this.fail(new Error('reply without Content-Length or status'));
    const len = Number(cl[1]);
    if (len > BODY_MAX) return this.fail(new Error('reply body too long'));
    if (this.buf.length < end + 4 + len) return;
    if (this.buf.length > end + 4 + len) return this.fail(new Error('bytes after the reply'));
    this.buf = Buffer.alloc(0);
    const closing = /\r\nconnection:\s*close/i.test(head);
    const w = this.waiting;
    this.waiting = undefined;
    if (closing) this.close();
    if (w === undefined) return;
    clearTimeout(w.timer);
    w.resolve({ status, bytes: len });
  }
}

/** Run the load; resolves with its figures. */
export async function runLoad(a: LoadArgs): Promise<LoadResult> {
  const swarmIds = Array.from({ length: a.swarms }, (_, i) => swarmIdOf(a.seed, i));
  const ua = `kfetch/${VERSION}`;
  const r: LoadResult = {
    clients: a.clients,
    seconds: 0,
    requests: 0,
    ok: 0,
    allOk: 0,
    replyBytes: 0,
    statuses: {},
    errors: {},
    p50Ms: NaN,
    p99Ms: NaN,
    maxMs: NaN,
    cpuSeconds: 0,
    sample: {},
  };
  const latencies: number[] = [];
  let bodyBytes = 0;
  const t0 = performance.now();
  const from = t0 + a.warmupSeconds * 1000;
  const end = from + a.seconds * 1000;
  const client = async (i: number): Promise<void> => {
    const rand = prng(a.seed * 100_003 + i);
    const url = new URL(a.urls[i % a.urls.length]!);
    const local = clientAddress(i);
    const conn = new Conn(url.hostname, Number(url.port), local);
    // This client's peers: distinct (swarm, port) pairs.
    const seen = new Set<string>();
    const peers: { swarm: number; port: number; n: number }[] = [];
    while (peers.length < a.peersPerClient) {
      const swarm = Math.floor(rand() * a.swarms);
      const port = 1024 + Math.floor(rand() * 64_512);
      if (seen.has(`${swarm}:${port}`)) continue;
      seen.add(`${swarm}:${port}`);
      peers.push({ swarm, port, n: Math.floor(rand() * 1000) });
    }
    try {
      for (let j = 0; a.mode === 'fill' ? j < peers.length : performance.now() < end; j++) {
        const p = peers[j % peers.length]!;
        const started = j < peers.length;
        const body = `port=${p.port}&progress=${progressOf(p.n++)}${started ? '&event=started' : ''}`;
        const head =
          `POST /peers/${swarmIds[p.swarm]!}.json HTTP/1.1\r\nHost: ${url.host}\r\nUser-Agent: ${ua}\r\n` +
          `Accept: application/json\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n`;
        const sent = performance.now();
        let status = 0;
        let bytes = 0;
        try {
          ({ status, bytes } = await conn.request(head, body));
        } catch (err) {
          const done = performance.now();
          if (a.mode === 'fill' || (done >= from && done < end)) {
            const msg = err instanceof Error ? err.message : String(err);
            r.errors[msg] = (r.errors[msg] ?? 0) + 1;
          }
          await new Promise((res) => setTimeout(res, 50));
          continue;
        }
        const done = performance.now();
        if (status === 200) r.allOk++;
        if (a.mode === 'fill' && status === 200 && p.swarm < a.sampleSwarms) {
          (r.sample[swarmIds[p.swarm]!] ??= []).push(`${local}:${p.port}`);
        }
        if (a.mode === 'flood' && (done < from || done >= end)) continue;
        r.requests++;
        latencies.push(done - sent);
        if (status === 200) {
          r.ok++;
          bodyBytes += bytes;
        }
        else r.statuses[status] = (r.statuses[status] ?? 0) + 1;
      }
    } finally {
      conn.close();
    }
  };
  await Promise.all(Array.from({ length: a.clients }, (_, i) => client(i)));
  r.seconds = a.mode === 'flood' ? a.seconds : (performance.now() - t0) / 1000;
  latencies.sort((x, y) => x - y);
  const q = (p: number): number => (latencies.length === 0 ? NaN : latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!);
  const cpu = process.cpuUsage();
  r.replyBytes = r.ok === 0 ? 0 : bodyBytes / r.ok;
  return { ...r, p50Ms: q(0.5), p99Ms: q(0.99), maxMs: latencies.at(-1) ?? NaN, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = JSON.parse(process.argv[2] ?? '{}') as LoadArgs;
  runLoad(args).then(
    (res) => process.stdout.write(`${JSON.stringify(res)}\n`),
    (err: unknown) => {
      process.stderr.write(`tracker-load: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
