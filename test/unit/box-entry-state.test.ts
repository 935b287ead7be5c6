// The box entry state machine (src/box/entry-state.ts): the table's legal moves, and every other move throws.

import { describe, expect, it } from 'vitest';
import { ENTRY_STATES, nextState, type EntryEvent, type EntryState } from '../../src/box/entry-state.js';

const EVENTS: EntryEvent[] = ['reject', 'verify', 'queue', 'start', 'stall', 'seed', 'fail', 'retry', 'recheck', 'pause', 'resume', 'remove'];

/** The whole table, written out again independently: [state, event, next]. */
const LEGAL: [EntryState, EntryEvent, EntryState][] = [
  ['loading', 'reject', 'rejected'],
  ['loading', 'verify', 'verifying'],
  ['loading', 'queue', 'queued'],
  ['loading', 'seed', 'seeding'],
  ['loading', 'fail', 'failed'],
  ['verifying', 'seed', 'seeding'],
  ['verifying', 'queue', 'queued'],
  ['verifying', 'fail', 'failed'],
  ['queued', 'start', 'downloading'],
  ['queued', 'fail', 'failed'],
  ['downloading', 'seed', 'seeding'],
  ['downloading', 'stall', 'stalled'],
  ['downloading', 'fail', 'failed'],
  ['stalled', 'retry', 'queued'],
  ['seeding', 'recheck', 'loading'],
  ['seeding', 'fail', 'failed'],
  ['failed', 'retry', 'loading'],
  // Pause (issue 12): from every state where work runs or waits; resume reads the kascade again.
  ...(['loading', 'verifying', 'queued', 'downloading', 'stalled', 'seeding', 'failed'] as const).map((s): [EntryState, EntryEvent, EntryState] => [s, 'pause', 'paused']),
  ['paused', 'resume', 'loading'],
  ...ENTRY_STATES.filter((s) => s !== 'removed').map((s): [EntryState, EntryEvent, EntryState] => [s, 'remove', 'removed']),
];

describe('box entry state machine', () => {
  it.each(LEGAL)('%s --%s--> %s', (state, event, next) => {
    expect(nextState(state, event)).toBe(next);
  });

  it('every move not in the table throws KF_E_INTERNAL naming it', () => {
    const legal = new Set(LEGAL.map(([s, e]) => `${s}/${e}`));
    let illegal = 0;
    for (const s of ENTRY_STATES) {
      for (const e of EVENTS) {
        if (legal.has(`${s}/${e}`)) continue;
        illegal++;
        expect(() => nextState(s, e)).toThrow(expect.objectContaining({ code: 'KF_E_INTERNAL', message: expect.stringContaining(`${s} --${e}-->`) }));
      }
    }
    expect(illegal).toBe(ENTRY_STATES.length * EVENTS.length - LEGAL.length);
  });

  it('removed is final, and every other state can be removed', () => {
    for (const e of EVENTS) expect(() => nextState('removed', e)).toThrow();
  });

  it('a stalled download can only go back to the queue (or be removed): it never holds a slot while waiting', () => {
    expect(nextState(nextState('downloading', 'stall'), 'retry')).toBe('queued');
    expect(() => nextState('stalled', 'start')).toThrow();
    expect(() => nextState('stalled', 'seed')).toThrow();
  });
});
