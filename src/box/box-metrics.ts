// The seeding box's Prometheus metrics (GET /metrics) and JSON status (GET /status). Values are read from the box,
// the block server and the announcers when scraped (prom-client `collect`), so the hot paths only bump plain
// counters. Default process metrics (RSS, open fds, event-loop lag) come from prom-client. Used by box-run.ts.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { TransportCounts } from '../peer/transport-counts.js';
import type { BlockServerStats } from '../server/block-server.js';
import type { AnnounceStats } from '../tracker/announce-stats.js';
import { VERSION } from '../version.js';
import { ENTRY_STATES } from './entry-state.js';
import type { SeedBox } from './seed-box.js';

/** What the metrics read at scrape time. */
export interface MetricsSources {
  box: () => SeedBox | undefined;
  /** Block server stats (undefined before it listens). */
  server: () => BlockServerStats | undefined;
  announces: () => AnnounceStats;
  /** The box's block fetches by transport, peer wire or HTTP (undefined before the engine opens). */
  transport?: () => TransportCounts | undefined;
}

/** Every state an entry in the folder can be in (a removed entry is no longer in the folder). */
const STATES = ENTRY_STATES.filter((s) => s !== 'removed');

/** Set a counter to an externally kept total (prom-client counters only go up, so reset, then add the total). */
function setCounter(c: Counter, labels: Record<string, string>, value: number): void {
  c.inc(labels, Math.max(0, value));
}

export class BoxMetrics {
  readonly registry = new Registry();
  private readonly checkpointSeconds: Histogram;

