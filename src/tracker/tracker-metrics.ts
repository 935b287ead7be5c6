// The tracker's Prometheus metrics (GET /metrics on its port, issue 13): swarms, peers and bitfield bytes as the
// store holds them, whether the store answers, store errors and the announce answers by outcome, plus prom-client's
// process metrics. Read from the tracker's stats() when scraped (one read per scrape), so the hot path only bumps
// plain counters. Each metric says how several worker processes (`--workers N`, tracker-workers.ts) combine: the
// store's counts are the same in every process (one store: `first`), `store_up` is the worst (`min`), process
// figures add up (`sum`). Counters carry a `worker` label under --workers: a worker that restarts starts its own
// series from 0, which Prometheus reads as that series' reset (a sum over workers would seem to go backwards).
// `kfetch_tracker_processes` counts the processes whose figures a scrape holds.

import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { VERSION } from '../version.js';
import type { TrackerAnswers, TrackerStats } from './tracker-server.js';
import type { UdpTrackerStats } from './udp-tracker.js';

/** Stats read at most this often: one scrape reads the store once, however many metrics it has. */
const READ_EVERY_MS = 250;

export class TrackerMetrics {
  readonly registry = new Registry();
  private read: { at: number; stats: Promise<TrackerStats> } | undefined;

  /**
   * `worker`: this process's number under --workers (its counters are labelled with it). `udp`: the UDP tracker's
   * counters when it runs (`--udp-port`).
   */
  constructor(stats: () => Promise<TrackerStats>, worker?: number, udp?: () => UdpTrackerStats | undefined) {
    const w = worker === undefined ? {} : { worker: String(worker) };
    const workerLabel = worker === undefined ? [] : ['worker'];
    const r = this.registry;
    const now = (): Promise<TrackerStats> => {
      const t = performance.now();
      if (this.read === undefined || t - this.read.at > READ_EVERY_MS) this.read = { at: t, stats: stats() };
      return this.read.stats;
    };
    collectDefaultMetrics({ register: r, prefix: 'kfetch_tracker_' });
    new Gauge({ name: 'kfetch_info', help: 'kfetch version', labelNames: ['version'], registers: [r], aggregator: 'first' }).set({ version: VERSION }, 1);
    new Gauge({ name: 'kfetch_tracker_processes', help: 'Tracker processes answering on this port', registers: [r], aggregator: 'sum' }).set(1);
    const fromStore = (name: string, help: string, read: (s: TrackerStats) => number, aggregator: 'first' | 'min'): void => {
      new Gauge({
        name,
        help,
        registers: [r],
        aggregator,
        async collect() {
          this.set(read(await now()));
        },
      });
    };
    fromStore('kfetch_tracker_swarms', 'Swarms with at least one listed peer (in the store)', (s) => s.swarms, 'first');
    fromStore('kfetch_tracker_peers', 'Peers listed over all swarms (in the store)', (s) => s.peers, 'first');
    fromStore('kfetch_tracker_bitfield_bytes', 'Bytes of peers\' bitfields kept (in the store)', (s) => s.bitfieldBytes, 'first');
    fromStore('kfetch_tracker_store_up', '1 while the store answers; 0 from a failed call until one succeeds', (s) => (s.storeUp ? 1 : 0), 'min');
    new Counter({
      name: 'kfetch_tracker_store_errors_total',
      help: 'Store calls that failed because the store did not answer',
      labelNames: workerLabel,
      registers: [r],
      aggregator: 'sum',
      async collect() {
        this.reset();
        this.inc(w, (await now()).storeErrors);
      },
    });
    new Counter({
      name: 'kfetch_tracker_answers_total',
      help: 'Announce requests answered, by outcome',
      labelNames: ['outcome', ...workerLabel],
      registers: [r],
      aggregator: 'sum',
      async collect() {
        this.reset();
        const a = (await now()).answers;
        for (const outcome of Object.keys(a) as (keyof TrackerAnswers)[]) this.inc({ outcome, ...w }, a[outcome]);
      },
    });
    if (udp !== undefined) TrackerMetrics.udpMetrics(r, udp, w, workerLabel);
  }

  /** The UDP tracker's counters: per `worker` label under --workers, like the HTTP ones (each worker's socket reads). */
  private static udpMetrics(r: Registry, udp: () => UdpTrackerStats | undefined, w: { worker?: string }, workerLabel: string[]): void {
    new Counter({
      name: 'kfetch_tracker_udp_datagrams_total',
      help: 'UDP tracker datagrams, by kind: received, malformed (dropped), bad_connection_id (told to connect again), overloaded (dropped), connect',
      labelNames: ['kind', ...workerLabel],
      registers: [r],
      aggregator: 'sum',
      collect() {
        this.reset();
        const u = udp();
        if (u === undefined) return;
        const kinds = { received: u.datagrams, malformed: u.malformed, bad_connection_id: u.badConnectionId, overloaded: u.overloaded, connect: u.connects };
        for (const [kind, n] of Object.entries(kinds)) this.inc({ kind, ...w }, n);
      },
    });
    new Counter({
      name: 'kfetch_tracker_udp_answers_total',
      help: 'UDP announces answered, by outcome',
      labelNames: ['outcome', ...workerLabel],
      registers: [r],
      aggregator: 'sum',
      collect() {
        this.reset();
        const a = udp()?.answers;
        if (a === undefined) return;
        for (const outcome of Object.keys(a) as (keyof TrackerAnswers)[]) this.inc({ outcome, ...w }, a[outcome]);
      },
    });
    new Counter({
      name: 'kfetch_tracker_udp_bytes_total',
      help: 'UDP tracker bytes, by direction (datagram payloads)',
      labelNames: ['direction', ...workerLabel],
      registers: [r],
      aggregator: 'sum',
      collect() {
        this.reset();
        const u = udp();
        if (u === undefined) return;
        this.inc({ direction: 'in', ...w }, u.bytesIn);
        this.inc({ direction: 'out', ...w }, u.bytesOut);
      },
    });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
