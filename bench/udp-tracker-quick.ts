// A quick measure of the UDP tracker against the HTTP one (issue 14 point 4, tracker half): one real `kfetch tracker
// --udp-port 0` child on the memory store, loaded in turn over HTTP (keep-alive connections, the announce client's
// request bytes) and over UDP (one socket per lane, connection id got once), each lane one announce at a time.
// Reports announces/s, the tracker process's CPU µs per announce (/proc/<pid>/stat utime+stime over the run), and
// the application bytes on the wire per announce (request + reply; IP/TCP/UDP headers and TCP ACKs not counted).
// `node dist/bench/udp-tracker-quick.js [--lanes N] [--seconds S] [--swarms N]`. Loopback only. KFETCH_BENCH_PROF=1 writes
// the tracker's V8 CPU profile to /tmp/prof.

import { spawn } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formBody } from '../src/tracker/announce-client.js';
import { VERSION } from '../src/version.js';
import { decodeReply, encodeAnnounceRequest, encodeConnectRequest } from '../src/tracker/udp-wire.js';

const BIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const TICK_US = 1e6 / 100; // USER_HZ on Linux

/** The process's user and system CPU so far, µs. */
function cpuUs(pid: number): { user: number; sys: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { user: Number(fields[11]) * TICK_US, sys: Number(fields[12]) * TICK_US }; // utime, stime (fields 14, 15)
}

const swarmOf = (i: number, swarms: number): string => (i % swarms).toString(16).padStart(64, '0');

interface Load {
  announces: number;
  bytes: number;
  failures: number;
}

/** One HTTP lane: a keep-alive connection, one announce at a time until `until` (performance.now()). */
async function httpLane(port: number, lane: number, until: number, swarms: number, load: Load): Promise<void> {
  const s: Socket = connect(port, '127.0.0.1');
  s.setNoDelay(true);
  await new Promise<void>((r) => s.once('connect', () => r()));
  let buf = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  s.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    wake?.();
  });
  for (let i = 0; performance.now() < until; i++) {
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
          load.bytes += end + 4 + len;
          buf = buf.subarray(end + 4 + len);
          break;
        }
      }
      await new Promise<void>((r) => (wake = r));
    }
    load.announces++;
  }
  s.destroy();
}

/** One UDP lane: its own socket and connection id, one announce at a time (a lost datagram is re-sent after 1 s). */
async function udpLane(port: number, lane: number, until: number, swarms: number, load: Load): Promise<void> {
  const s: UdpSocket = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  let waiting: ((b: Buffer) => void) | undefined;
  s.on('message', (m) => waiting?.(m));
  const exchange = async (d: Buffer): Promise<Buffer> => {
    for (;;) {
      s.send(d, port, '127.0.0.1');
      const got = await new Promise<Buffer | undefined>((r) => {
        const t = setTimeout(() => r(undefined), 1000);
        waiting = (b) => {
          clearTimeout(t);
          r(b);
        };
      });
      if (got !== undefined) return got;
      load.failures++;
    }
  };
  const c = decodeReply(await exchange(encodeConnectRequest(lane)));
  if (!c.ok || c.value.action !== 'connect') throw new Error('udp connect failed');
  const connectionId = c.value.connectionId;
  load.bytes += 32;
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
    const reply = await exchange(d);
    const r = decodeReply(reply);
    if (!r.ok || r.value.action !== 'announce') load.failures++;
    load.bytes += d.length + reply.length;
    load.announces++;
  }
  s.close();
}

export interface Figures {
  announcesPerSecond: number;
  trackerCpuUsPerAnnounce: number;
  /** Of which in the kernel (on loopback the sender's system time includes delivering into the receiver's socket). */
  trackerSysUsPerAnnounce: number;
  bytesPerAnnounce: number;
  announces: number;
  failures: number;
}

async function run(kind: 'http' | 'udp', port: number, pid: number, o: { lanes: number; seconds: number; swarms: number }): Promise<Figures> {
  const load: Load = { announces: 0, bytes: 0, failures: 0 };
  const lane = kind === 'http' ? httpLane : udpLane;
  // Warm-up (fills the swarms, JIT), not counted.
  const warm = { announces: 0, bytes: 0, failures: 0 };
  await Promise.all(Array.from({ length: o.lanes }, (_, i) => lane(port, i, performance.now() + 1000, o.swarms, warm)));
  const cpu0 = cpuUs(pid);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: o.lanes }, (_, i) => lane(port, i, t0 + o.seconds * 1000, o.swarms, load)));
  const secs = (performance.now() - t0) / 1000;
  const cpu1 = cpuUs(pid);
  const cpu = cpu1.user + cpu1.sys - cpu0.user - cpu0.sys;
  return {
    announcesPerSecond: Math.round(load.announces / secs),
    trackerCpuUsPerAnnounce: Math.round((cpu / load.announces) * 10) / 10,
    trackerSysUsPerAnnounce: Math.round(((cpu1.sys - cpu0.sys) / load.announces) * 10) / 10,
    bytesPerAnnounce: Math.round(load.bytes / load.announces),
    announces: load.announces,
    failures: load.failures,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { lanes: { type: 'string', default: '32' }, seconds: { type: 'string', default: '5' }, swarms: { type: 'string', default: '100' } } });
  const o = { lanes: Number(values.lanes), seconds: Number(values.seconds), swarms: Number(values.swarms) };
  const child = spawn(process.execPath, [...(process.env.KFETCH_BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : []), BIN, 'tracker', '--port', '0', '--udp-port', '0', '--min-interval', '0.001'], { stdio: ['ignore', 'pipe', 'inherit'] });
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
    const httpPort = Number(new URL(urls[0]!).port);
    const udpPort = Number(urls[1]!.split(':').pop());
    const http = await run('http', httpPort, child.pid!, o);
    const udp = await run('udp', udpPort, child.pid!, o);
    const result = {
      date: new Date().toISOString(),
      machine: `${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}, loopback`,
      ...o,
      http,
      udp,
      udpCpuVsHttp: Math.round((udp.trackerCpuUsPerAnnounce / http.trackerCpuUsPerAnnounce) * 100) / 100,
      udpBytesVsHttp: Math.round((udp.bytesPerAnnounce / http.bytesPerAnnounce) * 100) / 100,
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    child.kill('SIGTERM');
  }
}

await main();
