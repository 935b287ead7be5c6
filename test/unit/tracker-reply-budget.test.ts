// Issue 10 points 10-11: a tracker reply never exceeds its byte budget, whatever the peers announced, and the
// budget is below the cap kfetch's own announce client reads.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/limits.js';
import type { PeerInfo } from '../../src/peer/peer-info.js';
import { fitReply } from '../../src/tracker/reply-budget.js';

const updated = '2024-01-01T00:00:00.000Z';
const peer = (i: number, hexBytes: number): PeerInfo => ({
  ip: `10.0.${i >> 8}.${i & 255}`,
  port: 1000 + i,
  progress: 0.5,
  updated,
  feeder: false,
  ...(hexBytes < 0 ? {} : { blocks: 'ab'.repeat(hexBytes), blocksize: 4096 }),
});

/** `p` with a wire port, keys in the order a reply sends them (SPEC's, then `wire`, then the bitfield). */
const withWire = (p: PeerInfo, wire: number): PeerInfo => {
  const { blocks, blocksize, ...bare } = p;
  return { ...bare, wire, ...(blocks === undefined ? {} : { blocks, blocksize }) };
};

describe('fitReply', () => {
  it('keeps the budget below the clients\' reply cap', () => {
    expect(LIMITS.trackerReplyBudgetBytes).toBeLessThan(LIMITS.trackerReplyMaxBytes);
  });

  it('sends everything when it fits, in order, in SPEC key order', () => {
    const peers = [peer(1, 2), peer(2, -1)];
    expect(JSON.stringify(fitReply(peers, 10_000))).toBe(JSON.stringify(peers));
  });

  it('leaves out the bitfields that do not fit before any peer, then peers', () => {
    const peers = [peer(1, 600 * 1024), peer(2, 2), peer(3, 600 * 1024), peer(4, -1)];
    const out = fitReply(peers, 64 * 1024);
    expect(out.map((p) => p.port)).toEqual([1001, 1002, 1003, 1004]);
    expect(out.map((p) => p.blocks?.length)).toEqual([undefined, 4, undefined, undefined]);
    const tiny = fitReply(peers, 200);
    expect(tiny.length).toBeLessThan(peers.length);
    expect(JSON.stringify(tiny).length).toBeLessThanOrEqual(200);
  });

  it('issue 14: sends each peer with its wire port (after feeder, before the bitfield), counted in its cost', () => {
    const peers = [withWire(peer(1, 2), 65535), withWire(peer(2, -1), 7000), peer(3, -1)];
    const out = fitReply(peers, 10_000);
    expect(out.map((p) => p.wire)).toEqual([65535, 7000, undefined]);
    expect(Object.keys(out[0]!)).toEqual(['ip', 'port', 'progress', 'updated', 'feeder', 'wire', 'blocks', 'blocksize']);
    // A budget that fits exactly two entries with their wire keys: the third peer is left out, never a wire key.
    const wired = [1, 2, 3].map((i) => ({ ...peer(i, -1), wire: 65535 }));
    const two = JSON.stringify(wired.slice(0, 2));
    const cut = fitReply(wired, Buffer.byteLength(two));
    expect(cut).toHaveLength(2);
    expect(cut.every((p) => p.wire === 65535)).toBe(true);
  });

  it('never exceeds the budget (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -1, max: 300 }), { maxLength: 40 }), fc.integer({ min: 2, max: 5000 }), (sizes, budget) => {
        // Every other peer advertises a wire port (issue 14): its key counts against the budget too.
        const peers = sizes.map((n, i) => (i % 2 === 0 ? withWire(peer(i, n), 65535 - i) : peer(i, n)));
        const out = fitReply(peers, budget);
        const text = JSON.stringify(out);
        expect(Buffer.byteLength(text)).toBeLessThanOrEqual(budget);
        // Nothing was left out that would have fitted whole.
        if (Buffer.byteLength(JSON.stringify(peers)) <= budget) expect(text).toBe(JSON.stringify(peers));
      }),
      { numRuns: 300 },
    );
  });
});
