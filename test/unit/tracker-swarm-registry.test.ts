// Unit tests of the tracker's swarm bookkeeping with an explicit clock: exclusion, sampling, expiry, gaps, bounds,
// the longer expiry of complete peers and the feeder flag (issue 9).
import { describe, expect, it } from 'vitest';
import { makeFeederPolicy } from '../../src/tracker/feeder-policy.js';
import { SwarmRegistry } from '../../src/tracker/swarm-registry.js';

const S = 'ab'.repeat(32);
const opts = { maxSwarms: 3, maxPeersPerSwarm: 100, expiryMs: 1000, minIntervalMs: 100 };
const iso = '2024-01-01T00:00:00.000Z';

describe('SwarmRegistry', () => {
  it('never returns the excluded caller and returns a random subset', () => {
    const r = new SwarmRegistry(opts);
    for (let i = 0; i < 80; i++) expect(r.record(S, { ip: '10.0.0.1', port: 1000 + i, progress: 0 }, 0, iso).ok).toBe(true);
    const a = r.sample(S, 50, 1, '10.0.0.1:1000', Math.random);
    expect(a).toHaveLength(50);
    expect(a.some((p) => p.port === 1000)).toBe(false);
    expect(new Set(a.map((p) => p.port)).size).toBe(50);
    const b = r.sample(S, 50, 1, '10.0.0.1:1000', Math.random);
    expect(a.map((p) => p.port)).not.toEqual(b.map((p) => p.port));
  });

  it('samples every peer with about equal chance', () => {
    const r = new SwarmRegistry({ ...opts, maxPeersPerSwarm: 1000 });
    for (let i = 0; i < 20; i++) r.record(S, { ip: '10.0.0.1', port: 1000 + i, progress: 0 }, 0, iso);
    const hits = new Map<number, number>();
    for (let k = 0; k < 2000; k++) for (const p of r.sample(S, 5, 1, undefined, Math.random)) hits.set(p.port, (hits.get(p.port) ?? 0) + 1);
    // Expect 500 each; a fair sampler stays well inside ±30%.
    for (const n of hits.values()) expect(Math.abs(n - 500)).toBeLessThan(150);
    expect(hits.size).toBe(20);
  });

  it('refuses a too-soon announce and says how long to wait', () => {
    const r = new SwarmRegistry(opts);
    const p = { ip: '10.0.0.1', port: 1, progress: 0 };
    expect(r.record(S, p, 0, iso)).toEqual({ ok: true });
    expect(r.record(S, p, 40, iso)).toEqual({ ok: false, reason: 'too-soon', retryAfterMs: 60 });
    expect(r.record(S, p, 100, iso)).toEqual({ ok: true });
    // Another port or swarm is another key.
    expect(r.record(S, { ...p, port: 2 }, 101, iso).ok).toBe(true);
    expect(r.record('cd'.repeat(32), p, 101, iso).ok).toBe(true);
  });

  it('expires peers and empty swarms', () => {
    const r = new SwarmRegistry(opts);
    r.record(S, { ip: '10.0.0.1', port: 1, progress: 0 }, 0, iso);
    r.record(S, { ip: '10.0.0.1', port: 2, progress: 0 }, 500, iso);
    expect(r.sample(S, 50, 999, undefined, Math.random)).toHaveLength(2);
    expect(r.sample(S, 50, 1000, undefined, Math.random)).toHaveLength(1);
    r.sweep(1200);
    expect(r.stats()).toEqual({ swarms: 1, peers: 1 });
    r.sweep(1500);
    expect(r.stats()).toEqual({ swarms: 0, peers: 0 });
  });

  it('removes a stopped peer', () => {
    const r = new SwarmRegistry(opts);
    r.record(S, { ip: '10.0.0.1', port: 1, progress: 0 }, 0, iso);
    expect(r.remove(S, '10.0.0.1', 1)).toBe(true);
    expect(r.remove(S, '10.0.0.1', 1)).toBe(false);
    expect(r.stats().swarms).toBe(0);
  });

  it('bounds swarms and peers per swarm, refreshes still allowed', () => {
    const r = new SwarmRegistry({ ...opts, maxPeersPerSwarm: 2 });
    const p = (port: number) => ({ ip: '10.0.0.1', port, progress: 0 });
    r.record(S, p(1), 0, iso);
    r.record(S, p(2), 0, iso);
    expect(r.record(S, p(3), 0, iso)).toEqual({ ok: false, reason: 'full', what: 'peers' });
    expect(r.record(S, p(1), 200, iso).ok).toBe(true);
    r.record('01'.repeat(32), p(1), 0, iso);
    r.record('02'.repeat(32), p(1), 0, iso);
    expect(r.record('03'.repeat(32), p(1), 0, iso)).toEqual({ ok: false, reason: 'full', what: 'swarms' });
    // Once the old ones expire there is room again.
    expect(r.record('03'.repeat(32), p(1), 5000, iso).ok).toBe(true);
  });

  it('reports blocks and the ISO time', () => {
    const r = new SwarmRegistry(opts);
    r.record(S, { ip: '::1', port: 9, progress: 1, blocks: { hex: 'ff80', blockSize: 4096 } }, 0, iso);
    expect(r.sample(S, 5, 1, undefined, Math.random)).toEqual([
      { ip: '::1', port: 9, progress: 1, updated: iso, feeder: true, blocks: 'ff80', blocksize: 4096 },
    ]);
  });
});

