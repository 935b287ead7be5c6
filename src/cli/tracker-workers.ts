// `kfetch tracker --workers N` (issue 13): one command, N tracker processes on one port and one shared store.
// The primary (this module) forks N copies of the same command line with node:cluster; each copy runs the ordinary
// tracker on the store (Redis: any process answers any swarm) and says when it listens. Connections are spread by
// the primary (cluster's round-robin), so the port is the same for all, `--port 0` included. The primary prints
// `listening on URL` once every worker listens, restarts a worker that dies (back-off 1 s doubling to 30 s, reset
// once it has stayed up a minute) while the others go on answering, and on SIGINT/SIGTERM stops them all (a stop
// message, then SIGKILL after 10 s) and exits 0. A worker that fails to start fails the whole command with its error.
// With `--udp-port` every worker also binds the UDP tracker's port: node:cluster shares one datagram socket among
// them (the primary binds it, the kernel hands each datagram to whichever worker reads first), and the primary draws
// the one connection-id secret every worker (a restarted one too) is given, so an id one worker gave is accepted by
// any other.

import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { ERROR_CATALOGUE, KfetchError, type ErrorCode } from '../errors.js';

/** Set in each worker's environment: its number, 1 … N (logs carry it as `worker`). */
export const WORKER_ENV = 'KFETCH_TRACKER_WORKER';
/**
 * Set for a restarted worker: the port every worker listens on. With `--port 0` a worker started after all of them
 * had died would otherwise get a new random port, and the URL printed at start would go dead.
 */
const PORT_ENV = 'KFETCH_TRACKER_WORKER_PORT';
/** The same for the UDP tracker's port (`--udp-port 0`). */
const UDP_PORT_ENV = 'KFETCH_TRACKER_WORKER_UDP_PORT';
/**
 * The UDP connection-id secret (hex), drawn once by the primary and put in each fork's environment: not on a command
 * line (other users can read those), never logged, and removed from the worker's process.env as soon as it is read.
 */
const UDP_SECRET_ENV = 'KFETCH_TRACKER_WORKER_UDP_SECRET';
const UDP_SECRET_BYTES = 32;
const RESTART_FIRST_MS = 1_000;
const RESTART_MAX_MS = 30_000;
const STABLE_MS = 60_000;
const STOP_GRACE_MS = 10_000;

type WorkerMessage =
  | { kfetch: 'tracker-listening'; url: string; udpUrl?: string }
  | { kfetch: 'tracker-failed'; code: string; message: string }
  | { kfetch: 'tracker-metrics'; id: number };
type PrimaryMessage = { kfetch: 'tracker-stop' } | { kfetch: 'tracker-metrics'; id: number; text?: string; error?: string };
const STOP = 'tracker-stop';
/** A /metrics answer waits this long for the other workers' figures, then answers with this process's own. */
const METRICS_WAIT_MS = 3_000;
/** The primary reuses one gather of every worker's metrics for this long. */
const METRICS_REUSE_MS = 1_000;

