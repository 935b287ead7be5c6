// The benchmark's output on stdout: one table (a row per scenario and tool), the CPU account (CPU-s per GiB of the
// downloader, user and sys, kfetch's in-process breakdown, and the serving processes' CPU per GiB served), then the
// targets as met / not met; and every figure as JSON in bench/results/<name>-<ISO date>.json.

import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Ceilings } from './ceilings.js';

/** One tool in one scenario: medians over its runs. */
export interface Row {
  scenario: string;
  tool: string;
  sizeMiB: number;
  /** Why this row has no figures (an anchor that is not installed, a failure). */
  skipped?: string;
  seconds?: number;
  allSeconds?: number[];
  MiBps?: number;
  peakRssMiB?: number;
  cpuSeconds?: number;
  /** time ratio to each anchor (this tool's seconds / the anchor's), or other ratios the scenario defines. */
  ratios?: Record<string, number>;
  ceiling?: { name: string; MiBps: number; ratio: number };
  /** Scenario-specific figures (e.g. tail's last and median 1%). */
  extra?: Record<string, number | string>;
  /** The CPU account (issue 11), for files of 64 MiB and more. */
  cpu?: CpuAccount;
}

/** kfetch's in-process CPU breakdown, CPU-s per GiB (from the `done` event's `cpu`); `other` is the rest of user+sys (fdatasyncs, worker task overhead, GC, JIT). */
export interface CpuParts {
  receive: number;
  md5: number;
  sha256: number;
  write: number;
  checkpoint: number;
  /** The main thread before the download started (module loading, state database), where kfetch reports it. */
  startup?: number;
  /** The worker threads' task overhead (their CPU less MD5 and writes), where kfetch reports it. */
  dispatch?: number;
  other: number;
}

/** CPU-s per GiB moved, medians over the runs. */
export interface CpuAccount {
  /** The measured process (the downloader), whole-process rusage from /proc. */
  user: number;
  sys: number;
  /** kfetch only, when its `--json` `done` event carries `cpu`. */
  parts?: CpuParts;
  /** The processes that served the bytes (nginx master + workers, the seeders all together), per GiB served. */
  served?: { by: string; user: number; sys: number };
}

/** A target from the issue, judged on this run. `met` is null when it could not be judged (anchor missing). */
export interface Target {
  scenario: string;
  text: string;
  value: string;
  met: boolean | null;
}

export interface Report {
  name: string;
  date: string;
  machine: { cores: number; cpu: string; memGiB: number; node: string; platform: string; loadAverage: { before: number[]; after: number[] } };
  args: Record<string, unknown>;
  ceilings: Ceilings;
  rows: Row[];
  targets: Target[];
  notes: string[];
}

/** CPU model from /proc/cpuinfo (falls back to os.cpus()). */
export function machineInfo(loadBefore: number[], loadAfter: number[]): Report['machine'] {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m !== null) cpu = m[1]!.trim();
  } catch {
    // not Linux: keep os.cpus()
  }
  return {
    cores: availableParallelism(),
    cpu,
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: process.platform,
    loadAverage: { before: loadBefore.map((x) => round(x)), after: loadAfter.map((x) => round(x)) },
  };
}

export const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

const fmt = (x: number | undefined, digits = 2): string => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits));

/** The table as text (Markdown, so the README can keep it as is). */
export function formatTable(r: Report): string {
  const c = r.ceilings;
  const lines = [
    `kfetch bench ${r.date}: ${r.machine.cores} cores (${r.machine.cpu}), ${r.machine.memGiB} GiB, node ${r.machine.node}, load ${r.machine.loadAverage.before[0]} -> ${r.machine.loadAverage.after[0]}`,
    `ceilings MiB/s: md5/core ${fmt(c.md5PerCore, 0)}, sha256/core ${fmt(c.sha256PerCore, 0)}, pwrite ${fmt(c.writeNoSync, 0)}, pwrite+fdatasync ${fmt(c.writeFdatasync, 0)}, loopback http ${fmt(c.loopbackHttp, 0)}`,
    '',
    '| scenario | tool | MiB | wall s | MiB/s | peak RSS MiB | CPU s | vs anchors | vs ceiling |',
    '|---|---|---:|---:|---:|---:|---:|---|---|',
  ];
  for (const row of r.rows) {
    if (row.skipped !== undefined) {
      lines.push(`| ${row.scenario} | ${row.tool} | ${row.sizeMiB} | skipped: ${row.skipped} | | | | | |`);
      continue;
    }
    const ratios = Object.entries(row.ratios ?? {})
      .map(([k, v]) => `${k} ${v.toFixed(2)}×`)
      .join(', ');
    const extra = Object.entries(row.extra ?? {})
      .map(([k, v]) => `${k} ${typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(1)) : v}`)
      .join(', ');
    const ceiling = row.ceiling === undefined ? '' : `${(row.ceiling.ratio * 100).toFixed(0)}% of ${row.ceiling.name} (${row.ceiling.MiBps.toFixed(0)})`;
    lines.push(
      `| ${row.scenario} | ${row.tool} | ${row.sizeMiB} | ${fmt(row.seconds)} | ${fmt(row.MiBps, 0)} | ${fmt(row.peakRssMiB, 0)} | ${fmt(row.cpuSeconds)} | ${[ratios, extra].filter((s) => s !== '').join('; ')} | ${ceiling} |`,
    );
  }
  const accounted = r.rows.filter((row) => row.cpu !== undefined);
  if (accounted.length > 0) {
    lines.push(
      '',
      'CPU account, CPU-s per GiB (downloader: whole process from /proc, and kfetch\'s own breakdown from its `done` event; servers: per GiB served)',
      '',
      '| scenario | tool | user | sys | total | receive | MD5 | SHA-256 | writes | checkpoint | startup | dispatch | other | served by | user | sys | total |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|',
    );
    const dash = (x: number | undefined): string => (x === undefined ? '—' : x.toFixed(2));
    for (const row of accounted) {
      const a = row.cpu!;
      const p = a.parts;
      const s = a.served;
      lines.push(
        `| ${row.scenario} | ${row.tool} | ${dash(a.user)} | ${dash(a.sys)} | ${dash(a.user + a.sys)} | ${dash(p?.receive)} | ${dash(p?.md5)} | ${dash(p?.sha256)} | ${dash(p?.write)} | ${dash(p?.checkpoint)} | ${dash(p?.startup)} | ${dash(p?.dispatch)} | ${dash(p?.other)} | ${s?.by ?? '—'} | ${dash(s?.user)} | ${dash(s?.sys)} | ${s === undefined ? '—' : dash(s.user + s.sys)} |`,
      );
    }
  }
  if (r.targets.length > 0) {
    lines.push('', '| target | value | |', '|---|---|---|');
    for (const t of r.targets) lines.push(`| ${t.scenario}: ${t.text} | ${t.value} | ${t.met === null ? 'n/a' : t.met ? 'met' : 'NOT met'} |`);
  }
  for (const n of r.notes) lines.push(`note: ${n}`);
  return `${lines.join('\n')}\n`;
}

/** Write the report to `<dir>/<name>-<ISO date>.json`; returns the path. */
export function writeReport(dir: string, r: Report): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${r.name}-${r.date.slice(0, 19).replace(/:/g, '-')}.json`);
  writeFileSync(path, `${JSON.stringify(r, null, 2)}\n`);
  return path;
}
