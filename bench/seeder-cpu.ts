// One server's CPU per GiB served (issue 11 item 4): a `kfetch seed --trust`, nginx (sendfile, when installed) and
// the bench's plain Node static server each serve the same file to one lean in-process client — raw keep-alive
// sockets asking aligned ranges, the body counted and dropped — so the client's CPU stays out of the figure. The
// server's user and system CPU come from /proc (whole process tree: nginx's master and workers) before and after.
// Run: node dist/bench/seeder-cpu.js [--size 512] [--passes 2] [--conns 4] [--range-kib 1024] [--only kfetch,nginx,node]
// [--seed-node-args='--cpu-prof --cpu-prof-dir=DIR'] (Node flags for the seeder alone, e.g. to profile it)
// [--baseline OTHER/dist/src/cli/main.js --rounds 3] (another build measured alternately with this one)
// [--warmup 32] (MiB fetched before measuring) [--client get] (kfetch get downloads the file `passes` times instead
// of the lean client: the real downloader's requests, its CPU still out of the figure).
// Prints one line per server and cleans up everything it started (children, temp dir).

import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { spawnListening, stopChildren } from '../src/cli/local-swarm.js';
import { cpuOf, killAllChildren, trackChild } from './measure.js';
import { findAnchors, KFETCH, makeKascade, MiB, startKfetch } from './scenarios/common.js';
import { startHttpServers } from './scenarios/servers.js';

interface Served {
  bytes: number;
  seconds: number;
  user: number;
  sys: number;
  /** The first process's main thread alone (the rest: libuv's pool, V8's GC and compiler threads; nginx's workers). */
  mainThread: { user: number; sys: number };
}

/** CPU seconds of `pid`'s main thread and of all its other threads, from /proc/<pid>/task. */
function threadCpu(pid: number): { main: { user: number; sys: number }; others: { user: number; sys: number } } {
  const out = { main: { user: 0, sys: 0 }, others: { user: 0, sys: 0 } };
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const s = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      const o = t === String(pid) ? out.main : out.others;
      o.user += Number(f[11]) / 100; // utime, stime: fields 14 and 15 of stat (USER_HZ ticks)
      o.sys += Number(f[12]) / 100;
    }
  } catch {
    // gone
  }
  return out;
}

/**
 * Fetch every `range`-byte slice of [0, size) `passes` times over `conns` keep-alive connections to 127.0.0.1:port
 * at `/<id>`, one request at a time per connection; rejects on any status but 206 or a wrong body length.
 */
function fetchAll(port: number, id: string, size: number, range: number, passes: number, conns: number): Promise<number> {
  const total = Math.ceil(size / range) * passes;
  let next = 0;
  let received = 0;
  return new Promise((resolve, reject) => {
    let open = conns;
    const sockets: Socket[] = [];
    const fail = (err: Error): void => {
      for (const s of sockets) s.destroy();
      reject(err);
    };
    const one = (): void => {
      const s = connect(port, '127.0.0.1');
      sockets.push(s);
      let head = '';
      let body = -1; // bytes of body still to come; -1 while reading the head
      let want = 0;
      const ask = (): boolean => {
        if (next >= total) return false;
        const first = ((next++ % Math.ceil(size / range)) * range) % size;
        const last = Math.min(first + range, size) - 1;
        want = last - first + 1;
        head = '';
        body = -1;
        s.write(`GET /${id} HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: bytes=${first}-${last}\r\n\r\n`);
        return true;
      };
      const finishOne = (): void => {
        received += want;
        if (!ask()) {
          s.end();
          if (--open === 0) resolve(received);
        }
      };
      s.on('data', (chunk: Buffer) => {
        let off = 0;
        while (off < chunk.length) {
          if (body < 0) {
            const end = chunk.indexOf('\r\n\r\n', off);
            head += chunk.toString('latin1', off, end < 0 ? chunk.length : end + 4);
            if (end < 0) return;
            off = end + 4;
            const status = /^HTTP\/1\.1 (\d+)/.exec(head)?.[1];
            const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? NaN);
            if (status !== '206' || len !== want) return fail(new Error(`unexpected response: ${head.split('\r\n')[0]} length ${len}, want ${want}`));
            body = len;
          }
          const take = Math.min(body, chunk.length - off);
          body -= take;
          off += take;
          if (body === 0) finishOne();
        }
      });
      s.on('error', fail);
      s.once('connect', () => void ask());
    };
    for (let i = 0; i < conns; i++) one();
  });
}

