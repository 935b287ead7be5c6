// What every command receives from main.ts: global options, a logger, and the shutdown signal
// (aborted on SIGINT/SIGTERM). Commands never call process.exit; they return or throw a KfetchError.

import type { Logger } from 'pino';

export interface GlobalOptions {
  /** State directory (--home, env KFETCH_HOME). */
  home: string;
  logJson: boolean;
  verbose: boolean;
}

export interface CommandContext {
  globals: () => GlobalOptions;
  log: () => Logger;
  /** Aborted when the process receives SIGINT or SIGTERM; `reason` is the signal name. */
  shutdown: AbortSignal;
  /** Where machine-readable and user-facing output goes (stdout). */
  out: NodeJS.WritableStream;
}
