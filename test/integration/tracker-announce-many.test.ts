// Many announcers in one process (a seeding box with thousands of swarms), against real HTTP trackers: the shared
// AnnounceQueue bounds announces in flight per tracker and overall (counted at the tracker), a hanging tracker does
// not starve another, an announcer stopped while queued leaves the queue, and stopAll() tells every tracker under one
// deadline with bounded concurrency, even when the tracker hangs.
import { afterEach, describe, expect, it } from 'vitest';
import { AnnounceQueue } from '../../src/tracker/announce-queue.js';
import { createAnnounceStats, type AnnounceStats } from '../../src/tracker/announce-stats.js';
import { Announcer, stopAll, type AnnouncerOptions } from '../../src/tracker/announcer.js';
import type { RunningTracker } from '../../src/tracker/tracker-server.js';
import { startTestTracker } from '../helpers/tracker-store.js';
import { startAdversarialTracker, type AdversarialTracker } from '../helpers/adversarial-tracker.js';
import { never, until, within } from '../helpers/wait.js';

const trackers: AdversarialTracker[] = [];
let real: RunningTracker | undefined;
const announcers: Announcer[] = [];
afterEach(async () => {
  await stopAll(announcers.splice(0), { deadlineMs: 1000 });
  await Promise.all(trackers.splice(0).map((t) => t.close()));
  await real?.close();
  real = undefined;
});

async function tracker(...args: Parameters<typeof startAdversarialTracker>): Promise<AdversarialTracker> {
  const t = await startAdversarialTracker(...args);
  trackers.push(t);
  return t;
}

/** `n` announcers on `url`, ports 5000 + offset + i. */
function many(n: number, url: string, extra: Partial<AnnouncerOptions> = {}, offset = 0): Announcer[] {
  return Array.from({ length: n }, (_, i) => {
    const a = new Announcer({ url, state: () => ({ port: 5000 + offset + i, progress: 1 }), ...extra });
    announcers.push(a);
    return a;
  });
}


const stoppedPorts = (t: AdversarialTracker): string[] =>
  t.requests.filter((r) => r.fields.event === 'stopped').map((r) => r.fields.port!);

describe('AnnounceQueue', () => {
  it('never has more than its bound in flight at the tracker (50 announcers, bound 4)', async () => {
    const t = await tracker({ kind: 'delay', ms: 40, then: { kind: 'peers', count: 2 } });
    const queue = new AnnounceQueue({ perTracker: 4 });
    const stats = createAnnounceStats();
    const list = many(50, t.url, { queue, stats });
    let maxQueueInFlight = 0;
    const sampler = setInterval(() => (maxQueueInFlight = Math.max(maxQueueInFlight, queue.inFlight)), 5);
    try {
      for (const a of list) a.start();
      await until(() => stats.ok === 50, 10_000);
    } finally {
      clearInterval(sampler);
    }
    expect(t.requests).toHaveLength(50);
    expect(t.maxInFlight).toBeLessThanOrEqual(4);
    expect(t.maxInFlight).toBeGreaterThanOrEqual(2);
    expect(maxQueueInFlight).toBeLessThanOrEqual(4);
    expect(queue.waiting).toBe(0);
  });

  it('without a queue the same burst is not bounded (the measurement can fail)', async () => {
    const t = await tracker({ kind: 'delay', ms: 100, then: { kind: 'peers', count: 0 } });
    const stats = createAnnounceStats();
    for (const a of many(20, t.url, { stats })) a.start();
    await until(() => stats.ok === 20, 10_000);
    expect(t.maxInFlight).toBeGreaterThan(4);
  });

  it('a hanging tracker holds only its own share: another tracker keeps being announced to', async () => {
    const dead = await tracker({ kind: 'hang' });
    const live = await tracker({ kind: 'delay', ms: 10, then: { kind: 'peers', count: 0 } });
    const queue = new AnnounceQueue({ concurrency: 3, perTracker: 2 });
    const deadStats = createAnnounceStats();
    const liveStats = createAnnounceStats();
    for (const a of many(6, dead.url, { queue, stats: deadStats, limits: { trackerTotalTimeoutMs: 20_000, trackerIdleTimeoutMs: 20_000 } })) a.start();
    await until(() => dead.inFlight === 2);
    for (const a of many(20, live.url, { queue, stats: liveStats }, 100)) a.start();
    await until(() => liveStats.ok === 20, 5000);
    expect(dead.requests).toHaveLength(2);
    expect(live.maxInFlight).toBe(1);
    expect(queue.inFlight).toBe(2);
    expect(queue.waiting).toBe(4);
    expect(deadStats.ok + Object.keys(deadStats.failed).length).toBe(0);
  });

  it('an announcer stopped while queued leaves the queue and never announces', async () => {
    const t = await tracker({ kind: 'hang' });
    const queue = new AnnounceQueue({ perTracker: 1 });
    // The hanging announce cannot end in the 20 s stop bound below: only leaving the queue lets stop() return.
    const [first, queued, last] = many(3, t.url, { queue, limits: { trackerTotalTimeoutMs: 60_000, trackerIdleTimeoutMs: 60_000 } });
    first!.start();
    await until(() => t.inFlight === 1);
    queued!.start();
    last!.start();
    await until(() => queue.waiting === 2);
    await within(queued!.stop(), 20_000, 'stop() of a queued announcer');
    expect(queue.waiting).toBe(1);
    // Free the slot: the last one goes next, the stopped one never does.
    await first!.stop();
    await until(() => t.requests.length === 2);
    await never(() => t.requests.some((r) => r.fields.port === '5001'), 200, 'the stopped announcer announcing');
    expect(t.requests.map((r) => r.fields.port)).toEqual(['5000', '5002']);
    expect(queue.waiting).toBe(0);
  });
});

