// Shows download events: newline-delimited JSON on stdout with --json (schema v1, README), a live bar per
// download on a TTY (percent, MiB/s, ETA, peers), and a line per start/done/error otherwise.

import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { EVENT_SCHEMA_VERSION, type DownloadEvent, type EventSink } from '../client/events.js';

const MiB = 1024 * 1024;
const JSON_PROGRESS_MS = 250;

export interface DownloadView {
  emit: EventSink;
  stop(): void;
}

export function createDownloadView(opts: { json: boolean; out: NodeJS.WritableStream; tty?: NodeJS.WriteStream }): DownloadView {
  if (opts.json) return jsonView(opts.out);
  const tty = opts.tty ?? process.stderr;
  return tty.isTTY === true ? barView(tty) : lineView(opts.out);
}

function jsonView(out: NodeJS.WritableStream): DownloadView {
  const lastProgress = new Map<string, number>();
  const write = (e: DownloadEvent): void => void out.write(`${JSON.stringify({ v: EVENT_SCHEMA_VERSION, ...e })}\n`);
  return {
    emit(e) {
      if (e.event === 'progress' || e.event === 'verify') {
        // Throttled per download and kind; the first and the last of each always go out.
        const key = e.event === 'verify' ? `${e.id}:verify:${e.phase}` : `${e.id}:progress`;
        const now = performance.now();
        const last = lastProgress.get(key);
        const final = e.event === 'progress' ? e.durable === e.size : e.done === e.total;
        if (!final && last !== undefined && now - last < JSON_PROGRESS_MS) return;
        lastProgress.set(key, now);
      }
      write(e);
    },
    stop: () => undefined,
  };
}

function lineView(out: NodeJS.WritableStream): DownloadView {
  return {
    emit(e) {
      if (e.event === 'start') out.write(`downloading ${e.name} (${fmtMiB(e.size)} MiB, ${e.blocks} blocks, ${e.have} already here) to ${e.path}\n`);
      else if (e.event === 'verify' && e.phase === 'blocks' && e.done === 0) out.write(verifyLine(e));
      else if (e.event === 'done') out.write(doneLine(e));
      else if (e.event === 'peer' && e.action === 'banned') out.write(`peer ${e.peer} banned: ${e.reason ?? ''}\n`);
    },
    stop: () => undefined,
  };
}

function barView(tty: NodeJS.WriteStream): DownloadView {
  const multi = new MultiBar(
    {
      stream: tty,
      format: '{name} [{bar}] {percentage}% | {mib}/{totalMib} MiB | {speed} MiB/s | ETA {eta_formatted} | {peers} peers',
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 40,
      fps: 8,
    },
    Presets.shades_classic,
  );
  const bars = new Map<number, { bar: SingleBar; name: string; size: number }>();
  return {
    emit(e) {
      if (e.event === 'start') {
        bars.set(e.id, { bar: multi.create(e.size, 0, { name: e.name, mib: '0', totalMib: fmtMiB(e.size), speed: '0', peers: 0 }), name: e.name, size: e.size });
      } else if (e.event === 'progress') {
        const b = bars.get(e.id);
        b?.bar.update(e.verified, { name: b.name, mib: fmtMiB(e.verified), totalMib: fmtMiB(e.size), speed: fmtMiB(e.bytesPerSecond), peers: e.peers });
      } else if (e.event === 'done') {
        const b = bars.get(e.id);
        b?.bar.update(b.size, { name: b.name, mib: fmtMiB(b.size), totalMib: fmtMiB(b.size) });
        multi.log(doneLine(e));
      } else if (e.event === 'verify' && e.phase === 'blocks' && e.done === 0) {
        multi.log(verifyLine(e));
      } else if (e.event === 'peer' && e.action === 'banned') {
        multi.log(`peer ${e.peer} banned: ${e.reason ?? ''}\n`);
      }
    },
    stop() {
      multi.stop();
    },
  };
}

/** Said once when the blocks already on disk are hashed (adopting a file, or one changed since its checkpoint). */
function verifyLine(e: Extract<DownloadEvent, { event: 'verify' }>): string {
  return `verifying the ${fmtMiB(e.total)} MiB already on disk for download ${e.id}\n`;
}

function doneLine(e: Extract<DownloadEvent, { event: 'done' }>): string {
  return `done ${e.path}: ${fmtMiB(e.size)} MiB in ${e.seconds.toFixed(1)} s (${fmtMiB(e.bytesPerSecond)} MiB/s), sha256 ${e.filehash} verified in ${e.hashSeconds.toFixed(2)} s\n`;
}

function fmtMiB(bytes: number): string {
  return (bytes / MiB).toFixed(bytes < 10 * MiB ? 1 : 0);
}
