// `peer-wire-swarm` (issue 14 point 4, the end-to-end half): a real `kfetch get` (the built bin, a child process)
// against 1 and against 4 `kfetch seed --wire-port 0` children on loopback, for files of 4 KiB, 64 KiB and 256 KiB
// blocks, over the peer wire (the default) and with --no-wire (HTTP), wire and HTTP runs alternating (the order
// flips each round). Every block is MD5-checked, written and checkpointed, and the file's SHA-256 checked: the whole
// download, not the transfer path alone (that is `peer-wire`). Default request sizing everywhere, and single-block
// requests (`--max-range-bytes <block size>`) at 4 KiB. Each run's `done` event says how its bytes came
// (`transport`): a wire run that did not use the wire, or an HTTP run that touched it, fails the scenario. Targets:
// the wire at 4 KiB single blocks ≥ 2 × HTTP's throughput; at 256 KiB not worse (≥ 0.95 ×), from 1 and 4 seeders.

import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Child } from '../../src/cli/local-swarm.js';
import { stopChildren } from '../../src/cli/local-swarm.js';
import { cpuOf, median } from '../measure.js';
import { round, type Row, type Target } from '../report.js';
import {
  kfetchMeasured, makeKascade, rowFrom, servedPerGiB, startKfetch, testFile,
  type KfetchMeasured, type ScenarioContext, type ScenarioResult,
} from './common.js';

/** The `transport` of a `done` event (src/peer/transport-counts.ts). */
export interface DoneTransport {
  wireBytes: number;
  httpBytes: number;
  wireRequests: number;
  httpRequests: number;
  wireFallbacks: number;
}

const KEYS = ['wireBytes', 'httpBytes', 'wireRequests', 'httpRequests', 'wireFallbacks'] as const;

/** The done event's `transport` and `seconds` from a `--json` line, or undefined for any other line. */
export function doneOf(line: string): { transport?: DoneTransport; seconds: number; startup?: number } | undefined {
  if (!line.startsWith('{') || !line.includes('"done"')) return undefined;
  try {
    const e = JSON.parse(line) as { event?: unknown; seconds?: unknown; transport?: Record<string, unknown>; cpu?: { startup?: unknown } };
    if (e.event !== 'done' || typeof e.seconds !== 'number') return undefined;
    const t = e.transport;
    const ok = typeof t === 'object' && t !== null && KEYS.every((k) => Number.isSafeInteger(t[k]) && (t[k] as number) >= 0);
    const startup = e.cpu?.startup;
    return {
      seconds: e.seconds,
      ...(ok ? { transport: Object.fromEntries(KEYS.map((k) => [k, t[k]])) as unknown as DoneTransport } : {}),
      ...(typeof startup === 'number' ? { startup } : {}),
    };
  } catch {
    return undefined;
  }
}

/**
 * Why a run's transport is not what was asked (a string), or undefined when it is. A wire run must have taken the
 * file over the wire: at least its size in wire bytes, and no more than 1% of what it received over HTTP (an
 * endgame copy or a run asked again after a connection we abandoned may fall back); an HTTP run none of it.
 */
export function transportProblem(wire: boolean, t: DoneTransport | undefined, size: number): string | undefined {
  if (t === undefined) return 'its done event has no transport';
  const all = t.wireBytes + t.httpBytes;
  if (all < size) return `received ${all} bytes of ${size}`;
  if (!wire) return t.wireBytes === 0 && t.wireRequests === 0 ? undefined : `--no-wire, yet ${t.wireBytes} bytes came over the wire`;
  if (t.wireBytes < size) return `only ${t.wireBytes} of ${size} bytes came over the wire (${t.httpBytes} over HTTP, ${t.wireFallbacks} fallbacks)`;
  if (t.httpBytes > all * 0.01) return `${t.httpBytes} bytes came over HTTP (${t.wireFallbacks} fallbacks)`;
  return undefined;
}

interface Config {
  blockSize: number;
  seeders: 1 | 4;
  /** Single-block requests (--max-range-bytes = block size). */
  single: boolean;
}

interface RunOf {
  m: KfetchMeasured;
  /** The done event's session seconds (the download and its final check, without the process's start). */
  session: number;
  startup: number | undefined;
  transport: DoneTransport;
  /** The seeders' CPU (all of them) during the run. */
  served: { user: number; sys: number };
}

const KiB = 1024;

