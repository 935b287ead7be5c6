// The process logger: pino to stderr, one JSON line per event with --log-json, a readable line otherwise.
// stdout is kept for command output (`listening on ...`, --json events).

import { pino, type Logger } from 'pino';

export function createLogger(opts: { json: boolean; verbose: boolean }): Logger {
  const level = opts.verbose ? 'debug' : (process.env.KFETCH_LOG_LEVEL ?? 'info');
  if (opts.json) return pino({ level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
  return pino(
    { level, base: null, timestamp: false, formatters: { level: (label) => ({ level: label }) } },
    readableStream(),
  );
}

/** A tiny destination that renders pino's JSON as `kfetch: level: msg key=value ...` lines on stderr. */
function readableStream(): NodeJS.WritableStream & { write(s: string): boolean } {
  return {
    write(line: string): boolean {
      try {
        const o = JSON.parse(line) as Record<string, unknown>;
        const { level, msg, time: _t, ...rest } = o;
        const kv = Object.entries(rest)
          .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join(' ');
        process.stderr.write(`kfetch: ${String(level)}: ${String(msg ?? '')}${kv === '' ? '' : ` ${kv}`}\n`);
      } catch {
        process.stderr.write(line);
      }
      return true;
    },
  } as unknown as NodeJS.WritableStream & { write(s: string): boolean };
}
