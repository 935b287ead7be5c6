// The page's event reducer (src/api/ui/reducer.js): snapshot, kascade.added|changed|removed, box.stats and the
// page's own settings event; purity (the input state is never changed), malformed payloads ignored, the shape
// counter the table's row list depends on, the bounded rate history, and the visible rows' filter and order.

import { describe, expect, it } from 'vitest';
import { RATE_POINTS, initialState, reduce, reduceAll, visibleIds, type UiEvent, type UiState } from '../../src/api/ui/reducer.js';

const rec = (id: string, state = 'downloading', extra: Record<string, unknown> = {}) => ({ id, state, name: `${id}.bin`, file: `${id}.kascade`, progress: 0, ...extra });
const settings = { maxUpload: 0, maxPeers: 30, maxDownloads: 4 };
const snapshot = (...records: unknown[]): UiEvent => ({ type: 'snapshot', data: { v: 1, settings, stats: { downRate: 1 }, kascades: records } });

/** A deep, structure-preserving copy to compare a state against after reducing (Map entries included). */
const freeze = (s: UiState) => JSON.stringify({ ...s, kascades: [...s.kascades] });

describe('reduce', () => {
  it('a snapshot replaces every record, the settings and the stats', () => {
    let s = reduce(initialState(), snapshot(rec('a'), rec('b')));
    s = reduce(s, snapshot(rec('c')));
    expect([...s.kascades.keys()]).toEqual(['c']);
    expect(s.settings).toEqual(settings);
    expect(s.stats).toEqual({ downRate: 1 });
  });

  it('added, changed and removed edit one record; the shape grows only when the row list could change', () => {
    const s0 = reduce(initialState(), snapshot(rec('a'), rec('b')));
    const s1 = reduce(s0, { type: 'kascade.added', data: { v: 1, kascade: rec('c') } });
    expect(s1.kascades.size).toBe(3);
    expect(s1.shape).toBe(s0.shape + 1);
    const s2 = reduce(s1, { type: 'kascade.changed', data: { v: 1, kascade: rec('a', 'downloading', { progress: 0.5 }) } });
    expect(s2.kascades.get('a')?.progress).toBe(0.5);
    expect(s2.shape).toBe(s1.shape); // progress only
    expect(s2.version).toBe(s1.version + 1);
    const s3 = reduce(s2, { type: 'kascade.changed', data: { v: 1, kascade: rec('a', 'seeding', { progress: 1 }) } });
    expect(s3.shape).toBe(s2.shape + 1); // state changed: a filtered list may change
    const s4 = reduce(s3, { type: 'kascade.removed', data: { v: 1, id: 'b' } });
    expect([...s4.kascades.keys()].sort()).toEqual(['a', 'c']);
    expect(s4.shape).toBe(s3.shape + 1);
  });

  it('a change for an unknown id adds it (a resumed stream may skip the added)', () => {
    const s = reduce(initialState(), { type: 'kascade.changed', data: { v: 1, kascade: rec('z') } });
    expect(s.kascades.get('z')?.state).toBe('downloading');
  });

  it('never changes its input state or the input map', () => {
    const s0 = reduce(initialState(), snapshot(rec('a'), rec('b')));
    const before = freeze(s0);
    const events: UiEvent[] = [
      { type: 'kascade.added', data: { v: 1, kascade: rec('c') } },
      { type: 'kascade.changed', data: { v: 1, kascade: rec('a', 'paused') } },
      { type: 'kascade.removed', data: { v: 1, id: 'b' } },
      { type: 'box.stats', data: { v: 1, downRate: 5, upRate: 6, settings: { ...settings, maxPeers: 9 } } },
      { type: 'settings', data: { ...settings, maxDownloads: 1 } },
      snapshot(rec('q')),
    ];
    for (const e of events) reduce(s0, e);
    reduceAll(s0, events);
    expect(freeze(s0)).toBe(before);
  });

  it('answers the same state object when nothing changed: unknown types, malformed payloads, removing the absent', () => {
    const s0 = reduce(initialState(), snapshot(rec('a')));
    const junk: UiEvent[] = [
      { type: 'peer.added', data: { v: 1, id: 'a', peer: '127.0.0.1:1' } },
      { type: 'dropped', data: { v: 1, reason: 'slow consumer' } },
      { type: 'kascade.changed', data: null },
      { type: 'kascade.changed', data: [] },
      { type: 'kascade.changed', data: { v: 1, kascade: { id: 7, state: 'x' } } },
      { type: 'kascade.changed', data: { v: 1, kascade: { id: '', state: 'x' } } },
      { type: 'kascade.added', data: { v: 1, kascade: { id: 'b' } } },
      { type: 'kascade.removed', data: { v: 1, id: 'nope' } },
      { type: 'kascade.removed', data: { v: 1, id: 3 } },
      { type: 'settings', data: { maxUpload: 'x', maxPeers: 1, maxDownloads: 1 } },
      { type: 'whatever', data: 'text' },
    ];
    for (const e of junk) expect(reduce(s0, e), JSON.stringify(e)).toBe(s0);
    expect(reduceAll(s0, junk)).toBe(s0);
  });

  it('skips malformed records inside a snapshot and keeps the rest', () => {
    const s = reduce(initialState(), snapshot(rec('a'), null, 5, { id: 'x' }, rec('b')));
    expect([...s.kascades.keys()]).toEqual(['a', 'b']);
  });

  it('box.stats keeps the last RATE_POINTS rates, oldest first, and its settings; bad numbers count as 0', () => {
    let s = initialState();
    for (let i = 0; i < RATE_POINTS + 10; i++) s = reduce(s, { type: 'box.stats', data: { v: 1, downRate: i, upRate: -1, settings } });
    expect(s.rates).toHaveLength(RATE_POINTS);
    expect(s.rates[0]).toEqual({ down: 10, up: 0 });
    expect(s.rates.at(-1)).toEqual({ down: RATE_POINTS + 9, up: 0 });
    expect(s.settings).toEqual(settings);
  });

  it('reduceAll over a batch equals reduce one by one', () => {
    const s0 = reduce(initialState(), snapshot(rec('a'), rec('b')));
    const batch: UiEvent[] = Array.from({ length: 50 }, (_, i) => ({ type: 'kascade.changed', data: { v: 1, kascade: rec(i % 2 ? 'a' : `n${i}`, 'downloading', { progress: i / 50 }) } }));
    batch.push({ type: 'kascade.removed', data: { v: 1, id: 'b' } });
    const one = batch.reduce(reduce, s0);
    const many = reduceAll(s0, batch);
    expect([...many.kascades]).toEqual([...one.kascades]);
    expect(many.shape - s0.shape).toBeGreaterThan(0);
  });
});

describe('visibleIds', () => {
  it('filters by state (all when the set is empty) and sorts by name, then file, then id', () => {
    const s = reduce(
      initialState(),
      snapshot(rec('1', 'seeding', { name: 'b.iso' }), rec('2', 'paused', { name: 'A.iso' }), rec('3', 'seeding', { name: 'a.iso', file: 'z.kascade' }), { id: '4', state: 'loading', file: 'c.kascade' }),
    );
    expect(visibleIds(s, new Set())).toEqual(['2', '3', '1', '4']);
    expect(visibleIds(s, new Set(['seeding']))).toEqual(['3', '1']);
    expect(visibleIds(s, new Set(['failed']))).toEqual([]);
  });
});
