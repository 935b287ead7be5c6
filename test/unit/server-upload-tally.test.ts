// The block server's per-swarm, per-address upload tally (src/server/upload-tally.ts): bytes add up, the rate
// decays with time, and both bounds hold (addresses per swarm, swarms), the least recently served going first.

import { describe, expect, it } from 'vitest';
import { UploadTally } from '../../src/server/upload-tally.js';

describe('UploadTally', () => {
  it('adds bytes per swarm and address, and its rate decays to about nothing', () => {
    const t = new UploadTally();
    for (let i = 0; i < 10; i++) t.add('s', '10.0.0.1', 1_000_000, 1_000 + i * 100);
    t.add('s', '10.0.0.2', 5, 2_000);
    const [a, b] = t.of('s', 2_000);
    expect(a).toMatchObject({ address: '10.0.0.1', bytes: 10_000_000 });
    expect(b).toMatchObject({ address: '10.0.0.2', bytes: 5 });
    // 10 MB over ~1 s: a rate of a few MB/s, not zero and not more than was sent per second.
    expect(a!.rate).toBeGreaterThan(2_000_000);
    expect(a!.rate).toBeLessThan(10_000_000);
    expect(t.of('s', 60_000)[0]!.rate).toBe(0);
    expect(t.of('other')).toEqual([]);
  });

  it('keeps at most 64 addresses per swarm and 20,000 swarms, dropping the least recently served', () => {
    const t = new UploadTally();
    for (let i = 0; i < 70; i++) t.add('s', `10.0.0.${i}`, 1, i);
    expect(t.of('s').map((c) => c.address)).toEqual(Array.from({ length: 64 }, (_, i) => `10.0.0.${i + 6}`));
    t.add('s', '10.0.0.6', 1, 100); // served again: now the most recent
    t.add('s', '10.0.0.99', 1, 101); // a newcomer: the least recently served (.7) goes
    const list = t.of('s').map((c) => c.address);
    expect(list).toHaveLength(64);
    expect(list).not.toContain('10.0.0.7');
    expect(list.slice(-2)).toEqual(['10.0.0.6', '10.0.0.99']);
    for (let i = 0; i < 20_001; i++) t.add(`swarm-${i}`, '10.0.0.1', 1, 200);
    expect(t.of('s')).toEqual([]);
    expect(t.of('swarm-0')).toEqual([]);
    expect(t.of('swarm-20000')).toHaveLength(1);
  });
});
