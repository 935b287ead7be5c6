// `kfetch tracker --workers N` (issue 13): one command, N tracker processes on one port and one shared store.
// The primary (this module) forks N copies of the same command line with node:cluster; each copy runs the ordinary
// tracker on the store (Redis: any process answers any swarm) and says when it listens. Connections are spread by
// the primary (cluster's round-robin), so the port is the same for all, `--port 0` included. The primary prints
// `listening on URL` once every worker listens, restarts a worker that dies (back-off 1 s doubling to 30 s, reset
// once it has stayed up a minute) while the others go on answering, and on SIGINT/SIGTERM stops them all (a stop
// message, then SIGKILL after 10 s) and exits 0. A worker that fails to start fails the whole command with its error.

import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { ERROR_CATALOGUE, KfetchError, type ErrorCode } from '../errors.js';

/** Set in each worker's environment: its number, 1 … N (logs carry it as `worker`). */
export const WORKER_ENV = 'KFETCH_TRACKER_WORKER';
const RESTART_FIRST_MS = 1_000;
const RESTART_MAX_MS = 30_000;
const STABLE_MS = 60_000;
const STOP_GRACE_MS = 10_000;

type WorkerMessage =
  | { kfetch: 'tracker-listening'; url: string }
  | { kfetch: 'tracker-failed'; code: string; message: string }
  | { kfetch: 'tracker-metrics'; id: number };
type PrimaryMessage = { kfetch: 'tracker-stop' } | { kfetch: 'tracker-metrics'; id: number; text?: string; error?: string };
const STOP = 'tracker-stop';
/** A /metrics answer waits this long for the other workers' figures, then answers with this process's own. */
const METRICS_WAIT_MS = 3_000;

/** This process's worker number when it is a tracker worker, else undefined. */
export function trackerWorkerNumber(): number | undefined {
  if (!cluster.isWorker) return undefined;
  const n = Number(process.env[WORKER_ENV]);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** A worker tells the primary it listens on `url`. */
export function reportListening(url: string): void {
  process.send?.({ kfetch: 'tracker-listening', url } satisfies WorkerMessage);
}

/**
 * A worker tells the primary why it could not start, then lets go of the channel (which would keep it alive): it
 * exits with the error's status once main() has printed it.
 */
export async function reportFailed(err: unknown): Promise<void> {
  const code = err instanceof KfetchError ? err.code : 'KF_E_INTERNAL';
  const msg = { kfetch: 'tracker-failed', code, message: err instanceof Error ? err.message : String(err) } satisfies WorkerMessage;
  await new Promise<void>((resolve) => {
    if (process.send === undefined) return resolve();
    process.send(msg, undefined, undefined, () => resolve());
  });
  process.disconnect?.();
}

/**
 * Resolves when this tracker should stop: on SIGINT/SIGTERM (`shutdown`), and in a worker also when the primary
 * asks (an IPC message, not a signal: a Ctrl-C reaches every process of the group, and a second signal would cut the
 * clean close short) or goes away (its IPC channel closes: a primary killed with -9 leaves no orphans behind).
 */
export function stopRequested(shutdown: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (shutdown.aborted) return resolve();
    shutdown.addEventListener('abort', () => resolve(), { once: true });
    if (trackerWorkerNumber() === undefined) return;
    process.on('message', (m: unknown) => {
      if ((m as { kfetch?: unknown } | null)?.kfetch === STOP) resolve();
    });
    process.once('disconnect', () => resolve());
  });
}

/**
 * The /metrics text of a tracker whose own metrics are `registry`: in a worker, every worker's figures combined
 * (asked of the primary, which gathers them with prom-client's cluster aggregation: each metric says how it
 * combines), so a scrape means the same whichever process it reached; alone, or if the primary does not answer in
 * time, this process's own.
 */
export function metricsText(registry: Registry): () => Promise<string> {
  if (trackerWorkerNumber() === undefined) return () => registry.metrics();
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry(); // answers the primary's requests for this worker's figures
  let next = 0;
  const waiting = new Map<number, (text: string | undefined) => void>();
  process.on('message', (m: unknown) => {
    const msg = m as Partial<PrimaryMessage> | null;
    if (msg?.kfetch !== 'tracker-metrics' || typeof msg.id !== 'number') return;
    waiting.get(msg.id)?.(typeof msg.text === 'string' ? msg.text : undefined);
  });
  return async () => {
    const id = next++;
    const text = await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => done(undefined), METRICS_WAIT_MS);
      const done = (t: string | undefined): void => {
        clearTimeout(timer);
        waiting.delete(id);
        resolve(t);
      };
      waiting.set(id, done);
      process.send?.({ kfetch: 'tracker-metrics', id } satisfies WorkerMessage, undefined, undefined, (err: Error | null) => {
        if (err !== null) done(undefined);
      });
    });
    return text ?? registry.metrics();
  };
}

