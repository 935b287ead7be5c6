// StallWatch (src/box/stall-watch.ts), issue 10 point 6: fires once after `stallMs` without newly verified bytes;
// progress pushes it back. Fake timers fake the clock only (performance.now and setTimeout), not our code.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { StallWatch } from '../../src/box/stall-watch.js';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('StallWatch', () => {
  it('fires once after stallMs with no progress at all', () => {
    const onStall = vi.fn();
    const w = new StallWatch(1000, onStall, 0);
    w.progress(0, 1_000_000); // nothing new
    vi.advanceTimersByTime(999);
    expect(onStall).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onStall).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(10_000);
    expect(onStall).toHaveBeenCalledTimes(1);
    expect(w.progressed).toBe(false);
  });

  it('newly verified bytes push it back; the same count again does not', () => {
    const onStall = vi.fn();
    const w = new StallWatch(1000, onStall, 65_536); // resumed with one block
    w.progress(65_536, 1_000_000); // what it started with is not progress
    vi.advanceTimersByTime(600);
    w.progress(131_072, 1_000_000); // progress at 600 ms
    vi.advanceTimersByTime(600);
    w.progress(131_072, 1_000_000); // nothing new at 1200 ms
    expect(onStall).not.toHaveBeenCalled();
    vi.advanceTimersByTime(399);
    expect(onStall).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onStall).toHaveBeenCalledTimes(1); // 1000 ms after the last progress
    expect(w.progressed).toBe(true);
  });

  it('stands down once every block is verified: the final whole-file check is not a stall', () => {
    const onStall = vi.fn();
    const w = new StallWatch(1000, onStall, 0);
    vi.advanceTimersByTime(400);
    w.progress(1_000_000, 1_000_000);
    vi.advanceTimersByTime(60_000);
    expect(onStall).not.toHaveBeenCalled();
  });

  it('waits while blocks that arrived are still being verified, then fires if they brought nothing', () => {
    const onStall = vi.fn();
    let busy = true;
    const w = new StallWatch(1000, onStall, 0, () => busy);
    vi.advanceTimersByTime(2500); // a cold worker pool: verification in flight for 2.5 s
    expect(onStall).not.toHaveBeenCalled();
    busy = false; // it ended and brought no verified byte (a bad block): the next check is a stall
    vi.advanceTimersByTime(600);
    expect(onStall).toHaveBeenCalledTimes(1);
    expect(w.progressed).toBe(false);
  });

  it('stop() cancels it', () => {
    const onStall = vi.fn();
    const w = new StallWatch(1000, onStall, 0);
    w.stop();
    vi.advanceTimersByTime(5000);
    expect(onStall).not.toHaveBeenCalled();
  });
});
