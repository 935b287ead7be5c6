// What the tracker-reply `wire` key buys (issue 14 point 1): a `kfetch get` that learns of one `kfetch seed
// --wire-port 0` only from the tracker. With this build's tracker the reply carries the seeder's `wire`; with a
// tracker that ignores the field (any kfetch tracker from before issue 14: pass its dist/src/cli/main.js with
// --tracker) the client learns the wire only from the seeder's X-Kascade-Wire header. The seeder and the client are
// this build either way. Reports per run the seeder's own account (HTTP 206 replies, bytes over HTTP and over the
// wire) and the get's wall time. `node dist/bench/wire-advert.js [--runs N] [--size MiB] [--block KiB] [--tracker PATH]`.
// Loopback only.

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const BIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

interface Child {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  line: (re: RegExp, ms?: number) => Promise<RegExpMatchArray>;
  exited: () => Promise<number>;
}

function start(bin: string, args: string[], home: string): Child {
  const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, KFETCH_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exit = new Promise<number>((res) => child.on('exit', (code, sig) => res(code ?? (sig === null ? 1 : 128))));
  return {
    child,
    out: () => out,
    err: () => err,
    exited: () => exit,
    line: (re, ms = 20_000) =>
      new Promise((res, rej) => {
        const t0 = Date.now();
        const tick = (): void => {
          const m = out.split('\n').map((l) => l.match(re)).find((x) => x !== null);
          if (m) return res(m);
          if (child.exitCode !== null || Date.now() - t0 > ms) return rej(new Error(`no ${re}: ${out} ${err}`));
          setTimeout(tick, 20);
        };
        tick();
      }),
  };
}

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, size: { type: 'string', default: '16' }, block: { type: 'string', default: '64' }, tracker: { type: 'string' } },
});
const runs = Number(values.runs);
const size = Number(values.size) * 1024 * 1024;
const block = Number(values.block) * 1024;
const trackerBin = values.tracker ?? BIN;

const dir = mkdtempSync(join(tmpdir(), 'kfetch-bench-advert-'));
const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

try {
  const bytes = randomBytes(size);
  const filehash = createHash('sha256').update(bytes).digest('hex');
  const hashes: string[] = [];
  for (let o = 0; o < size; o += block) hashes.push(createHash('md5').update(bytes.subarray(o, Math.min(o + block, size))).digest('hex'));
  const data = join(dir, 'data');
  mkdirSync(data);
  writeFileSync(join(data, 'payload.bin'), bytes);

  const tracker = start(trackerBin, ['tracker', '--port', '0'], join(dir, 'th'));
  children.push(tracker.child);
  const base = (await tracker.line(/^listening on (http:\/\/\S+)$/))[1]!;
  const kascadePath = join(dir, 'payload.json');
  writeFileSync(kascadePath, JSON.stringify({ filename: 'payload.bin', filesize: size, filehash, tracker: `${base}/peers/${filehash}.json`, blockhashes: { [block]: hashes } }));

  console.log(`tracker ${trackerBin === BIN ? 'this build (returns wire)' : trackerBin}; ${size / 1048576} MiB at ${block / 1024} KiB blocks`);
  for (let r = 0; r < runs; r++) {
    const seed = start(BIN, ['--log-json', 'seed', kascadePath, '--data', data, '--port', '0', '--wire-port', '0'], join(dir, `sh${r}`));
    children.push(seed.child);
    await seed.line(/^wire on /);
    await new Promise((res) => setTimeout(res, 1_500)); // its first announce
    const t0 = performance.now();
    const get = start(BIN, ['get', kascadePath, '--out', join(dir, `out${r}`), '--no-serve', '--json', '--timeout', '60'], join(dir, `gh${r}`));
    children.push(get.child);
    const code = await get.exited();
    const ms = performance.now() - t0;
    seed.child.kill('SIGTERM');
    await seed.exited();
    const served = seed
      .err()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg?: string; bytesSent?: number; statuses?: Record<string, number>; wire?: { bytesSent: number } })
      .find((l) => l.msg === 'seed: served');
    const wireBytes = served?.wire?.bytesSent ?? 0;
    console.log(
      JSON.stringify({ run: r, exit: code, ms: Math.round(ms), http206: served?.statuses?.['206'] ?? 0, httpBytes: (served?.bytesSent ?? 0) - wireBytes, wireBytes, statuses: served?.statuses }),
    );
  }
} finally {
  for (const c of children) c.kill('SIGTERM');
}
