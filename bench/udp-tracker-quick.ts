// A measure of the UDP tracker against the HTTP one (issue 14 point 4, tracker half): one real `kfetch tracker
// --udp-port 0` child on the memory store, loaded over HTTP (keep-alive connections, the announce client's request
// bytes) and over UDP (one socket per lane, connection id got once), each lane one announce at a time, the same lane
// count, swarms and reply size (50 peers) for both. Reports announces/s, the tracker process's CPU µs per announce
// (/proc/<pid>/stat utime+stime, all its threads, over the measured window; the load generator is this process), and
// the application bytes on the wire per announce (request + reply; IP/TCP/UDP headers and TCP ACKs not counted, nor
// the one 32-byte connect exchange per lane: a real client connects again each minute or two, as its id expires).
//
// On a shared 2-core box one HTTP run then one UDP run is at the mercy of whatever else runs (single ratios moved
// from 0.32 to 0.57 between runs): so after one warm-up of each, the two alternate over `--rounds` rounds (ABBA:
// HTTP first in even rounds, UDP first in odd ones, so a drift in load favours neither), each round gives a ratio,
// and the result is the median ratio with its spread (min..max) and the load average before and after.
//
// The generator is kept cheap so it starves the tracker less on a loaded box: a UDP reply is checked by its action,
// transaction id and count (every 64th decoded whole), an HTTP reply by its status line (every 8th has its peers
// counted), so `replyPeers` shows both sides answer with the same number of peers.
//
// `node dist/bench/udp-tracker-quick.js [--lanes N] [--seconds S] [--rounds N] [--warm S] [--swarms N] [--only http|udp]`.
// Loopback only. KFETCH_BENCH_PROF=1 writes the tracker's V8 CPU profile to /tmp/prof (with --only, of one protocol);
// V8's sampler counts wall time, so a send that wakes the load generator and is descheduled looks expensive there:
// KFETCH_BENCH_PERF=1 runs the tracker with --perf-basic-prof for `perf record -p <pid>`, which counts CPU only.

import { spawn } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formBody } from '../src/tracker/announce-client.js';
import { VERSION } from '../src/version.js';
import { median } from './measure.js';
import { ACTION, decodeReply, encodeAnnounceRequest, encodeConnectRequest } from '../src/tracker/udp-wire.js';
import { udpExchange } from './udp-exchange.js';

const BIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const TICK_US = 1e6 / 100; // USER_HZ on Linux

/** The process's user and system CPU so far, µs (all threads: GC and JIT helpers count). */
function cpuUs(pid: number): { user: number; sys: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { user: Number(fields[11]) * TICK_US, sys: Number(fields[12]) * TICK_US }; // utime, stime (fields 14, 15)
}

/** Announces each protocol's warm-up makes at least (V8 has optimised the paths by then: measured, see main()). */
const WARM_ANNOUNCES = 5000;

const swarmOf = (i: number, swarms: number): string => (i % swarms).toString(16).padStart(64, '0');

interface Load {
  announces: number;
  bytes: number;
  failures: number;
  /** Replies whose peers were counted, and the peers in them. */
  counted: number;
  peers: number;
}

const newLoad = (): Load => ({ announces: 0, bytes: 0, failures: 0, counted: 0, peers: 0 });

interface Lane {
  /** Announce one at a time until `until` (performance.now()) and at least `atLeast` times. */
  run(until: number, load: Load, atLeast?: number): Promise<void>;
  close(): void;
}

/** Occurrences of `needle` in `b`. */
function count(b: Buffer, needle: string): number {
  let n = 0;
  for (let at = b.indexOf(needle); at >= 0; at = b.indexOf(needle, at + needle.length)) n++;
  return n;
}

