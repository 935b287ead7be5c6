// The Announcer's schedule against real trackers: first announce (after an optional delay), peers delivered, fast
// retries inside the window and exponential back-off after it (shortened limits), 403 Retry-After honoured, recovery,
// outcome counters, and a bounded event=stopped on stop(). Many announcers together: tracker-announce-many.test.ts.
// Times on a loaded machine only grow, so real gaps are checked from below; how long a wait was planned is read from
// the announcer's own schedule (`plannedDelays`), and every wait for an event has a generous bound (issue 10).
import { afterEach, describe, expect, it } from 'vitest';
import type { KfetchError } from '../../src/errors.js';
import type { AnnounceResult } from '../../src/tracker/announce-client.js';
import { createAnnounceStats } from '../../src/tracker/announce-stats.js';
import { Announcer } from '../../src/tracker/announcer.js';
import type { RunningTracker } from '../../src/tracker/tracker-server.js';
import { startTestTracker } from '../helpers/tracker-store.js';
import { LIMITS } from '../../src/limits.js';
import { Bitfield } from '../../src/util/bitfield.js';
import { startAdversarialTracker, type AdversarialTracker } from '../helpers/adversarial-tracker.js';
import { never, until, within } from '../helpers/wait.js';

let adv: AdversarialTracker | undefined;
let real: RunningTracker | undefined;
const announcers: Announcer[] = [];
afterEach(async () => {
  await Promise.all(announcers.map((a) => a.stop()));
  announcers.length = 0;
  await adv?.close();
  await real?.close();
  adv = undefined;
  real = undefined;
});

function make(opts: ConstructorParameters<typeof Announcer>[0]): Announcer {
  const a = new Announcer(opts);
  announcers.push(a);
  return a;
}


const fast = { announceIntervalMinMs: 10, announceFastRetrySchedule: [0.05, 0.1, 0.2] };

/**
 * The delay the announcer planned after each announce, read when it has just scheduled the next one (its callbacks
 * run right before it schedules, so a microtask later the timer is set). Pass the result's `onPeers`/`onError`.
 */
function plannedDelays(get: () => Announcer): { delays: number[]; note: () => void } {
  const delays: number[] = [];
  return { delays, note: () => queueMicrotask(() => delays.push(get().nextAnnounceInMs ?? Number.NaN)) };
}

/** Gaps in ms between the tracker's successive requests. */
function gaps(t: AdversarialTracker): number[] {
  return t.requests.slice(1).map((r, i) => r.at - t.requests[i]!.at);
}