describe('SwarmRegistry: minimum gap applies to repeats of the same state only (issue 9)', () => {
  const p = { ip: '10.0.0.1', port: 1, progress: 0 };

  it('hears a change of progress, event or bitfield at once, refuses a repeat', () => {
    const r = new SwarmRegistry(opts);
    expect(r.record(S, p, 0, iso).ok).toBe(true);
    expect(r.record(S, p, 1, iso)).toMatchObject({ ok: false, reason: 'too-soon' });
    // The Python peer's life: progress 0.0, then 1.0 about a second later, never again.
    expect(r.record(S, { ...p, progress: 1 }, 2, iso).ok).toBe(true);
    expect(r.record(S, { ...p, progress: 1 }, 3, iso)).toEqual({ ok: false, reason: 'too-soon', retryAfterMs: 99 });
    expect(r.record(S, { ...p, progress: 1, event: 'completed' }, 4, iso).ok).toBe(true);
    expect(r.record(S, { ...p, progress: 1, event: 'completed' }, 5, iso).ok).toBe(false);
    expect(r.record(S, { ...p, progress: 1, event: 'completed', blocks: { hex: 'ff', blockSize: 4096 } }, 6, iso).ok).toBe(true);
    expect(r.record(S, { ...p, progress: 1, event: 'completed', blocks: { hex: 'ff', blockSize: 1024 } }, 7, iso).ok).toBe(true);
    expect(r.record(S, { ...p, progress: 1, event: 'completed', blocks: { hex: 'ff', blockSize: 1024 } }, 8, iso).ok).toBe(false);
    expect(r.sample(S, 5, 9, undefined, Math.random)).toMatchObject([{ progress: 1, blocks: 'ff', blocksize: 1024 }]);
  });

  it('a peer flipping its state on every announce stays one record and cannot pass the peer cap', () => {
    const r = new SwarmRegistry({ ...opts, maxPeersPerSwarm: 3 });
    for (let port = 1; port <= 3; port++) r.record(S, { ...p, port }, 0, iso);
    for (let i = 1; i <= 1000; i++) expect(r.record(S, { ...p, progress: i % 2 }, i / 2, iso).ok).toBe(true);
    expect(r.stats()).toEqual({ swarms: 1, peers: 3 });
    expect(r.record(S, { ...p, port: 4, progress: 1 }, 600, iso)).toEqual({ ok: false, reason: 'full', what: 'peers' });
  });
});