/** This process's worker number when it is a tracker worker, else undefined. */
export function trackerWorkerNumber(): number | undefined {
  if (!cluster.isWorker) return undefined;
  const n = Number(process.env[WORKER_ENV]);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** The port a restarted worker must listen on (undefined: the command line's). */
export function workerPort(): number | undefined {
  if (trackerWorkerNumber() === undefined) return undefined;
  const p = Number(process.env[PORT_ENV]);
  return Number.isInteger(p) && p > 0 && p <= 65535 ? p : undefined;
}

/** The UDP port a restarted worker must bind (undefined: the command line's). */
export function workerUdpPort(): number | undefined {
  if (trackerWorkerNumber() === undefined) return undefined;
  const p = Number(process.env[UDP_PORT_ENV]);
  return Number.isInteger(p) && p > 0 && p <= 65535 ? p : undefined;
}

let udpSecret: Buffer | undefined;
/**
 * In a tracker worker, the connection-id secret the primary gave every worker (read once, then gone from the
 * environment); undefined when this process is not a tracker worker.
 * @throws KfetchError KF_E_INTERNAL in a worker without a well-formed secret: drawing its own would make the ids of the
 *   other workers invalid here, silently (every announce that lands elsewhere than its connect told to connect again).
 */
export function workerUdpSecret(): Buffer | undefined {
  if (trackerWorkerNumber() === undefined) return undefined;
  if (udpSecret !== undefined) return udpSecret;
  const hex = process.env[UDP_SECRET_ENV];
  delete process.env[UDP_SECRET_ENV];
  if (hex === undefined || !new RegExp(`^[0-9a-f]{${UDP_SECRET_BYTES * 2}}$`).test(hex)) {
    throw new KfetchError('KF_E_INTERNAL', `tracker worker: no UDP connection-id secret from the primary (${UDP_SECRET_ENV})`);
  }
  udpSecret = Buffer.from(hex, 'hex');
  return udpSecret;
}

/** A worker tells the primary it listens on `url` (and, with --udp-port, on `udpUrl`). */
export function reportListening(url: string, udpUrl?: string): void {
  process.send?.({ kfetch: 'tracker-listening', url, ...(udpUrl === undefined ? {} : { udpUrl }) } satisfies WorkerMessage);
}

/**
 * A worker tells the primary why it could not start. It then exits with the error's status once main() has printed
 * it (the channel no longer holds it: releaseChannel()).
 */
export function reportFailed(err: unknown): void {
  const code = err instanceof KfetchError ? err.code : 'KF_E_INTERNAL';
  process.send?.({ kfetch: 'tracker-failed', code, message: err instanceof Error ? err.message : String(err) } satisfies WorkerMessage, undefined, undefined, () => {});
}

/**
 * Resolves when this tracker should stop: on SIGINT/SIGTERM (`shutdown`), and in a worker also when the primary
 * asks (an IPC message, not a signal: a Ctrl-C reaches every process of the group, and a second signal would cut the
 * clean close short) or goes away (its IPC channel closes: a primary killed with -9 leaves no orphans behind).
 */
export function stopRequested(shutdown: AbortSignal): Promise<void> {
  if (trackerWorkerNumber() !== undefined) releaseChannel();
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
 * The IPC channel stops holding the worker's event loop open: the worker's own work (the server, the store) does,
 * so it exits by itself, with main()'s exit code, when that work ends. (process.disconnect() would instead make
 * node:cluster exit the worker with code 0, losing the error's status.)
 */
function releaseChannel(): void {
  (process.channel as { unref?: () => void } | undefined)?.unref?.();
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
  /** The workers also run the UDP tracker (`--udp-port`): the primary gives them one connection-id secret. */
  udp?: boolean;
  /** Called once, when every worker listens (`udpUrl` with `udp`). */
  listening: (url: string, udpUrl: string | undefined) => void;
}

interface Slot {
  n: number;
  worker: Worker | undefined;
  /** The ports its current worker was told to bind by name (undefined: the command line's, maybe 0). */
  asked: { port?: string; udpPort?: string };
  /** When its current worker said it listens (undefined: not yet). */
  listeningAt: number | undefined;
  delayMs: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Run N tracker workers until `shutdown`. Resolves when they have all stopped after it.
 * @throws KfetchError (the worker's code) if a worker fails before every worker has listened once.
 */
export async function superviseTrackerWorkers(o: SuperviseOptions): Promise<void> {
  const slots: Slot[] = Array.from({ length: o.workers }, (_, i) => ({ n: i + 1, worker: undefined, asked: {}, listeningAt: undefined, delayMs: RESTART_FIRST_MS, timer: undefined }));
  let stopping = false;
  let started = false;
  let url: string | undefined;
  let udpUrl: string | undefined;
  // One secret for the command's life: workers started later (restarts) accept the ids the first ones gave.
  const secretEnv = o.udp === true ? { [UDP_SECRET_ENV]: randomBytes(UDP_SECRET_BYTES).toString('hex') } : {};
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
  // One gather at a time, its text reused for a second: a flood of scrapes costs the workers one gather a second.
  let gathered: { at: number; text: Promise<string> } | undefined;
  const gather = (): Promise<string> => {
    const now = performance.now();
    if (gathered === undefined || now - gathered.at > METRICS_REUSE_MS) {
      const text = aggregator.clusterMetrics();
      gathered = { at: now, text };
      text.catch(() => {
        if (gathered?.text === text) gathered = undefined;
      });
    }
    return gathered.text;
  };
  const fork = (slot: Slot): void => {
    slot.timer = undefined;
    if (stopping) return;
    // A restart listens where the first workers did (see PORT_ENV): while another worker listens it shares that
    // socket by asking for the same address as that worker did (node:cluster keys a shared socket by the port asked
    // for, maybe 0: asking by number for a port held under 0 would be a second bind, EADDRINUSE); once none does, the
    // socket is gone and the port must be named.
    const peer = slots.find((x) => x !== slot && x.worker !== undefined && x.listeningAt !== undefined);
    const asked = peer !== undefined || url === undefined ? { ...peer?.asked } : { port: new URL(url).port, ...(udpUrl === undefined ? {} : { udpPort: new URL(udpUrl).port }) };
    const { port, udpPort } = asked;
    const w = cluster.fork({
      [WORKER_ENV]: String(slot.n),
      ...(port === undefined ? {} : { [PORT_ENV]: port }),
      ...(udpPort === undefined ? {} : { [UDP_PORT_ENV]: udpPort }),
      ...secretEnv,
    });
    slot.worker = w;
    slot.asked = asked;
    slot.listeningAt = undefined;
    let failure: KfetchError | undefined;
    w.on('message', (m: unknown) => {
      const msg = m as Partial<WorkerMessage> | null;
      if (msg?.kfetch === 'tracker-listening' && typeof msg.url === 'string') {
        const msgUdp = typeof msg.udpUrl === 'string' ? msg.udpUrl : undefined;
        url ??= msg.url;
        udpUrl ??= msgUdp;
        slot.listeningAt = Date.now();
        if (msg.url !== url || msgUdp !== udpUrl) {
          // The others died while it started: it got a new port. Stop it; its restart names the port.
          o.log.warn({ worker: slot.n, url: msg.url, expected: url, udpUrl: msgUdp, expectedUdp: udpUrl }, 'tracker: a worker listens elsewhere than the others; restarting it');
          w.process.kill('SIGKILL');
          return;
        }
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
        gather().then(
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
      if (slot.listeningAt !== undefined && Date.now() - slot.listeningAt >= STABLE_MS) slot.delayMs = RESTART_FIRST_MS;
      o.log.warn(
        { worker: slot.n, pid: w.process.pid, code, signal, ...(failure === undefined ? {} : { reason: failure.message }), restartInMs: slot.delayMs },
        'tracker: worker exited; the others go on answering; restarting it',
      );
      slot.timer = setTimeout(() => fork(slot), slot.delayMs);
      slot.delayMs = Math.min(slot.delayMs * 2, RESTART_MAX_MS);
    });
  };

  const stopAll = async (): Promise<void> => {
    stopping = true;
    o.log.info({ workers: slots.filter((s) => s.worker !== undefined).length }, 'tracker: stopping the workers');
    const live: Promise<void>[] = [];
    for (const slot of slots) {
      if (slot.timer !== undefined) clearTimeout(slot.timer);
      const w = slot.worker;
      if (w === undefined || w.isDead()) continue;
      live.push(
        new Promise<void>((resolve) => {
          let timer: NodeJS.Timeout | undefined;
          w.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          const kill = (): void => {
            o.log.warn({ worker: slot.n, pid: w.process.pid }, `tracker: worker not stopped after ${STOP_GRACE_MS / 1000} s; killing it`);
            w.process.kill('SIGKILL');
          };
          timer = setTimeout(kill, STOP_GRACE_MS);
          // A worker that listens stops on a message (a Ctrl-C may have reached it too: a second signal would cut its
          // close short); one still starting may not hear messages yet, so it gets SIGTERM. A closed channel means it
          // is already on its way out: the SIGKILL timer backs that up.
          if (slot.listeningAt !== undefined) w.send({ kfetch: STOP } satisfies PrimaryMessage, undefined, () => {});
          else w.process.kill('SIGTERM');
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
      o.log.info({ workers: o.workers, url, ...(udpUrl === undefined ? {} : { udpUrl }) }, 'tracker: every worker listening');
      o.listening(url!, udpUrl);
      await aborted;
    }
  } finally {
    await stopAll();
  }
}