  constructor(src: MetricsSources) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'kfetch_' });
    new Gauge({ name: 'kfetch_info', help: 'kfetch version', labelNames: ['version'], registers: [r] }).set({ version: VERSION }, 1);
    new Gauge({
      name: 'kfetch_box_kascades',
      help: 'Kascades in the watch folder, by state',
      labelNames: ['state'],
      registers: [r],
      collect() {
        const counts = new Map<string, number>(STATES.map((s) => [s, 0]));
        for (const e of src.box()?.entries.values() ?? []) counts.set(e.state, (counts.get(e.state) ?? 0) + 1);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    new Counter({
      name: 'kfetch_served_bytes_total',
      help: 'Bytes of blocks served to other peers, per kascade',
      labelNames: ['swarm', 'name'],
      registers: [r],
      collect() {
        this.reset();
        const s = src.server();
        const box = src.box();
        if (s === undefined || box === undefined) return;
        for (const e of box.entries.values()) {
          const k = e.kascade;
          if (k === undefined) continue;
          setCounter(this, { swarm: k.swarmId, name: k.filename }, s.bytesSentBySwarm[k.swarmId] ?? 0);
        }
      },
    });
    new Counter({
      name: 'kfetch_fetched_bytes_total',
      help: 'Bytes fetched from other peers, per kascade (recorded in the state, plus this run)',
      labelNames: ['swarm', 'name'],
      registers: [r],
      collect() {
        this.reset();
        for (const e of src.box()?.entries.values() ?? []) {
          if (e.kascade !== undefined) setCounter(this, { swarm: e.kascade.swarmId, name: e.kascade.filename }, e.bytesFetched);
        }
      },
    });
    new Counter({
      name: 'kfetch_http_requests_total',
      help: 'Requests answered by the block server, by HTTP status',
      labelNames: ['status'],
      registers: [r],
      collect() {
        this.reset();
        for (const [status, n] of Object.entries(src.server()?.statuses ?? {})) setCounter(this, { status }, n);
      },
    });
    new Counter({
      name: 'kfetch_http_rejected_total',
      help: 'Block requests refused with 503 because the box was busy, by reason',
      labelNames: ['reason'],
      registers: [r],
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(src.server()?.rejectedBusy ?? {})) setCounter(this, { reason }, n);
      },
    });
    const gauge = (name: string, help: string, read: () => number | undefined): void => {
      new Gauge({
        name,
        help,
        registers: [r],
        collect() {
          this.set(read() ?? 0);
        },
      });
    };
    const counter = (name: string, help: string, read: () => number | undefined): void => {
      new Counter({
        name,
        help,
        registers: [r],
        collect() {
          this.reset();
          setCounter(this, {}, read() ?? 0);
        },
      });
    };
    gauge('kfetch_http_active_clients', 'Client addresses with block requests being answered', () => src.server()?.activeClients);
    gauge('kfetch_http_requests_in_flight', 'Block requests being answered', () => src.server()?.inFlight);
    gauge('kfetch_http_queue_depth', 'Block requests waiting for a slot', () => src.server()?.queueDepth);
    gauge('kfetch_http_rate_waiting', 'Responses waiting for upload-rate tokens', () => src.server()?.rateWaiting);
    counter('kfetch_http_queued_total', 'Block requests that waited for a slot', () => src.server()?.queuedTotal);
    counter('kfetch_http_queue_wait_seconds_sum', 'Time block requests spent waiting for a slot', () => (src.server()?.queueWaitMsSum ?? 0) / 1000);
    gauge('kfetch_open_data_files', 'Data files held open by the fd cache', () => src.box()?.fds.stats().open);
    counter('kfetch_uploaded_bytes_total', 'Bytes of blocks served, all kascades', () => src.server()?.bytesSent);
    counter('kfetch_data_file_opens_total', 'Data files opened by the fd cache', () => src.box()?.fds.stats().opens);
    counter('kfetch_hash_failures_total', 'Blocks from peers whose MD5 did not match (the peer was banned)', () => src.box()?.counters.hashFailures);
    counter('kfetch_banned_peers_total', 'Peers banned for sending bad blocks', () => src.box()?.counters.bannedPeers);
    counter('kfetch_data_changed_total', 'Data files found changed, truncated or deleted while seeding', () => src.box()?.counters.dataChanged);
    counter('kfetch_kascades_rejected_total', 'Kascade files skipped (unreadable, invalid, duplicate)', () => src.box()?.counters.rejected);
    counter('kfetch_downloads_completed_total', 'Downloads finished and verified', () => src.box()?.counters.downloadsCompleted);
    counter('kfetch_scrubs_total', 'Seeding files re-verified by the slow scrub', () => src.box()?.counters.scrubs);
    counter('kfetch_scrub_failures_total', 'Scrubs that found blocks no longer matching (re-fetched)', () => src.box()?.counters.scrubFailures);
    counter('kfetch_downloads_failed_total', 'Downloads that failed (retried with backoff)', () => src.box()?.counters.downloadsFailed);
    counter('kfetch_downloads_stalled_total', 'Downloads that gave their slot up after --stall-timeout without a verified block (queued again with backoff)', () => src.box()?.counters.downloadsStalled);
    // The binary peer wire (issue 14): what this box fetched over it and over HTTP, and what its wire served.
    new Counter({
      name: 'kfetch_peer_fetched_bytes_total',
      help: 'Bytes of block requests completed, by transport (wire: the binary peer wire; http: HTTP ranges, fallbacks included)',
      labelNames: ['transport'],
      registers: [r],
      collect() {
        this.reset();
        const t = src.transport?.();
        setCounter(this, { transport: 'wire' }, t?.wireBytes ?? 0);
        setCounter(this, { transport: 'http' }, t?.httpBytes ?? 0);
      },
    });
    new Counter({
      name: 'kfetch_peer_fetch_requests_total',
      help: 'Block requests completed, by transport (wire or http, fallbacks included in http)',
      labelNames: ['transport'],
      registers: [r],
      collect() {
        this.reset();
        const t = src.transport?.();
        setCounter(this, { transport: 'wire' }, t?.wireRequests ?? 0);
        setCounter(this, { transport: 'http' }, t?.httpRequests ?? 0);
      },
    });
    counter('kfetch_peer_wire_fallbacks_total', 'Block requests tried on the peer wire and fetched over HTTP instead', () => src.transport?.()?.wireFallbacks);
    counter('kfetch_peer_wire_served_bytes_total', 'Bytes of blocks served over the binary peer wire (also in kfetch_uploaded_bytes_total)', () => src.server()?.wire?.bytesSent);
    counter('kfetch_peer_wire_served_requests_total', 'Requests answered over the binary peer wire', () => src.server()?.wire?.requests);
    new Counter({
      name: 'kfetch_announces_total',
      help: 'Tracker announces, by outcome',
      labelNames: ['outcome'],
      registers: [r],
      collect() {
        this.reset();
        const a = src.announces();
        setCounter(this, { outcome: 'ok' }, a.ok);
        setCounter(this, { outcome: 'backoff_403' }, a.backoff403);
        for (const [code, n] of Object.entries(a.failed)) setCounter(this, { outcome: code }, n ?? 0);
        setCounter(this, { outcome: 'stopped_sent' }, a.stoppedSent);
        setCounter(this, { outcome: 'stopped_failed' }, a.stoppedFailed);
      },
    });
    this.checkpointSeconds = new Histogram({
      name: 'kfetch_checkpoint_commit_seconds',
      help: 'Time of each SQLite checkpoint transaction',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [r],
    });
  }

  observeCheckpoint(seconds: number): void {
    this.checkpointSeconds.observe(seconds);
  }

  /** The exposition text for GET /metrics. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
