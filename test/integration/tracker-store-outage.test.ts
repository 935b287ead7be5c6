// Issue 13: the tracker's side of a store outage, over real HTTP. While the store fails (StoreUnavailableError) a
// kfetch client gets 503 + Retry-After (the store's seconds) and a JSON error, an original client `200 []`; the
// outage is logged once and counted in stats() and /metrics; the tracker recovers by itself on the next call that succeeds.
// Also: the sweeper calls the store's sweep, and close() leaves a store it was given open.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { TrackerMetrics } from '../../src/tracker/tracker-metrics.js';
import { startTracker, storeLimits, trackerLimits, type RunningTracker } from '../../src/tracker/tracker-server.js';
import { VERSION } from '../../src/version.js';
import { SwitchablePeerStore } from '../helpers/switchable-peer-store.js';
import { until } from '../helpers/wait.js';

const H = 'cd'.repeat(32);
const NONE = { announced: 0, stopped: 0, listed: 0, tooSoon: 0, full: 0, storeDown: 0, refused: 0 };
const KF = { 'user-agent': `kfetch/${VERSION}` };
let tracker: RunningTracker | undefined;

afterEach(async () => {
  await tracker?.close();
  tracker = undefined;
});

/** A tracker on a switchable store, with its log lines (pino JSON) collected. */
async function start(o: { expiryMs?: number } = {}): Promise<{ t: RunningTracker; store: SwitchablePeerStore; lines: Array<{ msg: string }> }> {
  const lines: Array<{ msg: string }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l !== '') lines.push(JSON.parse(l) as { msg: string });
      cb();
    },
  });
  const opts = { minIntervalMs: 0, ...o };
  const store = new SwitchablePeerStore(storeLimits(trackerLimits(opts)));
  const metrics = new TrackerMetrics(() => tracker!.stats());
  const observability = { metrics: () => metrics.text(), status: () => ({}), allowed: () => true };
  tracker = await startTracker({ ...opts, store, observability, log: pino({ level: 'info' }, sink) });
  return { t: tracker, store, lines };
}

const announce = (url: string, fields: Record<string, string>, headers: Record<string, string> = KF): Promise<Response> =>
  fetch(`${url}/peers/${H}.json`, { method: 'POST', headers, body: new URLSearchParams(fields), signal: AbortSignal.timeout(10_000) });

describe('tracker: store outage (issue 13)', () => {
  it('answers 503 + Retry-After to kfetch, 200 [] to originals, logs once, counts, and recovers by itself', async () => {
    const { t, store, lines } = await start();
    expect((await announce(t.url, { port: '7001', progress: '1' })).status).toBe(200);
    expect(await t.stats()).toEqual({ swarms: 1, peers: 1, bitfieldBytes: 0, storeErrors: 0, storeUp: true, answers: { ...NONE, announced: 1 } });

    store.down = true;
    const r1 = await announce(t.url, { port: '7002', progress: '0' });
    expect(r1.status).toBe(503);
    expect(r1.headers.get('retry-after')).toBe('7');
    expect(await r1.json()).toEqual({ error: 'tracker store unavailable; retry later' });
    // An original 2015 peer (no User-Agent) crashes on anything but an array: 200 [] with the reason in a header.
    const r2 = await announce(t.url, { port: '7003', progress: '0' }, {});
    expect(r2.status).toBe(200);
    expect(await r2.json()).toEqual([]);
    expect(r2.headers.get('x-kascade-error')).toMatch(/store unavailable/);
    // Every store call: stopped and the port-0 listing too.
    expect((await announce(t.url, { port: '7001', progress: '1', event: 'stopped' })).status).toBe(503);
    expect((await announce(t.url, { port: '0', progress: '0' })).status).toBe(503);
    const down = await t.stats();
    expect(down).toEqual({ swarms: 1, peers: 1, bitfieldBytes: 0, storeErrors: 4, storeUp: false, answers: { ...NONE, announced: 1, storeDown: 4 } });
    expect(lines.filter((l) => /store unavailable/.test(l.msg))).toHaveLength(1);
    // ... and in /metrics (what an operator's alert reads).
    const downMetrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(downMetrics).toMatch(/^kfetch_tracker_store_up 0$/m);
    expect(downMetrics).toMatch(/^kfetch_tracker_store_errors_total 4$/m);
    expect(downMetrics).toMatch(/^kfetch_tracker_answers_total\{outcome="storeDown"\} 4$/m);

    store.down = false;
    const r3 = await announce(t.url, { port: '7002', progress: '0' });
    expect(r3.status).toBe(200);
    expect(((await r3.json()) as Array<{ port: number }>).map((p) => p.port)).toEqual([7001]);
    expect(await t.stats()).toMatchObject({ peers: 2, storeErrors: 4, storeUp: true });
    expect(lines.filter((l) => /store is back/.test(l.msg))).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 300)); // past the metrics' read cache
    expect(await (await fetch(`${t.url}/metrics`)).text()).toMatch(/^kfetch_tracker_store_up 1$/m);
    // A second outage is logged again, once.
    store.down = true;
    await announce(t.url, { port: '7002', progress: '0.5' });
    await announce(t.url, { port: '7002', progress: '0.6' });
    expect(lines.filter((l) => /store unavailable/.test(l.msg))).toHaveLength(2);
  });

  it('the sweeper calls the store; close() leaves a store it was given open', async () => {
    const { t, store } = await start({ expiryMs: 200 });
    await until(() => store.sweeps >= 2, 5_000, 'two sweeps');
    // A failing sweep is counted like any store call, and sweeping goes on.
    store.down = true;
    const before = store.sweeps;
    await until(async () => store.sweeps > before + 1 && (await t.stats()).storeUp === false, 5_000, 'sweeps while down');
    await t.close();
    expect(store.closes).toBe(0);
  });
});
