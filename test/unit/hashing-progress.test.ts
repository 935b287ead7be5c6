// createProgress: throttled JSON events with --json, silence when stderr is not a terminal.

import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgress } from '../../src/cli/progress.js';

function capture(): { out: PassThrough; lines: () => Array<Record<string, unknown>> } {
  const out = new PassThrough();
  let text = '';
  out.setEncoding('utf8').on('data', (d: string) => (text += d));
  return {
    out,
    lines: () =>
      text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('createProgress', () => {
  it('writes throttled JSON progress events and a final one', async () => {
    const { out, lines } = capture();
    const p = createProgress({ label: 'hashing', total: 1000, unit: 'bytes', json: true, out });
    for (let i = 1; i <= 1000; i++) p.update(i);
    p.stop();
    p.stop();
    await new Promise((r) => setImmediate(r));
    const events = lines();
    // The first update and the final state; the thousand in between fall inside the 250 ms throttle.
    expect(events).toEqual([
      { v: 1, event: 'progress', phase: 'hashing', done: 1, total: 1000 },
      { v: 1, event: 'progress', phase: 'hashing', done: 1000, total: 1000 },
    ]);
  });

  it('emits again once the interval has passed', async () => {
    const { out, lines } = capture();
    const p = createProgress({ label: 'verifying', total: 10, unit: 'bytes', json: true, out, jsonIntervalMs: 20 });
    p.update(1);
    await new Promise((r) => setTimeout(r, 40));
    p.update(2);
    p.stop();
    await new Promise((r) => setImmediate(r));
    expect(lines().map((e) => e.done)).toEqual([1, 2]);
  });

  it('is silent without --json when the bar stream is not a TTY', async () => {
    const { out, lines } = capture();
    const tty = Object.assign(new PassThrough(), { isTTY: false }) as unknown as NodeJS.WriteStream;
    let barText = '';
    (tty as unknown as PassThrough).setEncoding('utf8').on('data', (d: string) => (barText += d));
    const p = createProgress({ label: 'hashing', total: 10, unit: 'bytes', json: false, out, tty });
    p.update(5);
    p.stop();
    await new Promise((r) => setImmediate(r));
    expect(lines()).toEqual([]);
    expect(barText).toBe('');
  });
});
