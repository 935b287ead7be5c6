// The download events of `kfetch get/resume --json` (schema version 1, documented in the README), also
// driving the TTY progress bar. Emitted by download sessions.

import type { TransportCounts } from '../peer/transport-counts.js';
import type { CpuAccount } from './cpu-account.js';

export const EVENT_SCHEMA_VERSION = 1;

export type DownloadEvent =
  | { event: 'serving'; url: string }
  | { event: 'start'; id: number; name: string; filehash: string; size: number; blocks: number; blockSize: number; have: number; path: string }
  | {
      event: 'progress';
      id: number;
      /** Bytes received from peers this run (including bytes of blocks later found bad). */
      received: number;
      /** Bytes of blocks whose MD5 matched and that were written. */
      verified: number;
      /** Bytes of blocks checkpointed: fdatasync'ed and recorded in the state database. */
      durable: number;
      size: number;
      peers: number;
      bytesPerSecond: number;
    }
  | { event: 'peer'; id: number; peer: string; action: 'added' | 'banned' | 'dropped'; source?: string; reason?: string; code?: string }
  | { event: 'warning'; id: number; code: string; message: string; peer?: string; block?: number }
  | { event: 'verify'; id: number; phase: 'blocks' | 'file'; done: number; total: number }
  | {
      event: 'done';
      id: number;
      name: string;
      path: string;
      size: number;
      filehash: string;
      seconds: number;
      hashSeconds: number;
      bytesPerSecond: number;
      /** Where the CPU went (cpu-account.ts); absent when nothing was downloaded in this run. */
      cpu?: CpuAccount;
      /**
       * How this run's bytes came (issue 14): over the binary peer wire or HTTP, and the runs that fell back from
       * the wire to HTTP. Counts completed requests (an endgame copy that lost counts too: its bytes did come).
       * Absent when nothing was downloaded in this run.
       */
      transport?: TransportCounts;
    }
  | { event: 'error'; id: number; code: string; message: string; file?: string };

export type EventSink = (e: DownloadEvent) => void;
