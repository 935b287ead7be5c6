// Benchmark of `kfetch create` against coreutils: times md5sum and sha256sum over a generated file, then the built
// kfetch CLI over the same file, and node:crypto's single-core MD5 / SHA-256 rates for reference.
// Run: node dist/bench/create.js [--size MiB] [--block-size BYTES] [--runs N]. Writes bench/results/create-<date>.json.

import { spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const MiB = 1024 * 1024;
const BIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const RESULTS = fileURLToPath(new URL('../../bench/results/', import.meta.url));

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1024' },
    'block-size': { type: 'string', default: '262144' },
    runs: { type: 'string', default: '3' },
  },
});
const sizeMiB = Number(values.size);
const blockSize = values['block-size'];
const runs = Number(values.runs);
if (!Number.isSafeInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${values.runs}`);
if (!Number.isSafeInteger(sizeMiB) || sizeMiB < 1) throw new Error(`--size must be a whole number of MiB, got ${values.size}`);

const dir = mkdtempSync(join(tmpdir(), 'kfetch-bench-create-'));
const file = join(dir, 'bench.bin');
const bytes = sizeMiB * MiB;

/**
 * Time a child process `runs` times; the best time counts (on a shared machine the others measure the neighbours).
 * Throws if a run fails.
 */
function timeRun(cmd: string, args: string[]): { seconds: number; all: number[]; stdout: string } {
  const all: number[] = [];
  let stdout = '';
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 16 * MiB });
    all.push((performance.now() - t0) / 1000);
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
    stdout = r.stdout;
  }
  return { seconds: Math.min(...all), all: all.map((x) => round(x, 3)), stdout };
}

/** Single-core node:crypto rate (MiB/s) over 512 MiB of an 8 MiB buffer, hashed whole (as the workers see it). */
function cryptoRate(algo: 'md5' | 'sha256'): number {
  const buf = randomFillSync(Buffer.allocUnsafe(8 * MiB));
  createHash(algo).update(buf).digest(); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < 64; i++) createHash(algo).update(buf).digest();
  return 512 / ((performance.now() - t0) / 1000);
}

const mbps = (seconds: number): number => bytes / 1e6 / seconds;
const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

try {
  process.stderr.write(`generating ${sizeMiB} MiB in ${file}\n`);
  const fd = openSync(file, 'w');
  const chunk = Buffer.allocUnsafe(8 * MiB);
  for (let done = 0; done < bytes; done += chunk.length) {
    randomFillSync(chunk);
    writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - done));
  }
  closeSync(fd);
  // Nothing privileged (no drop_caches): every run reads the same warm page cache, made warm here first.
  const warm = openSync(file, 'r');
  for (let pos = 0; pos < bytes; pos += chunk.length) readSync(warm, chunk, 0, chunk.length, pos);
  closeSync(warm);

  // The machine may be shared: record how busy it was, since every figure below depends on it.
  const loadBefore = loadavg()[0] ?? 0;
  const md5sum = timeRun('md5sum', [file]);
  const sha256sum = timeRun('sha256sum', [file]);
  const out = join(dir, 'bench.json');
  const kfetch = timeRun(process.execPath, [BIN, 'create', file, '--tracker', 'http://127.0.0.1:7000', '--block-size', blockSize, '-o', out, '--force']);
  const filehash = /filehash ([0-9a-f]{64})/.exec(kfetch.stdout)?.[1];
  const expected = sha256sum.stdout.split(' ')[0];
  if (filehash !== expected) throw new Error(`kfetch filehash ${filehash} != sha256sum ${expected}`);

  const coreutils = md5sum.seconds + sha256sum.seconds;
  const result = {
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), node: process.version, platform: process.platform },
    sizeMiB,
    blockSize: Number(blockSize),
    loadAverage1m: { before: round(loadBefore), after: round(loadavg()[0] ?? 0) },
    cache: 'warm (file just written and read once; caches not dropped)',
    runs,
    md5sum: { seconds: round(md5sum.seconds, 3), MBps: round(mbps(md5sum.seconds), 0), all: md5sum.all },
    sha256sum: { seconds: round(sha256sum.seconds, 3), MBps: round(mbps(sha256sum.seconds), 0), all: sha256sum.all },
    coreutilsBoth: { seconds: round(coreutils, 3), MBps: round(mbps(coreutils), 0) },
    kfetchCreate: { seconds: round(kfetch.seconds, 3), MBps: round(mbps(kfetch.seconds), 0), all: kfetch.all },
    ratio: {
      kfetchOverMd5sumPlusSha256sum: round(kfetch.seconds / coreutils),
      kfetchOverSlowerOfTheTwo: round(kfetch.seconds / Math.max(md5sum.seconds, sha256sum.seconds)),
    },
    nodeCryptoSingleCoreMiBps: { md5: round(cryptoRate('md5'), 0), sha256: round(cryptoRate('sha256'), 0) },
  };
  mkdirSync(RESULTS, { recursive: true });
  const resultFile = join(RESULTS, `create-${result.date.slice(0, 19).replace(/:/g, '-')}.json`);
  writeFileSync(resultFile, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(
    [
      `file ${sizeMiB} MiB, block size ${blockSize}, best of ${runs}, ${result.machine.cores} cores (${result.machine.cpu}), node ${process.version}, load ${result.loadAverage1m.before} -> ${result.loadAverage1m.after}`,
      `md5sum            ${md5sum.seconds.toFixed(2)} s  ${result.md5sum.MBps} MB/s`,
      `sha256sum         ${sha256sum.seconds.toFixed(2)} s  ${result.sha256sum.MBps} MB/s`,
      `md5sum+sha256sum  ${coreutils.toFixed(2)} s  ${result.coreutilsBoth.MBps} MB/s`,
      `kfetch create     ${kfetch.seconds.toFixed(2)} s  ${result.kfetchCreate.MBps} MB/s`,
      `ratio kfetch / (md5sum+sha256sum) = ${result.ratio.kfetchOverMd5sumPlusSha256sum}; kfetch / slower one = ${result.ratio.kfetchOverSlowerOfTheTwo}`,
      `node:crypto single core: md5 ${result.nodeCryptoSingleCoreMiBps.md5} MiB/s, sha256 ${result.nodeCryptoSingleCoreMiBps.sha256} MiB/s`,
      `wrote ${resultFile}`,
      '',
    ].join('\n'),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}

