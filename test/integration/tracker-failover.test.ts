// Issue 13 point 3: one Announcer over a kascade's several trackers (docs/spec-trackers.md), against real sockets.
// A failed announce moves the next attempt to the next tracker, on the announcer's one retry schedule (so three
// dead trackers are not announced to faster than one); a tracker that answers is kept; a 403 is a request to wait,
// not a failure to fail over from; `event=stopped` goes to the last two trackers that accepted us. The jitter is
// pinned (random 0.5 gives the schedule's own delays) so the counts below compare like with like.

import { afterEach, describe, expect, it } from 'vitest';
import { Announcer } from '../../src/tracker/announcer.js';
import { startAdversarialTracker, type AdversarialTracker } from '../helpers/adversarial-tracker.js';
import { freePort } from '../helpers/system.js';
import { until } from '../helpers/wait.js';

const trackers: AdversarialTracker[] = [];
const announcers: Announcer[] = [];
afterEach(async () => {
  await Promise.all(announcers.splice(0).map((a) => a.stop()));
  await Promise.all(trackers.splice(0).map((t) => t.close()));
});

const ok = { kind: 'body', body: '[]' } as const;
const dead503 = { kind: 'status', status: 503 } as const;

async function tracker(mode: Parameters<typeof startAdversarialTracker>[0]): Promise<AdversarialTracker> {
  const t = await startAdversarialTracker(mode);
  trackers.push(t);
  return t;
}

function make(opts: ConstructorParameters<typeof Announcer>[0]): Announcer {
  const a = new Announcer({ random: () => 0.5, ...opts });
  announcers.push(a);
  return a;
}

/** A loopback port that was bound and closed: connecting is refused. */
async function closedPortUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}/peers/${'ab'.repeat(32)}.json`;
}

const stopped = (t: AdversarialTracker): number => t.requests.filter((r) => r.fields.event === 'stopped').length;
const announces = (t: AdversarialTracker): number => t.requests.filter((r) => r.fields.event === undefined).length;

describe('Announcer failover over several trackers', () => {
  it('moves past a refused port and a 503 to the tracker that answers, and keeps it', async () => {
    const refused = await closedPortUrl();
    const down = await tracker(dead503);
    const live = await tracker(ok);
    const errors: string[] = [];
    let oks = 0;
    const a = make({
      url: refused,
      trackers: [refused, down.url, live.url],
      state: () => ({ port: 4001, progress: 1 }),
      limits: { announceFastRetrySchedule: [0.05] },
      onError: (e) => errors.push(e.code),
      onPeers: () => oks++,
    });
    expect(a.facts.url).toBe(refused);
    a.start();
    // Counted when the reply has been handled (the tracker records a request before it answers).
    await until(() => oks === 1, 20_000, 'an announce accepted by the third tracker');
    expect(live.requests).toHaveLength(1);
    expect(errors).toEqual(['KF_E_TRACKER_UNREACHABLE', 'KF_E_TRACKER_REFUSED']);
    expect(a.facts.url).toBe(live.url);
    expect(a.facts.lastError).toBeUndefined();
    expect(a.failureCount).toBe(0);
    // It sticks with the tracker that works.
    for (let i = 0; i < 3; i++) await a.announceNow();
    expect(live.requests).toHaveLength(4);
    expect(down.requests).toHaveLength(1);
    // When that one fails, the next attempt goes on round the list (to the first again: refused, then the 503).
    live.setMode(dead503);
    await a.announceNow();
    expect(a.facts.url).toBe(refused);
  }, 30_000);

  it('a 403 is not a failure to fail over from: the retry goes to the same tracker after its Retry-After', async () => {
    const busy = await tracker((n) => (n === 1 ? { kind: 'status', status: 403, retryAfter: '1' } : ok));
    const other = await tracker(ok);
    const a = make({ url: busy.url, trackers: [busy.url, other.url], state: () => ({ port: 4002, progress: 1 }), limits: { announceFastRetrySchedule: [0.05] } });
    a.start();
    await until(() => busy.requests.length === 1);
    expect(a.facts.url).toBe(busy.url);
    await until(() => busy.requests.length === 2, 20_000, 'the retry to the tracker that said 403');
    expect(other.requests).toHaveLength(0);
    expect(a.facts.url).toBe(busy.url);
  }, 30_000);

  it('three dead trackers are announced to no faster than one: the retry schedule is the announcer’s, in turn', async () => {
    const limits = { announceFastRetrySchedule: [0.1, 0.2, 0.3], announceFastWindowMs: 600_000 };
    const control = await tracker(dead503);
    const dead = [await tracker(dead503), await tracker(dead503), await tracker(dead503)];
    const one = make({ url: control.url, state: () => ({ port: 4003, progress: 1 }), limits });
    const three = make({ url: dead[0]!.url, trackers: dead.map((t) => t.url), state: () => ({ port: 4004, progress: 1 }), limits });
    one.start();
    three.start();
    // Run both for a few seconds on the same loop: the single-tracker announcer is the yardstick.
    await until(() => control.requests.length >= 8, 30_000, 'eight retries to the single dead tracker');
    await Promise.all([one.stop(), three.stop()]); // freezes the counts (neither ever succeeded: no stopped is sent)
    const total = dead.reduce((n, t) => n + t.requests.length, 0);
    const single = control.requests.length;
    // Generous: one attempt of slack either way for the moment the two are compared.
    expect(total).toBeLessThanOrEqual(single + 1);
    expect(total).toBeGreaterThanOrEqual(single - 1);
    // In turn: every attempt went to the next tracker in the list.
    const order = dead
      .flatMap((t, i) => t.requests.map((r) => ({ i, at: r.at })))
      .sort((x, y) => x.at - y.at)
      .map((r) => r.i);
    expect(order).toEqual(order.map((_, k) => k % 3));
    // The last attempt may have been cut by stop() before its failure was counted.
    expect(three.failureCount).toBeGreaterThanOrEqual(total - 1);
    expect(three.failureCount).toBeLessThanOrEqual(total);
  }, 40_000);

  it('event=stopped goes to the last two trackers that accepted us, not to older ones', async () => {
    const [t1, t2, t3] = [await tracker(ok), await tracker(ok), await tracker(ok)];
    const a = make({ url: t1.url, trackers: [t1.url, t2.url, t3.url], state: () => ({ port: 4005, progress: 1 }) });
    await a.announceNow(); // t1 accepts
    t1.setMode(dead503);
    await a.announceNow(); // t1 fails: next is t2
    await a.announceNow(); // t2 accepts
    t2.setMode(dead503);
    await a.announceNow(); // t2 fails: next is t3
    await a.announceNow(); // t3 accepts
    expect([announces(t1), announces(t2), announces(t3)]).toEqual([2, 2, 1]);
    expect(a.facts.url).toBe(t3.url);
    await a.stop();
    expect([stopped(t1), stopped(t2), stopped(t3)]).toEqual([0, 1, 1]);
  }, 30_000);

  it('a single tracker behaves as before: every attempt goes to it', async () => {
    const only = await tracker(dead503);
    const a = make({ url: only.url, state: () => ({ port: 4006, progress: 1 }), limits: { announceFastRetrySchedule: [0.05] } });
    a.start();
    await until(() => only.requests.length >= 3);
    expect(a.facts.url).toBe(only.url);
    expect(a.trackers).toEqual([only.url]);
  }, 30_000);
});
