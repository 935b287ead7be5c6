// Issue 10 point 10: the bitfields the tracker keeps are bounded by the swarm's geometry (fixed by the first
// bitfield it kept, for as long as that record lives), and their bytes are accounted per swarm and in all; over a cap a peer is listed without its bitfield.
// These use the registry's own byte account and what it hands out, not RSS.
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/limits.js';
import { SwarmRegistry } from '../../src/tracker/swarm-registry.js';

const iso = '2024-01-01T00:00:00.000Z';
const S = (i: number): string => i.toString(16).padStart(64, '0');
/** The longest bitfield the parser accepts: LIMITS.maxBlocksPerSize blocks, 1 MiB of hex. */
const LONGEST = 'ff'.repeat(LIMITS.maxBlocksPerSize / 8);
const MiB = 1024 * 1024;

/** Sum of the bitfield hex the registry hands out for every swarm in `ids`. */
function handedOut(r: SwarmRegistry, ids: string[]): number {
  let n = 0;
  for (const id of ids) for (const p of r.sample(id, 1_000, 1, undefined, Math.random)) n += p.blocks?.length ?? 0;
  return n;
}

describe('SwarmRegistry: bitfield geometry (issue 10)', () => {
  it('keeps a bitfield longer than the swarm\'s first one at the same block size only as a listed peer without it', () => {
    const r = new SwarmRegistry({ maxSwarms: 10, maxPeersPerSwarm: 100, expiryMs: 1000, minIntervalMs: 0 });
    const geometry = { ok: true, blocksDropped: 'geometry' };
    // 11 blocks of 4096: ceil(11/8) = 2 bytes.
    expect(r.record(S(1), { ip: '10.0.0.1', port: 1, progress: 0.5, blocks: { hex: 'e040', blockSize: 4096 } }, 0, iso)).toEqual({ ok: true });
    expect(r.record(S(1), { ip: '10.0.0.2', port: 1, progress: 0.5, blocks: { hex: 'e04000', blockSize: 4096 } }, 0, iso)).toEqual(geometry);
    // SPEC §4: missing trailing bytes are zeros.
    expect(r.record(S(1), { ip: '10.0.0.3', port: 1, progress: 0, blocks: { hex: 'e0', blockSize: 4096 } }, 0, iso)).toEqual({ ok: true });
    // Half the block size: up to twice the bytes; a larger size: fewer.
    expect(r.record(S(1), { ip: '10.0.0.4', port: 1, progress: 0, blocks: { hex: 'ffffffff', blockSize: 2048 } }, 0, iso)).toEqual({ ok: true });
    expect(r.record(S(1), { ip: '10.0.0.5', port: 1, progress: 0, blocks: { hex: 'ffffffff00', blockSize: 2048 } }, 0, iso)).toEqual(geometry);
    expect(r.record(S(1), { ip: '10.0.0.6', port: 1, progress: 0, blocks: { hex: 'f000', blockSize: 65536 } }, 0, iso)).toEqual(geometry);
    // Every one is listed (never refused); the over-long bitfields are not kept or handed out.
    expect(r.stats()).toEqual({ swarms: 1, peers: 6 });
    const byIp = new Map(r.sample(S(1), 100, 1, undefined, Math.random).map((p) => [p.ip, p.blocks]));
    expect(byIp.get('10.0.0.2')).toBeUndefined();
    expect(byIp.get('10.0.0.1')).toBe('e040');
  });

  it('the geometry goes with the record that set it: a liar who announced first cannot hold it', () => {
    const r = new SwarmRegistry({ maxSwarms: 10, maxPeersPerSwarm: 100, expiryMs: 1000, minIntervalMs: 0 });
    expect(r.record(S(1), { ip: '10.6.6.6', port: 1, progress: 0, blocks: { hex: '00', blockSize: 4096 } }, 0, iso)).toEqual({ ok: true });
    const honest = { ip: '10.0.0.1', port: 1, progress: 0.5, blocks: { hex: 'ffff', blockSize: 4096 } };
    expect(r.record(S(1), honest, 0, iso)).toEqual({ ok: true, blocksDropped: 'geometry' });
    r.remove(S(1), '10.6.6.6', 1);
    // The honest peer's next announce is kept whole, and its bitfield now bounds the swarm.
    expect(r.record(S(1), { ...honest, progress: 0.6 }, 1, iso)).toEqual({ ok: true });
    expect(r.record(S(1), { ip: '10.6.6.6', port: 2, progress: 0, blocks: { hex: 'ffffff', blockSize: 4096 } }, 1, iso)).toEqual({ ok: true, blocksDropped: 'geometry' });
  });

  it('an announce without a bitfield is never refused for one; the geometry goes with the swarm', () => {
    const r = new SwarmRegistry({ maxSwarms: 10, maxPeersPerSwarm: 100, expiryMs: 1000, minIntervalMs: 0 });
    expect(r.record(S(1), { ip: '10.0.0.1', port: 1, progress: 0.5, blocks: { hex: 'ff', blockSize: 4096 } }, 0, iso).ok).toBe(true);
    expect(r.record(S(1), { ip: '10.0.0.2', port: 1, progress: 0.5 }, 0, iso).ok).toBe(true);
    r.sweep(5_000);
    expect(r.has(S(1))).toBe(false);
    expect(r.record(S(1), { ip: '10.0.0.1', port: 1, progress: 0.5, blocks: { hex: 'ffff', blockSize: 4096 } }, 5_000, iso).ok).toBe(true);
  });
});