describe('SwarmRegistry: complete peers stay listed longer (issue 9)', () => {
  const o = { ...opts, completeExpiryMs: 10_000 };

  it('keeps a progress-1 peer for completeExpiryMs, a downloading one for expiryMs', () => {
    const r = new SwarmRegistry(o);
    r.record(S, { ip: '10.0.0.1', port: 1, progress: 1 }, 0, iso);
    r.record(S, { ip: '10.0.0.1', port: 2, progress: 0.5 }, 0, iso);
    expect(r.sample(S, 5, 5000, undefined, Math.random).map((x) => x.port)).toEqual([1]);
    r.sweep(5000);
    expect(r.stats()).toEqual({ swarms: 1, peers: 1 });
    expect(r.sample(S, 5, 9999, undefined, Math.random)).toHaveLength(1);
    expect(r.sample(S, 5, 10_000, undefined, Math.random)).toHaveLength(0);
    r.sweep(10_000);
    expect(r.stats()).toEqual({ swarms: 0, peers: 0 });
  });

  it('sweeps an expired downloading peer heard after a live complete one (two ordered maps)', () => {
    const r = new SwarmRegistry(o);
    r.record(S, { ip: '10.0.0.1', port: 1, progress: 1 }, 0, iso);
    r.record(S, { ip: '10.0.0.1', port: 2, progress: 0 }, 1, iso);
    r.record(S, { ip: '10.0.0.1', port: 3, progress: 1 }, 2, iso);
    r.sweep(2000);
    expect(r.stats().peers).toBe(2);
  });

  it('a complete peer that reports less again goes back to the short expiry', () => {
    const r = new SwarmRegistry(o);
    r.record(S, { ip: '10.0.0.1', port: 1, progress: 1 }, 0, iso);
    r.record(S, { ip: '10.0.0.1', port: 1, progress: 0.9 }, 500, iso);
    expect(r.stats().peers).toBe(1);
    r.sweep(1500);
    expect(r.stats().peers).toBe(0);
  });

  it('a complete peer past expiryMs is still live for the minimum gap (when --min-interval > --expiry)', () => {
    const r = new SwarmRegistry({ ...o, minIntervalMs: 2000 });
    r.record(S, { ip: '10.0.0.1', port: 1, progress: 1 }, 0, iso);
    r.record(S, { ip: '10.0.0.1', port: 2, progress: 0 }, 0, iso);
    expect(r.record(S, { ip: '10.0.0.1', port: 1, progress: 1 }, 1500, iso)).toMatchObject({ ok: false, reason: 'too-soon' });
    expect(r.record(S, { ip: '10.0.0.1', port: 2, progress: 0 }, 1500, iso).ok).toBe(true);
  });

  it('never keeps a complete peer shorter than expiryMs', () => {
    const r = new SwarmRegistry({ ...opts, completeExpiryMs: 10 });
    r.record(S, { ip: '10.0.0.1', port: 1, progress: 1 }, 0, iso);
    expect(r.sample(S, 5, 999, undefined, Math.random)).toHaveLength(1);
  });

  it('a full swarm makes room by dropping its stalest complete peer past expiryMs, never a fresh one', () => {
    const r = new SwarmRegistry({ ...o, maxPeersPerSwarm: 2 });
    r.record(S, { ip: '10.0.0.1', port: 1, progress: 1 }, 0, iso);
    r.record(S, { ip: '10.0.0.1', port: 2, progress: 1 }, 900, iso);
    expect(r.record(S, { ip: '10.0.0.1', port: 3, progress: 0 }, 950, iso)).toEqual({ ok: false, reason: 'full', what: 'peers' });
    // Port 1 is past the ordinary expiry (1000) at 1000: it makes room; port 2 (heard at 900) does not yet.
    expect(r.record(S, { ip: '10.0.0.1', port: 3, progress: 0 }, 1000, iso).ok).toBe(true);
    expect(r.sample(S, 5, 1000, undefined, Math.random).map((x) => x.port).sort()).toEqual([2, 3]);
    expect(r.record(S, { ip: '10.0.0.1', port: 4, progress: 0 }, 1001, iso)).toEqual({ ok: false, reason: 'full', what: 'peers' });
  });
});

