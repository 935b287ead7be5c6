// Progress reporting for long phases (create, seed verification, downloads): a cli-progress bar on stderr when it
// is a terminal, newline-delimited JSON progress events on stdout with --json, and nothing otherwise.

import { performance } from 'node:perf_hooks';
import { Presets, SingleBar } from 'cli-progress';

export interface Progress {
  /** Report `done` units of `total` finished. Cheap to call often; output is throttled. */
  update(done: number): void;
  /** Final report and cleanup; safe to call twice. */
  stop(): void;
}

export interface ProgressOptions {
  /** Phase name: shown before the bar and as `phase` in JSON events (`hashing`, `verifying`, ...). */
  label: string;
  total: number;
  unit: 'bytes';
  /** Write JSON events (to `out`) instead of a bar. */
  json: boolean;
  /** Where JSON events go; stdout by default. */
  out?: NodeJS.WritableStream;
  /** Where the bar goes, only if it is a TTY; stderr by default. */
  tty?: NodeJS.WriteStream;
  /** Least time between two JSON events. */
  jsonIntervalMs?: number;
}

const MiB = 1024 * 1024;

/** A progress reporter for one phase. */
export function createProgress(opts: ProgressOptions): Progress {
  if (opts.json) return jsonProgress(opts);
  const tty = opts.tty ?? process.stderr;
  if (tty.isTTY !== true) return { update: () => undefined, stop: () => undefined };
  return barProgress(opts, tty);
}

function jsonProgress(opts: ProgressOptions): Progress {
  const out = opts.out ?? process.stdout;
  const interval = opts.jsonIntervalMs ?? 250;
  let lastAt = -Infinity;
  let lastDone = -1;
  let done = 0;
  let stopped = false;
  const emit = (): void => {
    lastAt = performance.now();
    lastDone = done;
    out.write(`${JSON.stringify({ v: 1, event: 'progress', phase: opts.label, done, total: opts.total })}\n`);
  };
  return {
    update(n) {
      if (stopped) return;
      done = n;
      if (performance.now() - lastAt >= interval) emit();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (done !== lastDone) emit();
    },
  };
}

function barProgress(opts: ProgressOptions, tty: NodeJS.WriteStream): Progress {
  const bar = new SingleBar(
    {
      stream: tty,
      format: `${opts.label} [{bar}] {percentage}% | {doneMiB}/{totalMiB} MiB | {speed} MiB/s | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
      fps: 8,
    },
    Presets.shades_classic,
  );
  const started = performance.now();
  const payload = (done: number): Record<string, string> => {
    const secs = (performance.now() - started) / 1000;
    return {
      doneMiB: (done / MiB).toFixed(0),
      totalMiB: (opts.total / MiB).toFixed(0),
      speed: secs > 0 ? (done / MiB / secs).toFixed(0) : '0',
    };
  };
  bar.start(opts.total, 0, payload(0));
  let stopped = false;
  return {
    update(done) {
      if (!stopped) bar.update(done, payload(done));
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
