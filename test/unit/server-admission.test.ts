// The block server's admission bookkeeping without sockets: slot caps overall and per client, the bounded queue in
// front of them, round-robin across client addresses (FIFO within one), leaving the queue, maxClients, and the
// queue counters the metrics read.

import { describe, expect, it } from 'vitest';
import { Admission, type AdmissionLimits, type Entry, type Release } from '../../src/server/admission.js';

const LIM: AdmissionLimits = { maxConcurrent: 3, maxPerClient: 2, maxQueued: 10, maxQueuedPerClient: 5, maxClients: 10 };

/** A test clock and a log of grants, in order, by label. */
function world(limits: Partial<AdmissionLimits> = {}) {
  let t = 0;
  const a = new Admission({ ...LIM, ...limits }, () => t);
  const granted: string[] = [];
  const releases = new Map<string, Release>();
  const enter = (client: string, label: string): Entry => {
    const e = a.enter(client, (release) => {
      granted.push(label);
      releases.set(label, release);
    });
    if (e.kind === 'granted') {
      granted.push(label);
      releases.set(label, e.release);
    }
    return e;
  };
  const release = (label: string): void => releases.get(label)!();
  return { a, enter, release, granted, tick: (ms: number) => (t += ms) };
}

describe('Admission', () => {
  it('grants at once under the caps, then queues instead of refusing', () => {
    const w = world();
    expect(w.enter('a', 'a1').kind).toBe('granted');
    expect(w.enter('a', 'a2').kind).toBe('granted');
    expect(w.enter('a', 'a3').kind).toBe('queued'); // per-client cap
    expect(w.enter('b', 'b1').kind).toBe('granted');
    expect(w.enter('c', 'c1').kind).toBe('queued'); // overall cap
    expect(w.a.inFlight).toBe(3);
    expect(w.a.queued).toBe(2);
    expect(w.a.activeClients).toBe(2);
    expect(w.a.knownClients).toBe(3);
    expect(w.a.queuedTotal).toBe(2);
  });

  it('a freed slot goes to the next client in round-robin order, FIFO within a client', () => {
    const w = world({ maxConcurrent: 1, maxPerClient: 1 });
    w.enter('x', 'x1'); // holds the only slot
    for (let i = 1; i <= 4; i++) w.enter('a', `a${i}`);
    w.enter('b', 'b1');
    w.enter('c', 'c1');
    w.enter('b', 'b2');
    expect(w.granted).toEqual(['x1']);
    const order = ['x1', 'a1', 'b1', 'c1', 'a2', 'b2', 'a3', 'a4'];
    for (let i = 0; i < order.length - 1; i++) w.release(order[i]!);
    expect(w.granted).toEqual(order);
    w.release('a4');
    expect(w.a.inFlight).toBe(0);
    expect(w.a.queued).toBe(0);
    expect(w.a.knownClients).toBe(0);
  });

  it('a client at its own cap does not block others waiting for an overall slot', () => {
    const w = world({ maxConcurrent: 3, maxPerClient: 1 });
    w.enter('a', 'a1');
    w.enter('a', 'a2'); // queued behind a's own cap
    w.enter('b', 'b1');
    w.enter('c', 'c1'); // overall cap reached
    w.enter('d', 'd1'); // queued for an overall slot
    w.release('b1');
    // a is first in the ring but still at its cap: d gets the slot.
    expect(w.granted).toEqual(['a1', 'b1', 'c1', 'd1']);
    w.release('a1');
    expect(w.granted.at(-1)).toBe('a2');
  });

  it('refuses beyond maxQueued, maxQueuedPerClient and maxClients, naming the reason', () => {
    const w = world({ maxConcurrent: 1, maxPerClient: 1, maxQueued: 3, maxQueuedPerClient: 2, maxClients: 3 });
    w.enter('a', 'a1');
    w.enter('a', 'a2');
    w.enter('a', 'a3');
    expect(w.enter('a', 'a4')).toEqual({ kind: 'refused', reason: 'clientQueueFull' });
    w.enter('b', 'b1');
    expect(w.enter('c', 'c1')).toEqual({ kind: 'refused', reason: 'queueFull' });
    expect(w.a.knownClients).toBe(2); // a refused newcomer leaves no trace
    const w2 = world({ maxClients: 2 });
    w2.enter('a', 'a1');
    w2.enter('b', 'b1');
    expect(w2.enter('c', 'c1')).toEqual({ kind: 'refused', reason: 'maxClients' });
    expect(w2.enter('a', 'a2').kind).toBe('granted'); // a known address is not a new client
    w2.release('b1');
    expect(w2.enter('c', 'c2').kind).toBe('granted');
  });

  it('maxQueued 0 refuses at once when no slot is free (the behaviour before queueing)', () => {
    const w = world({ maxConcurrent: 1, maxQueued: 0 });
    w.enter('a', 'a1');
    expect(w.enter('b', 'b1')).toEqual({ kind: 'refused', reason: 'queueFull' });
  });

  it('a request that leaves the queue never gets a slot; leaving twice or after the grant is harmless', () => {
    const w = world({ maxConcurrent: 1, maxPerClient: 1 });
    w.enter('x', 'x1');
    const a1 = w.enter('a', 'a1');
    const a2 = w.enter('a', 'a2');
    const b1 = w.enter('b', 'b1');
    if (a1.kind !== 'queued' || a2.kind !== 'queued' || b1.kind !== 'queued') throw new Error('expected queued');
    a2.leave(); // from the middle of a's queue... (a1 is its head)
    a1.leave(); // ...then the head: a has nothing left and leaves the ring
    a1.leave();
    expect(w.a.queued).toBe(1);
    expect(w.a.queuedFor('a')).toBe(0);
    w.release('x1');
    expect(w.granted).toEqual(['x1', 'b1']);
    b1.leave(); // after the grant: no effect
    expect(w.a.inFlight).toBe(1);
    w.release('b1');
    expect(w.a.inFlight).toBe(0);
    expect(w.a.knownClients).toBe(0);
  });

  it('a release is idempotent, and a grant that releases at once hands the slot on', () => {
    const w = world({ maxConcurrent: 1 });
    w.enter('x', 'x1');
    // b releases inside its own grant callback (a client found gone when granted).
    const b = w.a.enter('b', (release) => release());
    expect(b.kind).toBe('queued');
    w.enter('c', 'c1');
    w.release('x1');
    w.release('x1');
    expect(w.granted).toEqual(['x1', 'c1']);
    expect(w.a.inFlight).toBe(1);
    expect(w.a.inFlightFor('c')).toBe(1);
  });

  it('sums the time spent queued over requests leaving the queue, granted or not', () => {
    const w = world({ maxConcurrent: 1 });
    w.enter('x', 'x1');
    w.enter('a', 'a1');
    const b = w.enter('b', 'b1');
    w.tick(100);
    w.release('x1'); // a1 waited 100
    w.tick(50);
    if (b.kind === 'queued') b.leave(); // b1 waited 150
    expect(w.a.queueWaitCount).toBe(2);
    expect(w.a.queueWaitMsSum).toBe(250);
    expect(w.a.queuedTotal).toBe(2);
  });

  it('stays consistent under a random sequence of enters, leaves and releases', () => {
    let seed = 12345;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const limits = { maxConcurrent: 4, maxPerClient: 2, maxQueued: 12, maxQueuedPerClient: 4, maxClients: 5 };
    const a = new Admission(limits, () => 0);
    const held: Release[] = [];
    const queued: Array<() => void> = [];
    for (let step = 0; step < 5000; step++) {
      const op = rnd(3);
      if (op === 0) {
        const e = a.enter(`c${rnd(7)}`, (r) => held.push(r));
        if (e.kind === 'granted') held.push(e.release);
        else if (e.kind === 'queued') queued.push(e.leave);
      } else if (op === 1 && held.length > 0) {
        held.splice(rnd(held.length), 1)[0]!();
      } else if (queued.length > 0) {
        queued.splice(rnd(queued.length), 1)[0]!();
      }
      expect(a.inFlight).toBe(held.length);
      expect(a.inFlight).toBeLessThanOrEqual(limits.maxConcurrent);
      expect(a.queued).toBeLessThanOrEqual(limits.maxQueued);
      expect(a.knownClients).toBeLessThanOrEqual(limits.maxClients);
      // Work-conserving: nobody waits for an overall slot while one is free (only per-client caps may hold them).
      if (a.inFlight < limits.maxConcurrent && a.queued > 0) {
        for (let c = 0; c < 7; c++) if (a.queuedFor(`c${c}`) > 0) expect(a.inFlightFor(`c${c}`)).toBe(limits.maxPerClient);
      }
    }
    for (const leave of queued) leave(); // no more grants from here on
    for (const release of held.splice(0)) release();
    expect([a.inFlight, a.queued, a.activeClients, a.knownClients]).toEqual([0, 0, 0, 0]);
  });
});