describe('SwarmRegistry: feeder flag follows the policy (issue 9)', () => {
  const announceBoth = (r: SwarmRegistry): void => {
    r.record(S, { ip: '10.0.0.1', port: 1, progress: 1 }, 0, iso);
    r.record(S, { ip: '10.0.0.1', port: 2, progress: 0.5 }, 0, iso);
  };
  const feeders = (r: SwarmRegistry): number[] =>
    r
      .sample(S, 5, 1, undefined, Math.random)
      .filter((x) => x.feeder)
      .map((x) => x.port)
      .sort();

  it.each([
    ['complete', [], [1]],
    ['complete', ['10.0.0.1:2'], [1, 2]],
    ['listed', ['10.0.0.1:2'], [2]],
    ['none', [], []],
  ] as const)('mode %s with %j lists feeders %j', (mode, listed, want) => {
    const r = new SwarmRegistry({ ...opts, feeders: makeFeederPolicy(mode, listed) });
    announceBoth(r);
    expect(feeders(r)).toEqual(want);
  });
  it('one address cannot fill a swarm: beyond maxPeersPerAddress its own stalest peer goes, nobody else\'s', () => {
    const r = new SwarmRegistry({ ...opts, maxPeersPerSwarm: 100, maxPeersPerAddress: 4, completeExpiryMs: 100_000 });
    expect(r.record(S, { ip: '10.0.0.9', port: 7001, progress: 1 }, 0, iso).ok).toBe(true); // an honest seeder
    for (let i = 0; i < 1_000; i++) expect(r.record(S, { ip: '10.0.0.1', port: 2000 + i, progress: 1 }, 1 + i, iso).ok).toBe(true);
    const ports = r.sample(S, 100, 2_000, undefined, Math.random).map((p) => `${p.ip}:${p.port}`).sort();
    expect(ports).toEqual(['10.0.0.1:2996', '10.0.0.1:2997', '10.0.0.1:2998', '10.0.0.1:2999', '10.0.0.9:7001']);
    expect(r.stats()).toEqual({ swarms: 1, peers: 5 });
    // A refresh moves a peer to the end of its address's order: it is not the next evicted.
    r.record(S, { ip: '10.0.0.1', port: 2996, progress: 0.5 }, 2_001, iso);
    r.record(S, { ip: '10.0.0.1', port: 5000, progress: 0 }, 2_002, iso);
    const after = r.sample(S, 100, 2_003, undefined, Math.random).map((p) => p.port).sort();
    expect(after).toEqual([2996, 2998, 2999, 5000, 7001]);
  });

  it('bounds peers over all swarms (maxPeers), counting removals, expiry and eviction back', () => {
    const r = new SwarmRegistry({ ...opts, maxSwarms: 100, maxPeers: 10 });
    for (let i = 0; i < 10; i++) expect(r.record(`${i}`.padStart(64, 'c'), { ip: `10.0.0.${i + 1}`, port: 1, progress: 0 }, 0, iso).ok).toBe(true);
    expect(r.record('d'.repeat(64), { ip: '10.0.1.1', port: 1, progress: 0 }, 1, iso)).toEqual({ ok: false, reason: 'full', what: 'peers' });
    // A refresh of a known peer is not a new one.
    expect(r.record('0'.padStart(64, 'c'), { ip: '10.0.0.1', port: 1, progress: 0.5 }, 2, iso).ok).toBe(true);
    expect(r.remove('1'.padStart(64, 'c'), '10.0.0.2', 1)).toBe(true);
    expect(r.stats().peers).toBe(9);
    expect(r.record('d'.repeat(64), { ip: '10.0.1.1', port: 1, progress: 0 }, 3, iso).ok).toBe(true);
    // After the expiry every peer but the refreshed ones is gone, and the count says so.
    r.sweep(1_001);
    expect(r.stats().peers).toBe(2);
  });
});