export async function peerWireSwarm(ctx: ScenarioContext): Promise<ScenarioResult> {
  const quick = ctx.opts.quick;
  // File sizes: the 4 KiB files are smaller (16,384 blocks at 64 MiB: HTTP's single-block runs take seconds).
  const sizeOf = (bs: number): number => (quick ? (bs === 4 * KiB ? 4 : 16) : bs === 4 * KiB ? 64 : 256);
  const runs = quick ? 1 : Math.min(ctx.opts.runs, 3);
  const dir = join(ctx.dir, 'peer-wire-swarm');
  mkdirSync(dir, { recursive: true });
  const results = new Map<string, RunOf[]>();
  const key = (c: Config, wire: boolean): string => `${c.blockSize}/${c.seeders}/${c.single ? 1 : 0}/${wire ? 'wire' : 'http'}`;
  const failures: string[] = [];

  // --quick (seconds): only the targets' rows, 4 KiB single-block and 256 KiB, still checking the wire was used.
  const blockSizes = quick ? [4 * KiB, 256 * KiB] : [4 * KiB, 64 * KiB, 256 * KiB];
  for (const blockSize of blockSizes) {
    const sizeMiB = sizeOf(blockSize);
    const file = testFile(ctx, sizeMiB);
    const size = sizeMiB * 1024 * 1024;
    // No tracker: the kascade names a closed port; the get is given the seeders with --peer.
    const k = makeKascade(file, join(dir, `wire-${blockSize}.json`), 'http://127.0.0.1:9/announce', blockSize);
    const seeders: Child[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        seeders.push(await startKfetch(['seed', k.path, '--data', dirname(file), '--port', '0', '--wire-port', '0', '--trust'], join(dir, `home-seed-${blockSize}-${i}`)));
      }
      const addrs = seeders.map((s) => new URL(s.url).host);
      const pids = seeders.flatMap((s) => (s.proc.pid === undefined ? [] : [s.proc.pid]));
      const configs: Config[] = [
        ...(blockSize === 4 * KiB ? [{ blockSize, seeders: 1, single: true } as const, { blockSize, seeders: 4, single: true } as const] : []),
        ...(quick && blockSize === 4 * KiB ? [] : [{ blockSize, seeders: 1, single: false } as const, { blockSize, seeders: 4, single: false } as const]),
      ];
      for (const c of configs) {
        for (let i = 0; i < runs; i++) {
          // Alternate, and flip the order each round, so drift in the machine's load falls on both alike.
          for (const wire of i % 2 === 0 ? [true, false] : [false, true]) {
            const what = `${blockSize / KiB} KiB, ${c.seeders} seeder${c.seeders > 1 ? 's' : ''}, ${c.single ? 'single-block' : 'default sizing'}, ${wire ? 'wire' : 'HTTP'}`;
            ctx.log(`peer-wire-swarm: ${what}, run ${i + 1}/${runs}`);
            const out = join(dir, 'out');
            const home = join(dir, 'home-get');
            const args = ['get', k.path, '--out', out, '--json', '--no-serve', '--timeout', '60', ...addrs.slice(0, c.seeders).flatMap((a) => ['--peer', a])];
            if (!wire) args.push('--no-wire');
            if (c.single) args.push('--max-range-bytes', String(blockSize));
            let done: ReturnType<typeof doneOf>;
            const before = cpuOf(pids);
            const m = await kfetchMeasured(args, home, 600_000, (line) => {
              done = doneOf(line) ?? done;
            });
            const after = cpuOf(pids);
            rmSync(out, { recursive: true, force: true });
            rmSync(home, { recursive: true, force: true });
            const problem = done === undefined ? 'no done event' : transportProblem(wire, done.transport, size);
            if (problem !== undefined) {
              // Not a figure: a wire run that did not use the wire (or the reverse) measured something else.
              failures.push(`${what}: ${problem}`);
              continue;
            }
            const r: RunOf = {
              m,
              session: done!.seconds,
              startup: done!.startup,
              transport: done!.transport!,
              served: { user: after.user - before.user, sys: after.sys - before.sys },
            };
            results.set(key(c, wire), [...(results.get(key(c, wire)) ?? []), r]);
          }
        }
      }
    } finally {
      await stopChildren(seeders);
    }
  }
  if (failures.length > 0) throw new Error(`transport not as asked: ${failures.join('; ')}`);

  const rows: Row[] = [];
  const targets: Target[] = [];
  const rowOf = new Map<string, Row>();
  for (const blockSize of blockSizes) {
    const sizeMiB = sizeOf(blockSize);
    for (const seeders of [1, 4] as const) {
      for (const single of blockSize === 4 * KiB ? [true, false] : [false]) {
        for (const wire of [true, false]) {
          const rs = results.get(key({ blockSize, seeders, single }, wire)) ?? [];
          if (rs.length === 0) continue;
          const tool = `kfetch get, ${wire ? 'peer wire' : 'HTTP'}, ${blockSize / KiB} KiB blocks, ${seeders} seeder${seeders > 1 ? 's' : ''}, ${single ? 'single-block' : 'default sizing'}`;
          const row = rowFrom('peer-wire-swarm', tool, sizeMiB, rs.map((r) => r.m));
          const served = servedPerGiB(`${seeders} kfetch seed`, rs.map((r) => r.served), sizeMiB);
          if (row.cpu !== undefined && served !== undefined) row.cpu.served = served;
          const gib = sizeMiB / 1024;
          const sessionS = median(rs.map((r) => r.session));
          const startups = rs.map((r) => r.startup);
          const t = rs[rs.length - 1]!.transport;
          // Per GiB only from 64 MiB (as rowFrom): below, a process's start-up is most of its CPU.
          const perGiB = sizeMiB >= 64;
          row.extra = {
            'session MiB/s': round(sizeMiB / sessionS, 1),
            ...(perGiB ? { 'downloader CPU-s/GiB': round(median(rs.map((r) => r.m.userSeconds + r.m.sysSeconds)) / gib, 2) } : {}),
            ...(perGiB && startups.every((s) => s !== undefined)
              ? { 'downloader CPU-s/GiB after start-up': round(median(rs.map((r) => r.m.userSeconds + r.m.sysSeconds - r.startup!)) / gib, 2) }
              : {}),
            ...(perGiB ? { 'seeders CPU-s/GiB': round(median(rs.map((r) => r.served.user + r.served.sys)) / gib, 2) } : {}),
            'wire bytes %': round((100 * t.wireBytes) / Math.max(1, t.wireBytes + t.httpBytes), 1),
            requests: t.wireRequests + t.httpRequests,
            'wire fallbacks': t.wireFallbacks,
          };
          rows.push(row);
          rowOf.set(key({ blockSize, seeders, single }, wire), row);
        }
      }
    }
  }

  const compare = (c: Config, need: number, text: string): void => {
    const w = rowOf.get(key(c, true));
    const h = rowOf.get(key(c, false));
    if (w === undefined || h === undefined) return;
    const ws = w.extra!['session MiB/s'] as number;
    const hs = h.extra!['session MiB/s'] as number;
    const v = ws / hs;
    const cpu = (r: Row, k: string): string => (typeof r.extra![k] === 'number' ? (r.extra![k] as number).toFixed(2) : '-');
    targets.push({
      scenario: 'peer-wire-swarm',
      text: `${text}, ${c.seeders} seeder${c.seeders > 1 ? 's' : ''}, end to end (${sizeOf(c.blockSize)} MiB)`,
      value:
        `${ws.toFixed(0)} vs ${hs.toFixed(0)} MiB/s = ${v.toFixed(2)}× (process ${w.MiBps!.toFixed(0)} vs ${h.MiBps!.toFixed(0)} MiB/s; CPU-s/GiB ` +
        `downloader ${cpu(w, 'downloader CPU-s/GiB')} vs ${cpu(h, 'downloader CPU-s/GiB')}, seeders ${cpu(w, 'seeders CPU-s/GiB')} vs ${cpu(h, 'seeders CPU-s/GiB')})`,
      met: quick ? null : v >= need,
    });
  };
  for (const seeders of [1, 4] as const) {
    compare({ blockSize: 4 * KiB, seeders, single: true }, 2, 'peer wire ≥ 2 × HTTP throughput at 4 KiB single-block requests');
    compare({ blockSize: 256 * KiB, seeders, single: false }, 0.95, 'peer wire not worse than HTTP at 256 KiB (≥ 0.95 ×)');
  }
  return {
    rows,
    targets,
    notes: [
      `peer-wire-swarm: loopback, ${runs} run${runs > 1 ? 's' : ''} per row (medians), wire and HTTP alternating; files ${sizeOf(4 * KiB)} MiB at 4 KiB blocks, ` +
        `${sizeOf(64 * KiB)} MiB at 64 and 256 KiB, in the page cache (written just before; the seeders' reads and the download's writes hit memory); ` +
        `4 \`kfetch seed --wire-port 0 --trust\` per block size (the 1-seeder rows use the first), one \`kfetch get --no-serve --peer …\` each run, a fresh home and output; ` +
        `every block MD5-checked, written and checkpointed, the SHA-256 checked. Throughput: "session MiB/s" from the done event's seconds (judged), ` +
        `MiB/s from the process's wall time (its start included). CPU-s/GiB: the downloader's whole process (rusage), and all seeders' together per GiB served; ` +
        `each run's done event \`transport\` confirmed the wire (or HTTP) carried the file` +
        (quick ? '; --quick: 4 KiB single-block and 256 KiB only, files under 64 MiB: no per-GiB CPU account' : ''),
    ],
  };
}
