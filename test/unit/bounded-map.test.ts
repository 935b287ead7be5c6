import { describe, expect, it } from 'vitest';
import { addNewest, setNewest } from '../../src/util/bounded-map.js';

describe('bounded per-peer memory: the newest kept, the oldest dropped past the cap', () => {
  it('a map keeps its last `cap` keys, a re-set key counts as newest, and values follow the latest set', () => {
    const m = new Map<string, number>();
    for (let i = 0; i < 10; i++) setNewest(m, `p${i}`, i, 3);
    expect([...m.keys()]).toEqual(['p7', 'p8', 'p9']);
    setNewest(m, 'p7', 70, 3); // refreshed: now the newest
    setNewest(m, 'new', 1, 3);
    expect([...m.entries()]).toEqual([['p9', 9], ['p7', 70], ['new', 1]]);
  });

  it('a set keeps its last `cap` members, and a new one always gets in', () => {
    const s = new Set<string>();
    for (let i = 0; i < 1_000; i++) addNewest(s, `p${i}`, 4);
    expect([...s]).toEqual(['p996', 'p997', 'p998', 'p999']);
    addNewest(s, 'p997', 4);
    addNewest(s, 'late', 4);
    expect([...s]).toEqual(['p998', 'p999', 'p997', 'late']);
  });
});