export interface SuperviseOptions {
  workers: number;
  log: Logger;
  /** Aborted on SIGINT/SIGTERM: stop every worker, then resolve. */
  shutdown: AbortSignal;
  /** Called once, when every worker listens. */
  listening: (url: string) => void;
}

interface Slot {
  n: number;
  worker: Worker | undefined;
  startedAt: number;
  delayMs: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Run N tracker workers until `shutdown`. Resolves when they have all stopped after it.
 * @throws KfetchError (the worker's code) if a worker fails before every worker has listened once.
 */
export async function superviseTrackerWorkers(o: SuperviseOptions): Promise<void> {
  const slots: Slot[] = Array.from({ length: o.workers }, (_, i) => ({ n: i + 1, worker: undefined, startedAt: 0, delayMs: RESTART_FIRST_MS, timer: undefined }));
  let stopping = false;
  let started = false;
  let url: string | undefined;
  let listeningCount = 0;
  let failStart: (err: KfetchError) => void = () => {};
  let allListening: () => void = () => {};
  const firstStart = new Promise<void>((resolve, reject) => {
    allListening = resolve;
    failStart = reject;
  });
  // A rejection before anyone awaits it (a worker failing at once) is not "unhandled": it is awaited below.
  firstStart.catch(() => {});

  const aggregator = new AggregatorRegistry();
  const fork = (slot: Slot): void => {
    slot.timer = undefined;
    if (stopping) return;
    const w = cluster.fork({ [WORKER_ENV]: String(slot.n) });
    slot.worker = w;
    slot.startedAt = Date.now();
    let failure: KfetchError | undefined;
    w.on('message', (m: unknown) => {
      const msg = m as Partial<WorkerMessage> | null;
      if (msg?.kfetch === 'tracker-listening' && typeof msg.url === 'string') {
        url ??= msg.url;
        if (!started) {
          if (++listeningCount === o.workers) {
            started = true;
            allListening();
          }
        } else o.log.info({ worker: slot.n, pid: w.process.pid }, 'tracker: worker back');
      } else if (msg?.kfetch === 'tracker-metrics' && typeof msg.id === 'number') {
        const id = msg.id;
        const reply = (r: { text?: string; error?: string }): void => {
          if (w.isConnected()) w.send({ kfetch: 'tracker-metrics', id, ...r } satisfies PrimaryMessage, undefined, () => {});
        };
        aggregator.clusterMetrics().then(
          (text) => reply({ text }),
          (err: unknown) => reply({ error: err instanceof Error ? err.message : String(err) }),
        );
      } else if (msg?.kfetch === 'tracker-failed' && typeof msg.code === 'string' && typeof msg.message === 'string') {
        const code = (Object.hasOwn(ERROR_CATALOGUE, msg.code) ? msg.code : 'KF_E_INTERNAL') as ErrorCode;
        failure = new KfetchError(code, `tracker worker ${slot.n} of ${o.workers}: ${msg.message.slice(0, 2_000)}`);
      }
    });
    w.on('exit', (code, signal) => {
      if (slot.worker === w) slot.worker = undefined;
      if (stopping) return;
      if (!started) {
        failStart(failure ?? new KfetchError('KF_E_INTERNAL', `tracker worker ${slot.n} of ${o.workers} exited (${signal ?? `code ${code}`}) before listening`));
        return;
      }
      if (Date.now() - slot.startedAt >= STABLE_MS) slot.delayMs = RESTART_FIRST_MS;
      o.log.warn({ worker: slot.n, pid: w.process.pid, code, signal, restartInMs: slot.delayMs }, 'tracker: worker exited; the others go on answering; restarting it');
      slot.timer = setTimeout(() => fork(slot), slot.delayMs);
      slot.delayMs = Math.min(slot.delayMs * 2, RESTART_MAX_MS);
    });
  };

  const stopAll = async (): Promise<void> => {
    stopping = true;
    const live: Promise<void>[] = [];
    for (const slot of slots) {
      if (slot.timer !== undefined) clearTimeout(slot.timer);
      const w = slot.worker;
      if (w === undefined || w.isDead()) continue;
      live.push(
        new Promise<void>((resolve) => {
          const kill = setTimeout(() => w.process.kill('SIGKILL'), STOP_GRACE_MS);
          w.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          // A closed channel means it is already on its way out (a Ctrl-C reached it too): the SIGKILL timer backs that up.
          w.send({ kfetch: STOP } satisfies PrimaryMessage, undefined, () => {});
        }),
      );
    }
    await Promise.all(live);
  };

  const aborted = new Promise<void>((resolve) => {
    if (o.shutdown.aborted) return resolve();
    o.shutdown.addEventListener('abort', () => resolve(), { once: true });
  });

  for (const slot of slots) fork(slot);
  try {
    const first = await Promise.race([firstStart.then(() => 'up' as const), aborted.then(() => 'stop' as const)]);
    if (first === 'up') {
      o.log.info({ workers: o.workers, url }, 'tracker: every worker listening');
      o.listening(url!);
      await aborted;
    }
  } finally {
    await stopAll();
  }
}
