// The machine's ceilings, measured in the same run as the scenarios: MD5 and SHA-256 per core (node:crypto),
// positional writes with and without fdatasync, and loopback HTTP. A scenario's throughput is compared to the
// ceiling that binds it (see `bindingCeiling`).

import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { createServer, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const MiB = 1024 * 1024;

/** MiB/s figures of this machine, now. */
export interface Ceilings {
  cores: number;
  md5PerCore: number;
  sha256PerCore: number;
  writeNoSync: number;
  /** Positional writes with an fdatasync every 64 MiB and at the end (as the checkpointer does, roughly). */
  writeFdatasync: number;
  loopbackHttp: number;
}

function hashRate(algo: 'md5' | 'sha256', mib: number): number {
  const buf = randomFillSync(Buffer.allocUnsafe(4 * MiB));
  createHash(algo).update(buf).digest();
  const n = Math.max(1, Math.round(mib / 4));
  const t0 = performance.now();
  for (let i = 0; i < n; i++) createHash(algo).update(buf).digest();
  return (n * 4) / ((performance.now() - t0) / 1000);
}

function writeRate(dir: string, mib: number, sync: boolean): number {
  const path = join(dir, `ceiling-write-${sync ? 'sync' : 'nosync'}.bin`);
  const chunk = randomFillSync(Buffer.allocUnsafe(MiB));
  const fd = openSync(path, 'w');
  try {
    const t0 = performance.now();
    for (let i = 0; i < mib; i++) {
      writeSync(fd, chunk, 0, MiB, i * MiB);
      if (sync && (i + 1) % 64 === 0) fdatasyncSync(fd);
    }
    if (sync) fdatasyncSync(fd);
    return mib / ((performance.now() - t0) / 1000);
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
}

/** One client GET of `mib` MiB from a node:http server in this process, both on 127.0.0.1. */
async function loopbackRate(mib: number, signal: AbortSignal): Promise<number> {
  const chunk = randomFillSync(Buffer.allocUnsafe(MiB));
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Length': mib * MiB });
    let i = 0;
    const pump = (): void => {
      while (i < mib) {
        i++;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as AddressInfo).port;
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      const req = get({ host: '127.0.0.1', port, path: '/', signal }, (res) => {
        res.on('data', () => {});
        res.once('end', resolve);
        res.once('error', reject);
      });
      req.once('error', reject);
      req.setTimeout(60_000, () => req.destroy(new Error('loopback ceiling: timed out')));
    });
    return mib / ((performance.now() - t0) / 1000);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

/** Measure every ceiling; `quick` uses smaller amounts (a few seconds in all). */
export async function measureCeilings(dir: string, quick: boolean, signal: AbortSignal): Promise<Ceilings> {
  const hashMiB = quick ? 128 : 512;
  const writeMiB = quick ? 128 : 512;
  return {
    cores: availableParallelism(),
    md5PerCore: hashRate('md5', hashMiB),
    sha256PerCore: hashRate('sha256', hashMiB),
    writeNoSync: writeRate(dir, writeMiB, false),
    writeFdatasync: writeRate(dir, writeMiB, true),
    loopbackHttp: await loopbackRate(quick ? 512 : 2048, signal),
  };
}

/** The ceiling that binds a job: the smallest of the named rates (MiB/s). */
export function bindingCeiling(rates: Record<string, number>): { name: string; MiBps: number } {
  let best = { name: 'none', MiBps: Infinity };
  for (const [name, v] of Object.entries(rates)) if (v < best.MiBps) best = { name, MiBps: v };
  return best;
}

/**
 * Ceilings per kind of job. A download must receive over HTTP, MD5 every block (spread over the cores), write
 * with periodic fdatasync, and SHA-256 the file once at the end (one core; it adds to the time, so it is folded in
 * as a serial stage). `create` reads once and computes MD5 and SHA-256 over all cores.
 */
export function ceilingsFor(kind: 'download' | 'create', c: Ceilings): Record<string, number> {
  if (kind === 'create') {
    return { 'md5+sha256 over all cores': c.cores / (1 / c.md5PerCore + 1 / c.sha256PerCore), 'sha256 one core': c.sha256PerCore };
  }
  const pipe = Math.min(c.loopbackHttp, c.md5PerCore * c.cores, c.writeFdatasync);
  return {
    'loopback http': c.loopbackHttp,
    'md5 all cores': c.md5PerCore * c.cores,
    'write+fdatasync': c.writeFdatasync,
    'pipeline then sha256': 1 / (1 / pipe + 1 / c.sha256PerCore),
  };
}
