// SlotQueue (src/box/slot-queue.ts), issue 10 point 7: a waiting task whose signal aborts settles at once without
// running; a running task is never cut off; slots pass first in, first out. Issue 12: the number of slots changes at
// run time (raising it starts waiters at once; lowering it lets running tasks finish and hands no slot on meanwhile).

import { describe, expect, it } from 'vitest';
import { SlotQueue } from '../../src/box/slot-queue.js';

function gate(): { open: () => void; wait: Promise<void> } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { open, wait };
}

describe('SlotQueue', () => {
  it('runs at most `concurrency` tasks, the rest in arrival order', async () => {
    const q = new SlotQueue(2);
    const order: string[] = [];
    const g = gate();
    const signal = new AbortController().signal;
    const task = (name: string) => async () => {
      order.push(`start ${name}`);
      await g.wait;
      order.push(`end ${name}`);
    };
    const all = ['a', 'b', 'c', 'd'].map((n) => q.run(signal, task(n)));
    await Promise.resolve();
    expect(order).toEqual(['start a', 'start b']);
    expect(q.pending).toBe(2);
    expect(q.size).toBe(2);
    g.open();
    expect(await Promise.all(all)).toEqual([true, true, true, true]);
    expect(order.filter((o) => o.startsWith('start'))).toEqual(['start a', 'start b', 'start c', 'start d']);
    expect(q.pending).toBe(0);
    expect(q.size).toBe(0);
  });

  it('a waiting task whose signal aborts settles false at once and never runs; the others go on', async () => {
    const q = new SlotQueue(1);
    const g = gate();
    const ran: string[] = [];
    const running = q.run(new AbortController().signal, async () => {
      ran.push('first');
      await g.wait;
    });
    const c = new AbortController();
    const waiting = q.run(c.signal, async () => {
      ran.push('aborted one');
    });
    const after = q.run(new AbortController().signal, async () => {
      ran.push('after');
    });
    c.abort(new Error('removed'));
    expect(await waiting).toBe(false); // settled while the first still holds the slot
    expect(q.size).toBe(1);
    g.open();
    expect(await running).toBe(true);
    expect(await after).toBe(true);
    expect(ran).toEqual(['first', 'after']);
  });

  it('an aborted signal before the call: false, never run; a running task sees its abort but is awaited, not cut off', async () => {
    const q = new SlotQueue(1);
    const dead = new AbortController();
    dead.abort();
    expect(await q.run(dead.signal, () => Promise.reject(new Error('must not run')))).toBe(false);
    const c = new AbortController();
    let finished = false;
    const p = q.run(c.signal, async () => {
      await new Promise<void>((r) => c.signal.addEventListener('abort', () => r(), { once: true }));
      await new Promise((r) => setTimeout(r, 20)); // e.g. a last checkpoint
      finished = true;
    });
    c.abort();
    expect(await p).toBe(true);
    expect(finished).toBe(true);
  });

  it("a task's rejection is passed on and its slot freed", async () => {
    const q = new SlotQueue(1);
    const signal = new AbortController().signal;
    await expect(q.run(signal, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await q.run(signal, async () => undefined)).toBe(true);
    expect(q.pending).toBe(0);
  });

  describe('setConcurrency (issue 12: maxDownloads applied at once)', () => {
    /** `n` tasks on `q`, each held until its gate opens; records starts. */
    function tasks(q: SlotQueue, n: number) {
      const started: number[] = [];
      const gates = Array.from({ length: n }, () => gate());
      const signal = new AbortController().signal;
      const done = gates.map((g, i) =>
        q.run(signal, async () => {
          started.push(i);
          await g.wait;
        }),
      );
      return { started, gates, done };
    }
    const tick = () => new Promise<void>((r) => setImmediate(r));

    it('raising it starts waiting tasks at once, in arrival order', async () => {
      const q = new SlotQueue(1);
      const t = tasks(q, 4);
      await tick();
      expect(t.started).toEqual([0]);
      q.setConcurrency(3);
      expect(q.concurrency).toBe(3);
      await tick();
      expect(t.started).toEqual([0, 1, 2]); // without waiting for task 0 to end
      expect(q.pending).toBe(3);
      expect(q.size).toBe(1);
      for (const g of t.gates) g.open();
      expect(await Promise.all(t.done)).toEqual([true, true, true, true]);
      expect(q.pending).toBe(0);
    });

    it('lowering it cuts no running task; no slot is handed on until fewer than the new number run', async () => {
      const q = new SlotQueue(3);
      const t = tasks(q, 5);
      await tick();
      expect(t.started).toEqual([0, 1, 2]);
      q.setConcurrency(1);
      expect(q.pending).toBe(3); // still running
      t.gates[0]!.open();
      await t.done[0];
      await tick();
      expect(t.started).toEqual([0, 1, 2]); // 2 still run, over the new limit: nobody starts
      expect(q.pending).toBe(2);
      t.gates[1]!.open();
      await t.done[1];
      await tick();
      expect(t.started).toEqual([0, 1, 2]);
      t.gates[2]!.open();
      await t.done[2];
      await tick();
      expect(t.started).toEqual([0, 1, 2, 3]); // under the limit now: one at a time
      expect(q.pending).toBe(1);
      t.gates[3]!.open();
      t.gates[4]!.open();
      expect(await Promise.all(t.done)).toEqual([true, true, true, true, true]);
      expect(q.pending).toBe(0);
      expect(q.size).toBe(0);
    });

    it('refuses a count that is not a positive integer', () => {
      const q = new SlotQueue(2);
      for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => q.setConcurrency(bad)).toThrow(RangeError);
      expect(q.concurrency).toBe(2);
    });
  });
});