describe('stopAll', () => {
  it('resolves by its deadline with 200 announcers when the tracker hangs', async () => {
    const t = await tracker((n) => (n <= 200 ? { kind: 'peers', count: 0 } : { kind: 'hang' }));
    const queue = new AnnounceQueue();
    const stats = createAnnounceStats();
    // The stopped announces' own timeouts cannot end them in the 10 s bound below: only stopAll's deadline can.
    const limits = { trackerTotalTimeoutMs: 60_000, trackerIdleTimeoutMs: 60_000, stopTimeoutMs: 60_000 };
    const list = many(200, t.url, { queue, stats, limits });
    for (const a of list) a.start();
    await until(() => stats.ok === 200, 15_000);

    const t0 = performance.now();
    const result = await within(stopAll(list, { deadlineMs: 500, concurrency: 16 }), 10_000, 'stopAll past its deadline');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(480);
    expect(result).toEqual({ sent: 0, failed: 200, skipped: 0 });
    // Only `concurrency` stopped announces were ever opened; the rest never got a turn.
    expect(stoppedPorts(t).length).toBeGreaterThan(0);
    expect(stoppedPorts(t).length).toBeLessThanOrEqual(16);
    await until(() => stats.stoppedFailed === 200, 10_000);
    expect(stats.stoppedSent).toBe(0);
    // Stopping again does nothing and says so.
    await expect(stopAll(list, { deadlineMs: 100 })).resolves.toEqual({ sent: 0, failed: 0, skipped: 200 });
  });

  it('sends event=stopped to a healthy tracker for every announcer that announced, and skips the rest', async () => {
    real = await startTestTracker({ minIntervalMs: 0 });
    const url = `${real.url}/peers/${'34'.repeat(32)}.json`;
    const stats = createAnnounceStats();
    const announced = many(40, url, { stats });
    const idle = many(10, url, { stats }, 100); // never started
    for (const a of announced) a.start();
    await until(() => stats.ok === 40);
    expect((await real.stats()).peers).toBe(40);

    const result = await stopAll([...announced, ...idle], { deadlineMs: 4000, concurrency: 8 });
    expect(result).toEqual({ sent: 40, failed: 0, skipped: 10 });
    expect((await real.stats()).peers).toBe(0);
    expect(stats).toMatchObject({ stoppedSent: 40, stoppedFailed: 0 });
  });

  it('keeps to its concurrency and reaches every port', async () => {
    const t = await tracker({ kind: 'delay', ms: 30, then: { kind: 'peers', count: 0 } });
    // Announce one at a time first, so the tracker's peak concurrency afterwards is stopAll's.
    const queue = new AnnounceQueue({ perTracker: 1 });
    const stats: AnnounceStats = createAnnounceStats();
    const list = many(30, t.url, { queue, stats });
    for (const a of list) a.start();
    await until(() => stats.ok === 30, 10_000);
    expect(t.maxInFlight).toBe(1);

    const result = await stopAll(list, { deadlineMs: 4000, concurrency: 5 });
    expect(result).toEqual({ sent: 30, failed: 0, skipped: 0 });
    expect(t.maxInFlight).toBeLessThanOrEqual(5);
    expect(t.maxInFlight).toBeGreaterThanOrEqual(2);
    expect(stoppedPorts(t).sort()).toEqual(Array.from({ length: 30 }, (_, i) => String(5000 + i)).sort());
  });
});
