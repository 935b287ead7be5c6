// A box entry as the control API, its event stream and the page show it (docs/api.md "Records", schema v 1).
// Built from memory only (no database read), so listing 10,000 entries stays cheap. Used by api-routes.ts and
// event-publisher.ts.

import type { BoxEntry } from '../box/entry-registry.js';
import type { SeedBox } from '../box/seed-box.js';
import type { Engine } from '../client/engine.js';
import type { EntryRates } from './entry-rates.js';

export interface TrackerFacts {
  /** The tracker announced to now (the one that last answered, after a failover). */
  url: string;
  /** Every tracker of the kascade in failover order: `tracker`, then the `trackers` extension (issue 13). */
  urls: string[];
  lastAnnounce: string | null;
  nextAnnounce: string | null;
  lastError: string | null;
}

export interface KascadeRecord {
  id: string;
  file: string;
  state: string;
  name?: string;
  filehash?: string;
  swarmId?: string;
  size?: number;
  blockSize?: number;
  blocks?: number;
  receivedBytes: number;
  verifiedBytes: number;
  durableBytes: number;
  progress: number;
  downRate: number;
  upRate: number;
  eta: number | null;
  servedBytes: number;
  fetchedBytes: number;
  badBlocks: number;
  bans: number;
  peers: number;
  tracker: TrackerFacts | null;
  lastScrub: string | null;
  data?: string;
  error?: string;
  nextTry?: string;
  addedAt: string;
}

/** Every key a record may have (`fields=` is checked against it). */
export const RECORD_KEYS: readonly string[] = [
  'id', 'file', 'state', 'name', 'filehash', 'swarmId', 'size', 'blockSize', 'blocks', 'receivedBytes', 'verifiedBytes',
  'durableBytes', 'progress', 'downRate', 'upRate', 'eta', 'servedBytes', 'fetchedBytes', 'badBlocks', 'bans', 'peers',
  'tracker', 'lastScrub', 'data', 'error', 'nextTry', 'addedAt',
];

export interface RecordSources {
  box: SeedBox;
  engine: Engine;
  rates: EntryRates;
  /** Bytes served per swarm id (the block server's counters). */
  served: (swarmId: string) => number;
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

export function kascadeRecord(e: BoxEntry, src: RecordSources): KascadeRecord {
  const k = e.kascade;
  const blockSize = e.blockSize;
  const size = k?.filesize;
  const p = e.progress;
  const verified = p?.verified ?? 0;
  const rate = src.rates.of(e.id);
  const left = size === undefined ? 0 : size - verified;
  const session = e.state === 'downloading' && e.rowId !== undefined ? src.engine.session(e.rowId) : undefined;
  const ann = e.announcer?.facts ?? session?.announceFacts;
  const tracker: TrackerFacts | null =
    ann !== undefined
      ? { url: ann.url, urls: k === undefined ? [ann.url] : [...k.trackers], lastAnnounce: iso(ann.lastAnnounceAt), nextAnnounce: iso(ann.nextAnnounceAt), lastError: ann.lastError ?? null }
      : k !== undefined && k.tracker !== ''
        ? { url: k.tracker, urls: [...k.trackers], lastAnnounce: null, nextAnnounce: null, lastError: null }
        : null;
  return {
    id: e.id,
    file: e.path.slice(e.path.lastIndexOf('/') + 1),
    state: e.state,
    ...(k === undefined
      ? {}
      : { name: k.filename, filehash: k.filehash, swarmId: k.swarmId, size: k.filesize, ...(blockSize === undefined ? {} : { blockSize, blocks: k.geometry(blockSize).count }) }),
    receivedBytes: p?.received ?? 0,
    verifiedBytes: verified,
    durableBytes: p?.durable ?? 0,
    progress: size === undefined ? 0 : size === 0 ? (e.state === 'seeding' ? 1 : 0) : Math.min(1, verified / size),
    downRate: rate.down,
    upRate: rate.up,
    eta: e.state === 'downloading' && rate.down > 0 && left > 0 ? Math.ceil(left / rate.down) : null,
    servedBytes: k === undefined ? 0 : src.served(k.swarmId),
    fetchedBytes: e.bytesFetched,
    badBlocks: e.badBlocks,
    bans: e.bans,
    peers: session === undefined ? 0 : (p?.peers ?? 0),
    tracker,
    lastScrub: iso(e.scrubbedAt),
    ...(e.dataPath === undefined ? {} : { data: e.dataPath }),
    ...(e.error === undefined ? {} : { error: e.error }),
    ...(e.nextTryAt === undefined ? {} : { nextTry: new Date(e.nextTryAt).toISOString() }),
    addedAt: new Date(e.addedAt).toISOString(),
  };
}

/** `r` with only `fields` (and always `id`). */
export function pick(r: KascadeRecord, fields: readonly string[] | undefined): Partial<KascadeRecord> {
  if (fields === undefined) return r;
  const out: Record<string, unknown> = { id: r.id };
  for (const f of fields) if (f in r) out[f] = (r as unknown as Record<string, unknown>)[f];
  return out as Partial<KascadeRecord>;
}
