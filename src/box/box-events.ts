// What the seeding box counts and logs from its downloads' engine events (the counters feed /metrics). Progress
// also feeds the entry's StallWatch. Used by seed-box.ts.

import type { Logger } from 'pino';
import type { DownloadEvent } from '../client/events.js';
import type { BoxEntry } from './entry-registry.js';

/** Counters the box keeps for /metrics. */
export interface BoxCounters {
  hashFailures: number;
  bannedPeers: number;
  dataChanged: number;
  rejected: number;
  downloadsCompleted: number;
  downloadsFailed: number;
  downloadsStalled: number;
  scrubs: number;
  scrubFailures: number;
}

export function newCounters(): BoxCounters {
  return { hashFailures: 0, bannedPeers: 0, dataChanged: 0, rejected: 0, downloadsCompleted: 0, downloadsFailed: 0, downloadsStalled: 0, scrubs: 0, scrubFailures: 0 };
}

/** Apply one engine event of the download of `entry` (undefined: not one of the box's entries). */
export function onBoxEvent(e: DownloadEvent, entry: BoxEntry | undefined, counters: BoxCounters, log: Logger): void {
  switch (e.event) {
    case 'progress':
      if (entry === undefined) return;
      entry.bytesFetched = entry.fetchedBase + e.received;
      entry.progress = { received: e.received, verified: e.verified, durable: e.durable, peers: e.peers };
      entry.stallWatch?.progress(e.verified, e.size);
      return;
    case 'warning':
      if (e.code === 'KF_E_PEER_HASH_MISMATCH') {
        counters.hashFailures++;
        if (entry !== undefined) entry.badBlocks++;
      }
      log.debug({ file: entry?.path, code: e.code, peer: e.peer }, e.message);
      return;
    case 'peer':
      if (e.action === 'banned') {
        counters.bannedPeers++;
        if (entry !== undefined) entry.bans++;
        log.warn({ file: entry?.path, peer: e.peer, reason: e.reason }, 'peer banned');
      }
      return;
    case 'done':
      log.info({ file: entry?.path, data: e.path, seconds: Math.round(e.seconds * 10) / 10 }, 'download complete');
      return;
    case 'error':
      log.error({ file: entry?.path, code: e.code }, e.message);
      return;
    case 'serving':
    case 'start':
    case 'verify':
      return;
  }
}
