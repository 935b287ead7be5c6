// Feeds the control API's event stream from the box: `kascade.added|changed|removed` as entries change (changed
// ones gathered and sent at most every 250 ms, and coalesced per kascade by the hub), `peer.*` from the downloads'
// engine events, and `box.stats` once a second with the rates sampled then. Used by box-run.ts.

import type { BoxEntry } from '../box/entry-registry.js';
import type { DownloadEvent } from '../client/events.js';
import type { ApiContext } from './api-routes.js';
import { kascadeRecord } from './kascade-record.js';

/** How often changed entries are sent (each kascade at most this often: ≤ 4 a second). */
export const CHANGE_FLUSH_MS = 250;
const STATS_MS = 1000;

export class EventPublisher {
  private readonly dirty = new Set<BoxEntry>();
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly statsTimer: NodeJS.Timeout;

  constructor(private readonly api: ApiContext) {
    const entries = api.box.entries;
    entries.onChange = (entry, kind) => {
      if (kind === 'changed') return this.mark(entry);
      this.dirty.delete(entry);
      // One coalescing key for a kascade's added, changed and removed: order holds within a key only, so a held
      // `changed` can never go out after the `removed` (the latest wins; a client treats `changed` of an id it
      // does not know as an add).
      if (kind === 'added') api.hub.publish('kascade.added', { v: 1, kascade: kascadeRecord(entry, api) }, `kascade:${entry.id}`);
      else api.hub.publish('kascade.removed', { v: 1, id: entry.id }, `kascade:${entry.id}`);
    };
    api.box.onEntryEvent = (entry, e) => this.engineEvent(entry, e);
    this.statsTimer = setInterval(() => this.tick(), STATS_MS);
    this.statsTimer.unref();
  }

  /** The `box.stats` record (also `GET /api/v1/stats`). */
  stats(): unknown {
    return boxStats(this.api);
  }

  close(): void {
    clearInterval(this.statsTimer);
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.api.box.entries.onChange = undefined;
    this.api.box.onEntryEvent = undefined;
  }

  private mark(entry: BoxEntry): void {
    this.dirty.add(entry);
    if (this.flushTimer === undefined) {
      this.flushTimer = setTimeout(() => this.flush(), CHANGE_FLUSH_MS);
      this.flushTimer.unref();
    }
  }

  private flush(): void {
    this.flushTimer = undefined;
    const batch = [...this.dirty];
    this.dirty.clear();
    for (const e of batch) this.api.hub.publish('kascade.changed', { v: 1, kascade: kascadeRecord(e, this.api) }, `kascade:${e.id}`);
  }

  private engineEvent(entry: BoxEntry, e: DownloadEvent): void {
    if (e.event !== 'peer') return;
    this.api.hub.publish(`peer.${e.action}`, {
      v: 1,
      id: entry.id,
      peer: e.peer,
      ...(e.source === undefined ? {} : { source: e.source }),
      ...(e.reason === undefined ? {} : { reason: e.reason }),
    });
  }

  private tick(): void {
    const api = this.api;
    const samples = [];
    for (const e of api.box.entries.values()) samples.push({ id: e.id, fetched: e.bytesFetched, served: e.kascade === undefined ? 0 : api.served(e.kascade.swarmId) });
    for (const id of api.rates.sample(samples, Date.now())) {
      const e = api.box.entries.ofId(id);
      if (e !== undefined) this.mark(e);
    }
    api.hub.publish('box.stats', this.stats());
  }
}

export function boxStats(api: ApiContext): unknown {
  const states: Record<string, number> = {};
  let fetched = 0;
  let served = 0;
  for (const e of api.box.entries.values()) {
    states[e.state] = (states[e.state] ?? 0) + 1;
    fetched += e.bytesFetched;
    if (e.kascade !== undefined) served += api.served(e.kascade.swarmId);
  }
  return {
    v: 1,
    downRate: api.rates.total.down,
    upRate: api.rates.total.up,
    states,
    kascades: api.box.entries.size,
    servedBytes: served,
    fetchedBytes: fetched,
    eventClients: api.hub.stats().clients,
    uptimeSeconds: Math.round((Date.now() - api.box.startedAt) / 1000),
    settings: api.settings.get(),
  };
}