describe('SwarmRegistry: bitfield memory (issue 10)', () => {
  it('120 announces of 1 MiB bitfields from one address stay within the per-swarm cap; later peers are listed without theirs', () => {
    const cap = 8 * MiB;
    const r = new SwarmRegistry({ maxSwarms: 10, maxPeersPerSwarm: 10_000, maxPeersPerAddress: 64, expiryMs: 60_000, minIntervalMs: 0, maxBitfieldBytesPerSwarm: cap });
    const results = [];
    for (let i = 0; i < 120; i++) {
      results.push(r.record(S(1), { ip: '10.0.0.1', port: 1000 + i, progress: 0.5, blocks: { hex: LONGEST, blockSize: 512 } }, 1, iso));
    }
    expect(results.every((x) => x.ok)).toBe(true);
    expect(handedOut(r, [S(1)])).toBeLessThanOrEqual(cap);
    expect(r.bitfieldBytes()).toBeLessThanOrEqual(cap);
    const listed = r.sample(S(1), 1_000, 1, undefined, Math.random);
    expect(listed).toHaveLength(64);
    expect(listed.filter((p) => p.blocks !== undefined)).toHaveLength(8);
    expect(results.at(-1)).toEqual({ ok: true, blocksDropped: 'swarm' });
  });

  it('120 announces of 1 MiB bitfields to 120 swarms stay within the total cap', () => {
    const total = 16 * MiB;
    const r = new SwarmRegistry({ maxSwarms: 1000, maxPeersPerSwarm: 100, expiryMs: 60_000, minIntervalMs: 0, maxBitfieldBytes: total });
    const ids = Array.from({ length: 120 }, (_, i) => S(i));
    for (const id of ids) r.record(id, { ip: '10.0.0.1', port: 1000, progress: 0.5, blocks: { hex: LONGEST, blockSize: 512 } }, 1, iso);
    expect(r.stats()).toEqual({ swarms: 120, peers: 120 });
    expect(handedOut(r, ids)).toBeLessThanOrEqual(total);
    expect(r.bitfieldBytes()).toBeLessThanOrEqual(total);
  });

  it('gives the bytes back when a peer is refreshed, stopped, evicted or expired', () => {
    const r = new SwarmRegistry({ maxSwarms: 10, maxPeersPerSwarm: 100, maxPeersPerAddress: 2, expiryMs: 1000, minIntervalMs: 0, maxBitfieldBytes: 10 });
    r.record(S(1), { ip: '10.0.0.1', port: 1, progress: 0, blocks: { hex: '0000', blockSize: 4096 } }, 0, iso);
    r.record(S(1), { ip: '10.0.0.1', port: 1, progress: 0.5, blocks: { hex: 'ff00', blockSize: 4096 } }, 0, iso);
    expect(r.bitfieldBytes()).toBe(4);
    r.record(S(1), { ip: '10.0.0.1', port: 2, progress: 0, blocks: { hex: '00', blockSize: 4096 } }, 0, iso);
    expect(r.bitfieldBytes()).toBe(6);
    // The third peer of one address evicts its stalest (port 1).
    r.record(S(1), { ip: '10.0.0.1', port: 3, progress: 0, blocks: { hex: '0f00', blockSize: 4096 } }, 0, iso);
    expect(r.bitfieldBytes()).toBe(6);
    r.remove(S(1), '10.0.0.1', 2);
    expect(r.bitfieldBytes()).toBe(4);
    r.sweep(2000);
    expect(r.bitfieldBytes()).toBe(0);
  });

  it('a peer whose bitfield was dropped still gets the minimum gap for a repeat', () => {
    const r = new SwarmRegistry({ maxSwarms: 10, maxPeersPerSwarm: 100, expiryMs: 1000, minIntervalMs: 100, maxBitfieldBytes: 2 });
    const p = { ip: '10.0.0.1', port: 1, progress: 0.5, blocks: { hex: 'ffff', blockSize: 4096 } };
    expect(r.record(S(1), p, 0, iso)).toEqual({ ok: true, blocksDropped: 'total' });
    expect(r.record(S(1), p, 10, iso)).toMatchObject({ ok: false, reason: 'too-soon' });
  });
});
