// An anchor in its best documented configuration (issue 11): each of a small fixed set of flag sets is run once at
// the start of a scenario (a calibration download, at most the scenario's size), and the fastest is the one
// measured; every calibration time is printed with the table.

import type { Measured } from '../measure.js';

/** One configuration of an anchor: its label (the flags as printed) and the arguments it adds. */
export interface AnchorConfig {
  label: string;
  args: string[];
}

export interface Calibration {
  best: AnchorConfig;
  sizeMiB: number;
  /** Each configuration's one run (wall s, CPU s), or why it failed. */
  runs: { label: string; seconds?: number; cpuSeconds?: number; failed?: string }[];
}

/**
 * aria2c's configurations for writing the download: preallocation off (what the bench used to run) against
 * `--file-allocation=falloc` (fallocate(2): no zero-fill, contiguous extents) with the disk cache off, at its
 * default (16M) and larger. Both downloads (mirrors: `--checksum=sha-256`; BitTorrent: SHA-1 of every piece) verify.
 */
export const ARIA2_WRITE_CONFIGS: AnchorConfig[] = [
  { label: '--file-allocation=none', args: ['--file-allocation=none'] },
  { label: '--file-allocation=falloc --disk-cache=0', args: ['--file-allocation=falloc', '--disk-cache=0'] },
  { label: '--file-allocation=falloc (--disk-cache=16M)', args: ['--file-allocation=falloc', '--disk-cache=16M'] },
  { label: '--file-allocation=falloc --disk-cache=64M', args: ['--file-allocation=falloc', '--disk-cache=64M'] },
];

/** Run each configuration once with `run` (which throws on failure) and pick the fastest by wall time. */
export async function calibrate(
  name: string,
  configs: AnchorConfig[],
  sizeMiB: number,
  run: (c: AnchorConfig, i: number) => Promise<Measured>,
  log: (m: string) => void,
): Promise<Calibration> {
  const runs: Calibration['runs'] = [];
  let best: { c: AnchorConfig; s: number } | undefined;
  for (const [i, c] of configs.entries()) {
    log(`${name}: calibration ${i + 1}/${configs.length} (${sizeMiB} MiB): ${c.label}`);
    try {
      const m = await run(c, i);
      runs.push({ label: c.label, seconds: m.seconds, cpuSeconds: m.cpuSeconds });
      if (best === undefined || m.seconds < best.s) best = { c, s: m.seconds };
    } catch (err) {
      runs.push({ label: c.label, failed: (err instanceof Error ? err.message : String(err)).slice(0, 200) });
    }
  }
  if (best === undefined) throw new Error(`${name}: every configuration failed: ${runs.map((r) => `${r.label}: ${r.failed}`).join('; ')}`);
  return { best: best.c, sizeMiB, runs };
}

/** The calibration as one note line: each configuration's time and the one picked. */
export function calibrationNote(name: string, cal: Calibration): string {
  const each = cal.runs
    .map((r) => (r.failed === undefined ? `${r.label} ${r.seconds!.toFixed(2)} s (${r.cpuSeconds!.toFixed(2)} CPU-s)` : `${r.label} FAILED (${r.failed})`))
    .join('; ');
  return `${name} configuration: fastest of a ${cal.sizeMiB} MiB calibration run each: ${each} → picked ${cal.best.label}`;
}
