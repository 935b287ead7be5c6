// Peer wire vs HTTP from one seeder on loopback (issue 14 point 4, the small first measure): a block server with
// its wire on runs in a child process (so its CPU is its own), and this process fetches single blocks (or runs of
// blocks) with `--conc` requests in flight through the HTTP range client and through the wire client, into reused
// buffers (nothing verified or written: the transfer path alone). Prints throughput and CPU-s per GiB of each end.
// Run: node dist/bench/wire-vs-http.js [--size-mib 256] [--conc 32] [--bytes-4k-mib 128] [--bytes-256k-mib 1024]
// [--wire-conns 4] [--only http4k,wire4k,wire4k64,http64k,wire64k,http256k,wire256k] [--wire-first] (each size's wire row before its HTTP row) [--seed-node-args='--cpu-prof --cpu-prof-dir=DIR']
// [--json] (one JSON object on the last line: the rows, for bench/scenarios/peer-wire.ts)

import { fork, type ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { parseKascade } from '../src/kascade/parse.js';
import { RangeClient } from '../src/peer/range-client.js';
import { WireClient } from '../src/peer/wire-client.js';
import { startBlockServer } from '../src/server/block-server.js';
import { Library, VerifiedServedFile } from '../src/server/library.js';
import { openDataFileToSeed } from '../src/store/data-file.js';
import { Bitfield } from '../src/util/bitfield.js';

const MiB = 1024 * 1024;
const SIZES = [4096, 65536, 262144];

/** One measured row, as `--json` prints it (bench/scenarios/peer-wire.ts reads it). */
export interface WireRow {
  path: string;
  blockSize: number;
  perRequest: number;
  mibPerSec: number;
  requestsPerSec: number;
  clientCpuPerGiB: number;
  seederCpuPerGiB: number;
}

interface Msg {
  kind: 'ready' | 'cpu';
  port?: number;
  wirePort?: number | undefined;
  cpu?: NodeJS.CpuUsage;
}

/** A random file of `size` bytes and its 2015 kascade JSON offering SIZES. */
function makeFile(path: string, size: number): string {
  const fd = openSync(path, 'w');
  const whole = createHash('sha256');
  const hashes: Record<string, string[]> = Object.fromEntries(SIZES.map((b) => [String(b), []]));
  const chunk = Buffer.allocUnsafe(4 * MiB); // a multiple of every block size
  for (let off = 0; off < size; off += chunk.length) {
    const c = chunk.subarray(0, Math.min(chunk.length, size - off));
    randomFillSync(c);
    writeSync(fd, c, 0, c.length, off);
    whole.update(c);
    for (const b of SIZES) for (let i = 0; i < c.length; i += b) hashes[String(b)]!.push(createHash('md5').update(c.subarray(i, i + b)).digest('hex'));
  }
  closeSync(fd);
  return JSON.stringify({ filename: 'payload.bin', filesize: size, filehash: whole.digest('hex'), tracker: 'http://127.0.0.1:9/x', blockhashes: hashes });
}

/** Child: serve the file with the wire on; answer 'cpu' with process.cpuUsage(). */
async function seeder(path: string, jsonPath: string, size: number): Promise<void> {
  const k = parseKascade(readFileSync(jsonPath, 'utf8'), 'bench.json');
  const data = await openDataFileToSeed(path, size);
  const library = new Library();
  library.add(new VerifiedServedFile(k, data, Bitfield.full(k.geometry(4096).count), 4096));
  const s = await startBlockServer({ library, host: '127.0.0.1', port: 0, log: pino({ level: 'silent' }), wirePort: 0 });
  process.on('message', (m: string) => {
    if (m === 'cpu') process.send!({ kind: 'cpu', cpu: process.cpuUsage() } satisfies Msg);
    if (m === 'stop') void s.close().then(() => process.exit(0));
  });
  process.send!({ kind: 'ready', port: s.port, wirePort: s.wirePort } satisfies Msg);
}

function ask(child: ChildProcess, what: string): Promise<Msg> {
  return new Promise((resolve) => {
    child.once('message', (m: Msg) => resolve(m));
    child.send(what);
  });
}

const cpuS = (a: NodeJS.CpuUsage, b: NodeJS.CpuUsage): number => (b.user - a.user + b.system - a.system) / 1e6;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'size-mib': { type: 'string', default: '256' },
      conc: { type: 'string', default: '32' },
      'wire-conns': { type: 'string', default: '4' },
      /** Only these rows (comma-separated: http4k, wire4k, wire4k64, http256k, wire256k). */
      only: { type: 'string', default: 'http4k,wire4k,wire4k64,http64k,wire64k,http256k,wire256k' },
      'wire-first': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      /** Node flags for the seeder child alone (e.g. '--cpu-prof --cpu-prof-dir=DIR'). */
      'seed-node-args': { type: 'string', default: '' },
      'bytes-4k-mib': { type: 'string', default: '128' },
      'bytes-256k-mib': { type: 'string', default: '1024' },
    },
  });
  const size = Number(values['size-mib']) * MiB;
  const conc = Number(values.conc);
  const dir = mkdtempSync(join(tmpdir(), 'kfetch-wire-bench-'));
  let child: ChildProcess | undefined;
  try {
    const p = { path: join(dir, 'payload.bin') };
    const json = makeFile(p.path, size);
    const k = parseKascade(json, 'bench.json');
    const jsonPath = join(dir, 'payload.json');
    writeFileSync(jsonPath, json);
    const execArgv = values['seed-node-args'].split(' ').filter((a) => a !== '');
    child = fork(fileURLToPath(import.meta.url), ['seed', p.path, jsonPath, String(size)], { stdio: 'inherit', execArgv });
    const ready = await new Promise<Msg>((r) => child!.once('message', r));
    const httpPeer = `127.0.0.1:${ready.port}`;
    const wirePeer = `127.0.0.1:${ready.wirePort}`;
    console.log(`wire vs HTTP, one seeder (child process), loopback, ${conc} requests in flight, ${size / MiB} MiB file (page cache)`);
    console.log('path | block | blocks/req | MiB/s | req/s | client CPU-s/GiB | seeder CPU-s/GiB');

    type Fetch = (first: number, count: number, blockSize: number, into: Buffer) => Promise<void>;
    const http = new RangeClient({ connectionsPerPeer: conc });
    const wire = new WireClient({ connectionsPerPeer: Number(values['wire-conns']) });
    const fetchers: Record<string, Fetch> = {
      http: (first, count, bs, into) => {
        const a = first * bs;
        const b = Math.min(size, (first + count) * bs) - 1;
        return http.fetchRange(httpPeer, k.swarmId, a, b, into, AbortSignal.timeout(30_000));
      },
      wire: (first, count, bs, into) =>
        wire.fetchBlocks(wirePeer, { fileId: k.filehash, blockSize: bs, firstBlock: first, count, length: Math.min(size, (first + count) * bs) - first * bs }, into, AbortSignal.timeout(30_000)),
    };

    const rows: WireRow[] = [];
    const measure = async (name: string, blockSize: number, perReq: number, totalBytes: number): Promise<void> => {
      const fetch = fetchers[name]!;
      const blocks = size / blockSize;
      const reqBytes = blockSize * perReq;
      const requests = Math.floor(totalBytes / reqBytes);
      let next = 0;
      // Warm up (connections, JIT) with a few hundred requests, not measured.
      const loop = async (n: number, counter: { i: number }): Promise<void> => {
        const into = Buffer.allocUnsafe(reqBytes);
        while (counter.i < n) {
          const r = counter.i++;
          const first = ((r * 7919) % Math.floor(blocks / perReq)) * perReq;
          await fetch(first, perReq, blockSize, into);
        }
      };
      const warm = { i: 0 };
      await Promise.all(Array.from({ length: conc }, () => loop(Math.min(500, requests), warm)));
      const s0 = (await ask(child!, 'cpu')).cpu!;
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const counter = { i: next };
      await Promise.all(Array.from({ length: conc }, () => loop(requests, counter)));
      const secs = (performance.now() - t0) / 1000;
      const c1 = process.cpuUsage();
      const s1 = (await ask(child!, 'cpu')).cpu!;
      next = counter.i;
      const gib = (requests * reqBytes) / (1024 * MiB);
      rows.push({
        path: name,
        blockSize,
        perRequest: perReq,
        mibPerSec: (requests * reqBytes) / MiB / secs,
        requestsPerSec: requests / secs,
        clientCpuPerGiB: cpuS(c0, c1) / gib,
        seederCpuPerGiB: cpuS(s0, s1) / gib,
      });
      console.log(
        [name, `${blockSize / 1024} KiB`, perReq, ((requests * reqBytes) / MiB / secs).toFixed(0), (requests / secs).toFixed(0), (cpuS(c0, c1) / gib).toFixed(2), (cpuS(s0, s1) / gib).toFixed(2)].join(' | '),
      );
    };

    const b4 = Number(values['bytes-4k-mib']) * MiB;
    const b256 = Number(values['bytes-256k-mib']) * MiB;
    const only = new Set(values.only.split(','));
    const order = values['wire-first'] ? ['wire', 'http'] : ['http', 'wire'];
    for (const name of order) if (only.has(`${name}4k`)) await measure(name, 4096, 1, b4);
    if (only.has('wire4k64')) await measure('wire', 4096, 64, b256);
    for (const name of order) if (only.has(`${name}64k`)) await measure(name, 65536, 1, b256);
    for (const name of order) if (only.has(`${name}256k`)) await measure(name, 262144, 1, b256);
    if (values.json) console.log(JSON.stringify({ sizeMiB: size / MiB, conc, rows }));
    wire.close();
    await http.close();
  } finally {
    child?.send('stop');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'seed') await seeder(process.argv[3]!, process.argv[4]!, Number(process.argv[5]));
else await main();