/** `kfetch get` of the kascade into a fresh directory, `passes` times (the real downloader as the client). */
function getAll(kascade: string, dir: string, size: number, passes: number): number {
  for (let i = 0; i < passes; i++) {
    const out = join(dir, `get-${i}`);
    const home = join(dir, `home-get-${i}`);
    const r = spawnSync(KFETCH, ['get', kascade, '--out', out, '--json', '--timeout', '60', '--home', home], { encoding: 'utf8', timeout: 600_000 });
    rmSync(out, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
    if (r.status !== 0) throw new Error(`kfetch get failed (${r.status}): ${r.stderr.slice(-500)}`);
  }
  return size * passes;
}

async function measure(
  pids: () => number[],
  port: number,
  id: string,
  size: number,
  range: number,
  passes: number,
  conns: number,
  warmup: number,
  get?: () => number,
): Promise<Served> {
  // A warm-up (page cache, V8's optimising compiler), not counted.
  if (warmup > 0) await fetchAll(port, id, Math.min(size, warmup), range, 1, conns);
  const main = pids()[0]!;
  const threadsBefore = threadCpu(main);
  const before = cpuOf(pids());
  const t0 = performance.now();
  const bytes = get !== undefined ? get() : await fetchAll(port, id, size, range, passes, conns);
  const seconds = (performance.now() - t0) / 1000;
  const after = cpuOf(pids());
  const threadsAfter = threadCpu(main);
  const mainThread = { user: threadsAfter.main.user - threadsBefore.main.user, sys: threadsAfter.main.sys - threadsBefore.main.sys };
  return { bytes, seconds, user: after.user - before.user, sys: after.sys - before.sys, mainThread };
}

function line(name: string, s: Served): string {
  const gib = s.bytes / (1024 * MiB);
  const per = (x: number): string => (x / gib).toFixed(2);
  return (
    `${name.padEnd(22)} ${per(s.user + s.sys)} CPU-s/GiB served (user ${per(s.user)}, sys ${per(s.sys)}); ` +
    `main thread ${per(s.mainThread.user + s.mainThread.sys)} (user ${per(s.mainThread.user)}, sys ${per(s.mainThread.sys)}); ` +
    `${(s.bytes / MiB).toFixed(0)} MiB in ${s.seconds.toFixed(2)} s (${(s.bytes / MiB / s.seconds).toFixed(0)} MiB/s)`
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: '512' },
      passes: { type: 'string', default: '2' },
      conns: { type: 'string', default: '4' },
      'range-kib': { type: 'string', default: '1024' },
      only: { type: 'string', default: 'kfetch,nginx,node' },
      /** Node flags for the seeder alone, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" (it is stopped with SIGTERM). */
      'seed-node-args': { type: 'string', default: '' },
      /** Another build's dist/src/cli/main.js, measured alternately with this one (A/B on a busy machine). */
      baseline: { type: 'string', default: '' },
      /** Rounds of the kfetch measurements (alternated with the baseline's). */
      rounds: { type: 'string', default: '1' },
      /** The client: `lean` (raw keep-alive sockets, the default) or `get` (kfetch get; the seeders only). */
      client: { type: 'string', default: 'lean' },
      /** MiB fetched (lean client) before measuring, not counted. */
      warmup: { type: 'string', default: '32' },
    },
  });
  const size = Number(values.size) * MiB;
  const passes = Number(values.passes);
  const conns = Number(values.conns);
  const range = Number(values['range-kib']) * 1024;
  const warmup = Number(values.warmup) * MiB;
  const only = new Set(values.only.split(','));
  const dir = mkdtempSync(join(tmpdir(), 'kfetch-seeder-cpu-'));
  const stops: (() => void)[] = [];
  const cleanup = (): void => {
    for (const s of stops) s();
    killAllChildren();
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    const file = join(dir, 'data.bin');
    const fd = openSync(file, 'w');
    const chunk = Buffer.allocUnsafe(8 * MiB);
    for (let done = 0; done < size; done += chunk.length) writeSync(fd, randomFillSync(chunk), 0, Math.min(chunk.length, size - done));
    closeSync(fd);
    const how = values.client === 'get' ? 'kfetch get as the client' : `${conns} keep-alive connections, ${range / 1024} KiB ranges`;
    console.log(`seeder-cpu: ${values.size} MiB file × ${passes} passes, ${how}, ${values.warmup} MiB warm-up`);
    if (only.has('kfetch') || values.baseline !== '') {
      const tracker = await startKfetch(['tracker', '--port', '0', '--host', '127.0.0.1'], join(dir, 'home-tracker'));
      stops.push(() => tracker.proc.kill('SIGKILL'));
      const k = makeKascade(file, join(dir, 'data.kascade'), tracker.url);
      const nodeArgs = values['seed-node-args'].split(' ').filter((a) => a !== '');
      const builds: [string, string][] = [];
      if (values.baseline !== '') builds.push(['kfetch (baseline)', values.baseline]);
      if (only.has('kfetch')) builds.push(['kfetch seed --trust', KFETCH]);
      for (let round = 0; round < Number(values.rounds); round++) {
        for (const [name, main] of builds) {
          const home = join(dir, 'home-seed');
          rmSync(home, { recursive: true, force: true });
          const args = ['seed', k.path, '--data', dir, '--port', '0', '--trust', '--home', home];
          // The bin itself unless Node flags are asked for (its shebang carries kfetch's own V8 flags).
          const seeder = await spawnListening(process.execPath, ['--max-semi-space-size=4', ...nodeArgs, main, ...args], { KFETCH_HOME: home });
          trackChild(seeder.proc);
          if (nodeArgs.length > 0) console.log(`seeder pid ${seeder.proc.pid}`);
          stops.push(() => seeder.proc.kill('SIGKILL'));
          const port = Number(new URL(seeder.url).port);
          const get = values.client === 'get' ? (): number => getAll(k.path, dir, size, passes) : undefined;
          console.log(line(name, await measure(() => [seeder.proc.pid!], port, k.filehash, size, range, passes, conns, warmup, get)));
          await stopChildren([seeder]); // SIGTERM first: a --cpu-prof profile is written on a clean exit
        }
      }
      tracker.proc.kill('SIGKILL');
    }
    const filehash = 'f'.repeat(64); // the plain servers serve the file at any fixed name
    for (const kind of ['nginx', 'node'] as const) {
      if (!only.has(kind)) continue;
      const nginx = kind === 'nginx' ? findAnchors().nginx : undefined;
      if (kind === 'nginx' && nginx === undefined) {
        console.log('nginx                  skipped: not installed (apt-get install nginx-light)');
        continue;
      }
      const servers = await startHttpServers(join(dir, kind), file, filehash, 1, nginx);
      stops.push(() => servers.stop());
      const name = kind === 'nginx' ? 'nginx (sendfile)' : 'node static server';
      console.log(line(name, await measure(() => servers.pids(), servers.ports[0]!, filehash, size, range, passes, conns, warmup)));
      servers.stop();
    }
  } finally {
    cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  killAllChildren();
  process.exit(1);
});