/** An HTTP lane: one keep-alive connection for the whole measure. */
async function httpLane(port: number, lane: number, swarms: number): Promise<Lane> {
  const s: Socket = connect(port, '127.0.0.1');
  s.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('error', reject);
  });
  let buf: Buffer = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  s.on('data', (d: Buffer) => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
    wake?.();
  });
  let i = 0;
  return {
    async run(until, load, atLeast = 0) {
      for (const first = i; performance.now() < until || i - first < atLeast; i++) {
        const body = formBody({ port: 1024 + lane * 500 + (i % 500), progress: ((i % 997) + 1) / 1000 });
        const path = `/peers/${swarmOf(i * 7 + lane, swarms)}.json`;
        // What undici sends for announce-client.ts's request (header names as it writes them).
        const req =
          `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nconnection: keep-alive\r\ncontent-type: application/x-www-form-urlencoded\r\n` +
          `accept: application/json\r\nuser-agent: kfetch/${VERSION}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
        s.write(req);
        load.bytes += Buffer.byteLength(req);
        for (;;) {
          const end = buf.indexOf('\r\n\r\n');
          if (end >= 0) {
            const head = buf.subarray(0, end).toString('latin1');
            const len = Number(/content-length: *([0-9]+)/i.exec(head)?.[1] ?? 0);
            if (buf.length >= end + 4 + len) {
              if (!head.startsWith('HTTP/1.1 200')) load.failures++;
              else if (i % 8 === 0) {
                load.counted++;
                load.peers += count(buf.subarray(end + 4, end + 4 + len), '"port":');
              }
              load.bytes += end + 4 + len;
              buf = buf.subarray(end + 4 + len);
              break;
            }
          }
          await new Promise<void>((r) => (wake = r));
        }
        load.announces++;
      }
    },
    close: () => s.destroy(),
  };
}

/** A UDP lane: its own socket and connection id for the whole measure (a lost datagram is re-sent after 1 s). */
async function udpLane(port: number, lane: number, swarms: number): Promise<Lane> {
  const s: UdpSocket = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const send = udpExchange(s, port);
  const exchange = (d: Buffer, load: Load): Promise<Buffer> => send(d, () => load.failures++);
  const c = decodeReply(await exchange(encodeConnectRequest(lane), newLoad()));
  if (!c.ok || c.value.action !== 'connect') throw new Error('udp connect failed');
  const connectionId = c.value.connectionId;
  let i = 0;
  return {
    async run(until, load, atLeast = 0) {
      for (const first = i; performance.now() < until || i - first < atLeast; i++) {
        const transactionId = (lane << 24) | (i & 0xffffff);
        const d = encodeAnnounceRequest({
          connectionId,
          transactionId: transactionId >>> 0,
          swarmId: swarmOf(i * 7 + lane, swarms),
          port: 1024 + lane * 500 + (i % 500),
          progress: ((i % 997) + 1) * 1000,
          event: 'none',
          numWant: 50,
        });
        const reply = await exchange(d, load);
        // The action, transaction id and count from the bytes; every 64th reply decoded whole.
        if (reply.length < 14 || reply.readUInt32BE(0) !== ACTION.announce || reply.readUInt32BE(4) !== transactionId >>> 0) load.failures++;
        else if (i % 64 === 0) {
          const r = decodeReply(reply);
          if (!r.ok || r.value.action !== 'announce') load.failures++;
          else {
            load.counted++;
            load.peers += r.value.peers.length;
          }
        }
        load.bytes += d.length + reply.length;
        load.announces++;
      }
    },
    close: () => s.close(),
  };
}

/** One protocol over the measure: medians over the rounds, bytes and failures over all of them. */
export interface Figures {
  announcesPerSecond: number;
  trackerCpuUsPerAnnounce: number;
  /** Of which in the kernel (on loopback the sender's system time includes delivering into the receiver's socket). */
  trackerSysUsPerAnnounce: number;
  bytesPerAnnounce: number;
  /** Mean peers per reply (a sample of the replies). */
  replyPeers: number;
  announces: number;
  failures: number;
}

/** One measured run of one protocol. */
interface Run {
  announcesPerSecond: number;
  cpuUs: number;
  sysUs: number;
  load: Load;
}

async function measure(lanes: Lane[], pid: number, seconds: number, atLeast = 0): Promise<Run> {
  const load = newLoad();
  const cpu0 = cpuUs(pid);
  const t0 = performance.now();
  await Promise.all(lanes.map((l) => l.run(t0 + seconds * 1000, load, atLeast)));
  const secs = (performance.now() - t0) / 1000;
  const cpu1 = cpuUs(pid);
  return {
    announcesPerSecond: load.announces / secs,
    cpuUs: (cpu1.user + cpu1.sys - cpu0.user - cpu0.sys) / load.announces,
    sysUs: (cpu1.sys - cpu0.sys) / load.announces,
    load,
  };
}

const r1 = (x: number): number => Math.round(x * 10) / 10;
const r2 = (x: number): number => Math.round(x * 100) / 100;

function figures(runs: Run[]): Figures {
  const sum = (f: (l: Load) => number): number => runs.reduce((a, r) => a + f(r.load), 0);
  const announces = sum((l) => l.announces);
  return {
    announcesPerSecond: Math.round(median(runs.map((r) => r.announcesPerSecond))),
    trackerCpuUsPerAnnounce: r1(median(runs.map((r) => r.cpuUs))),
    trackerSysUsPerAnnounce: r1(median(runs.map((r) => r.sysUs))),
    bytesPerAnnounce: Math.round(sum((l) => l.bytes) / announces),
    replyPeers: r1(sum((l) => l.peers) / Math.max(1, sum((l) => l.counted))),
    announces,
    failures: sum((l) => l.failures),
  };
}

/** What the script prints (one JSON object) and the bench scenario reads. */
export interface Result {
  date: string;
  machine: string;
  /** os.loadavg() (1, 5, 15 min) before the first and after the last run. */
  loadAverage: { before: number[]; after: number[] };
  lanes: number;
  seconds: number;
  rounds: number;
  swarms: number;
  http: Figures;
  udp: Figures;
  /** Each round's UDP/HTTP CPU ratio, in round order. */
  roundRatios: number[];
  /** Each round's tracker CPU µs per announce, per protocol, in round order. */
  roundCpuUs: { http: number[]; udp: number[] };
  /** The median of roundRatios, and its spread. */
  udpCpuVsHttp: number;
  udpCpuVsHttpMin: number;
  udpCpuVsHttpMax: number;
  udpBytesVsHttp: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      lanes: { type: 'string', default: '32' },
      seconds: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '5' },
      warm: { type: 'string', default: '1' },
      swarms: { type: 'string', default: '100' },
      only: { type: 'string' },
    },
  });
  const o = { lanes: Number(values.lanes), seconds: Number(values.seconds), rounds: Number(values.rounds), swarms: Number(values.swarms) };
  const warm = Number(values.warm);
  for (const [k, v] of Object.entries({ ...o, warm })) if (!(v > 0) || v > 3600) throw new Error(`--${k} must be a number in (0, 3600]`);
  if (values.only !== undefined && values.only !== 'http' && values.only !== 'udp') throw new Error('--only must be http or udp');
  const kinds = values.only === undefined ? (['http', 'udp'] as const) : ([values.only] as const);
  const child = spawn(process.execPath, [...(process.env.KFETCH_BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : []), ...(process.env.KFETCH_BENCH_PERF ? ['--perf-basic-prof'] : []), BIN, 'tracker', '--port', '0', '--udp-port', '0', '--min-interval', '0.001'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lanes: Record<'http' | 'udp', Lane[]> = { http: [], udp: [] };
  try {
    const urls = await new Promise<string[]>((resolve, reject) => {
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const m = [...out.matchAll(/^listening on (\S+)$/gm)].map((x) => x[1]!);
        if (m.length === 2) resolve(m);
      });
      child.once('exit', (code) => reject(new Error(`tracker exited ${code}`)));
    });
    const port = { http: Number(new URL(urls[0]!).port), udp: Number(urls[1]!.split(':').pop()) };
    const loadBefore = loadavg();
    // Warm-up, not counted, of each protocol: `warm` seconds and at least WARM_ANNOUNCES (the JIT: with a time alone,
    // on a loaded box the HTTP path was still getting cheaper three half-second rounds later, 500 -> 180 µs, which
    // flattered UDP), and the swarms filled to their 64 peers (the per-address cap: every lane announces from
    // 127.0.0.1) so every measured reply carries 50 peers. Lane L's i-th announce goes to swarm (7i + L) mod S from
    // port i mod 500: after 2·S announces a lane has given each swarm two ports, so 32 lanes give each 64.
    const perLane = Math.max(Math.ceil(WARM_ANNOUNCES / o.lanes), Math.ceil(64 / o.lanes) * o.swarms + o.swarms);
    for (const k of [...kinds].reverse()) {
      const make = k === 'http' ? httpLane : udpLane;
      lanes[k] = await Promise.all(Array.from({ length: o.lanes }, (_, i) => make(port[k], i, o.swarms)));
      await measure(lanes[k], child.pid!, warm, perLane);
    }
    const runs: Record<'http' | 'udp', Run[]> = { http: [], udp: [] };
    const roundRatios: number[] = [];
    for (let r = 0; r < o.rounds; r++) {
      for (const k of r % 2 === 0 ? kinds : [...kinds].reverse()) runs[k].push(await measure(lanes[k], child.pid!, o.seconds));
      if (kinds.length === 2) roundRatios.push(r2(runs.udp[r]!.cpuUs / runs.http[r]!.cpuUs));
    }
    const loadAfter = loadavg();
    const http = runs.http.length > 0 ? figures(runs.http) : undefined;
    const udp = runs.udp.length > 0 ? figures(runs.udp) : undefined;
    const result = {
      date: new Date().toISOString(),
      machine: `${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}, loopback`,
      loadAverage: { before: loadBefore.map(r2), after: loadAfter.map(r2) },
      ...o,
      http,
      udp,
      roundRatios,
      roundCpuUs: { http: runs.http.map((r) => r1(r.cpuUs)), udp: runs.udp.map((r) => r1(r.cpuUs)) },
      ...(roundRatios.length > 0
        ? {
            udpCpuVsHttp: r2(median(roundRatios)),
            udpCpuVsHttpMin: Math.min(...roundRatios),
            udpCpuVsHttpMax: Math.max(...roundRatios),
            udpBytesVsHttp: r2(udp!.bytesPerAnnounce / http!.bytesPerAnnounce),
          }
        : {}),
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    for (const l of [...lanes.http, ...lanes.udp]) l.close();
    child.kill('SIGTERM');
  }
}

await main();