describe('Announcer', () => {
  it('announces at start, delivers peers, and removes itself on stop', async () => {
    real = await startTestTracker({ minIntervalMs: 0 });
    const url = `${real.url}/peers/${'12'.repeat(32)}.json`;
    const a = make({ url, state: () => ({ port: 4001, progress: 1 }) });
    const gotB: AnnounceResult[] = [];
    const planB = plannedDelays(() => b);
    const b = make({ url, state: () => ({ port: 4002, progress: 0 }), onPeers: (r) => (gotB.push(r), planB.note()) });
    a.start();
    await until(async () => (await real!.stats()).peers === 1);
    b.start();
    await until(() => planB.delays.length === 1);
    expect(gotB[0]!.peers.map((p) => p.port)).toEqual([4001]);
    expect(planB.delays[0]).toBeGreaterThan(50_000); // the reply's interval, not a retry
    await a.stop();
    expect((await real.stats()).peers).toBe(1);
    await b.announceNow();
    expect(gotB[1]!.peers).toEqual([]);
  });

  it('issue 10: a tracker that refuses our bitfield (field blocks) hears us without it, and we stay listed', async () => {
    real = await startTestTracker({ minIntervalMs: 0 });
    const url = `${real.url}/peers/${'34'.repeat(32)}.json`;
    const first = await fetch(url, { method: 'POST', body: new URLSearchParams({ port: '4001', progress: '0' }) });
    expect(first.status).toBe(200);
    // More blocks than any bitfield may describe (LIMITS.maxBlocksPerSize): the tracker's parser refuses `blocks`.
    const bf = Bitfield.full(LIMITS.maxBlocksPerSize + 8);
    const errors: KfetchError[] = [];
    const got: AnnounceResult[] = [];
    const a = make({ url, state: () => ({ port: 4002, progress: 1, blocks: { blockSize: 4096, bitfield: bf } }), onPeers: (r) => got.push(r), onError: (e) => errors.push(e) });
    a.start();
    await until(() => got.length === 1, 10_000);
    expect(errors.map((e) => e.field)).toEqual(['blocks']);
    expect((await real.stats()).peers).toBe(2);
    expect(got[0]!.peers.map((p) => p.port)).toEqual([4001]);
  });

  it('retries on the schedule, then returns to the reply interval after a success', async () => {
    adv = await startAdversarialTracker((n) => (n <= 3 ? { kind: 'status', status: 503 } : { kind: 'peers', count: 2, interval: 0.2 }));
    const errors: KfetchError[] = [];
    const oks: AnnounceResult[] = [];
    const a = make({
      url: adv.url,
      state: () => ({ port: 4001, progress: 0.5 }),
      limits: fast,
      random: () => 0.5,
      onError: (e) => errors.push(e),
      onPeers: (r) => oks.push(r),
    });
    const t0 = performance.now();
    a.start();
    await until(() => oks.length === 1);
    // Three failures, waits 50 + 100 + 200 ms before the fourth (successful) announce.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(340);
    expect(errors.map((e) => e.code)).toEqual(['KF_E_TRACKER_REFUSED', 'KF_E_TRACKER_REFUSED', 'KF_E_TRACKER_REFUSED']);
    expect(a.failureCount).toBe(0);
    expect(oks[0]!.intervalMs).toBe(200);
    await until(() => adv!.requests.length >= 5);
  });

  it('a 403 + Retry-After delays the next announce by at least what it asks, not the fast schedule', async () => {
    adv = await startAdversarialTracker((n) => (n === 1 ? { kind: 'status', status: 403, retryAfter: '1' } : { kind: 'peers', count: 1 }));
    const stats = createAnnounceStats();
    const a = make({ url: adv.url, state: () => ({ port: 4001, progress: 0 }), limits: fast, random: () => 0, stats });
    a.start();
    await until(() => stats.ok === 1, 5000);
    expect(adv.requests).toHaveLength(2);
    // The fast schedule alone would have retried after 37.5 ms.
    expect(gaps(adv)[0]).toBeGreaterThanOrEqual(990);
    expect(stats).toMatchObject({ ok: 1, backoff403: 1, failed: {} });
    expect(stats.lastFailureAtMs).toBeLessThanOrEqual(stats.lastOkAtMs!);
    expect(a.failureCount).toBe(0);
  });

  it('retries fast inside the window when the tracker fails then recovers', async () => {
    adv = await startAdversarialTracker((n) => (n <= 4 ? { kind: 'status', status: 503 } : { kind: 'peers', count: 1 }));
    const stats = createAnnounceStats();
    const plan = plannedDelays(() => a);
    const a = make({
      url: adv.url,
      state: () => ({ port: 4001, progress: 0 }),
      // Outside the window the first retry would wait 20 s: only the fast schedule can recover within the bound.
      limits: { announceFastWindowMs: 10_000, announceFastRetrySchedule: [0.05, 0.1], announceBackoffBaseMs: 20_000 },
      stats,
      onError: plan.note,
    });
    a.start();
    await until(() => stats.ok === 1, 15_000, 'recovery on the fast schedule');
    expect(stats.failed).toEqual({ KF_E_TRACKER_REFUSED: 4 });
    // Planned: jitter ±25% around 50, 100, 100, 100 ms; the real gaps are at least that.
    await until(() => plan.delays.length === 4);
    expect(plan.delays[0]).toBeLessThanOrEqual(62.5);
    for (const d of plan.delays) expect(d).toBeLessThanOrEqual(125);
    const g = gaps(adv);
    expect(g).toHaveLength(4);
    expect(g[0]).toBeGreaterThanOrEqual(35);
    for (const x of g.slice(1)) expect(x).toBeGreaterThanOrEqual(70);
  });

  it('after the window, backs off exponentially up to the cap', async () => {
    adv = await startAdversarialTracker({ kind: 'status', status: 503 });
    const plan = plannedDelays(() => a);
    const a = make({
      url: adv.url,
      state: () => ({ port: 4001, progress: 0 }),
      limits: { announceFastWindowMs: 0, announceBackoffBaseMs: 100, announceBackoffMaxMs: 400, announceRetryJitter: 0 },
      onError: plan.note,
    });
    a.start();
    await until(() => adv!.requests.length >= 5 && plan.delays.length >= 4);
    expect(a.failureCount).toBeGreaterThanOrEqual(4);
    const want = [100, 200, 400, 400];
    // Planned exactly (no jitter; read within a microtask of scheduling), and really waited at least that long.
    plan.delays.slice(0, 4).forEach((d, i) => {
      expect(d).toBeLessThanOrEqual(want[i]!);
      expect(d).toBeGreaterThan(want[i]! - 20);
    });
    gaps(adv).slice(0, 4).forEach((x, i) => expect(x).toBeGreaterThanOrEqual(want[i]! - 5));
  });

  it('startDelayMs holds back the first announce', async () => {
    adv = await startAdversarialTracker({ kind: 'peers', count: 0 });
    const a = make({ url: adv.url, state: () => ({ port: 4001, progress: 0 }), startDelayMs: 400 });
    const t0 = performance.now();
    a.start();
    expect(a.nextAnnounceInMs).toBeGreaterThan(350);
    await until(() => adv!.requests.length === 1);
    expect(adv.requests[0]!.at - t0).toBeGreaterThanOrEqual(390);
  });

  it('waits at least Retry-After after a 403', async () => {
    adv = await startAdversarialTracker({ kind: 'status', status: 403, retryAfter: '2' });
    const errors: KfetchError[] = [];
    const plan = plannedDelays(() => a);
    const a = make({ url: adv.url, state: () => ({ port: 4001, progress: 0 }), limits: fast, onError: (e) => (errors.push(e), plan.note()) });
    a.start();
    await until(() => plan.delays.length === 1);
    expect(errors[0]!.code).toBe('KF_E_TRACKER_BACKOFF');
    expect(plan.delays[0]).toBeGreaterThan(1980);
    // And on the wire: the retry came no sooner.
    await until(() => adv!.requests.length === 2);
    expect(gaps(adv)[0]).toBeGreaterThanOrEqual(1990);
  });

  it('stop() is bounded when the tracker hangs, and never throws', async () => {
    adv = await startAdversarialTracker((n) => (n === 1 ? { kind: 'body', body: '[]' } : { kind: 'hang' }));
    const oks: AnnounceResult[] = [];
    const a = make({ url: adv.url, state: () => ({ port: 4001, progress: 0 }), limits: { stopTimeoutMs: 300 }, onPeers: (r) => oks.push(r) });
    a.start();
    await until(() => oks.length === 1);
    // Bounded, not timed: a stop that waited on the hanging tracker would never settle.
    await expect(within(a.stop(), 20_000, 'stop() with a hanging tracker')).resolves.toBeUndefined();
    expect(adv.requests[1]?.fields.event).toBe('stopped');
  });

  it('stop() sends nothing when no announce ever succeeded, and cancels an announce in flight', async () => {
    adv = await startAdversarialTracker({ kind: 'hang' });
    // An announce left in flight would hold stop() until its own timeout, far past this bound.
    const a = make({ url: adv.url, state: () => ({ port: 4001, progress: 0 }), limits: { trackerIdleTimeoutMs: 60_000, trackerTotalTimeoutMs: 60_000 } });
    a.start();
    await until(() => adv!.requests.length === 1);
    await within(a.stop(), 20_000, 'stop() with an announce in flight');
    await never(() => adv!.requests.length > 1, 200, 'an event=stopped after no successful announce');
  });

  it('survives a throwing onPeers callback', async () => {
    adv = await startAdversarialTracker({ kind: 'peers', count: 1, interval: 0.05 });
    const a = make({
      url: adv.url,
      state: () => ({ port: 4001, progress: 0 }),
      limits: fast,
      onPeers: () => {
        throw new Error('boom');
      },
    });
    a.start();
    await until(() => adv!.requests.length >= 3);
  });
});
