// Property: any tracker reply body gives validated peers (IP literals, usable ports, unique, capped) with a
// clamped interval, or a catalogued KfetchError, never another exception. Also fuzzes the address policy.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, KfetchError } from '../../src/errors.js';
import { LIMITS } from '../../src/limits.js';
import { canonicalIp, judgeAddress } from '../../src/util/address-policy.js';
import { peerKey } from '../../src/peer/peer-info.js';
import { parseTrackerReply } from '../../src/tracker/parse-reply.js';

const numRuns = Number(process.env.KFETCH_FUZZ_RUNS ?? 200);

const ip = fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended(), fc.domain(), fc.string({ maxLength: 20 }));
const entry = fc.oneof(
  fc.record(
    {
      ip: fc.oneof(ip, fc.jsonValue()),
      port: fc.oneof(fc.integer({ min: -5, max: 70000 }), fc.double(), fc.string({ maxLength: 6 }), fc.jsonValue()),
      progress: fc.oneof(fc.double(), fc.jsonValue()),
      feeder: fc.jsonValue(),
      updated: fc.jsonValue(),
      blocks: fc.oneof(fc.stringMatching(/^[0-9a-fA-F]{0,9}$/), fc.jsonValue()),
      blocksize: fc.oneof(fc.integer(), fc.jsonValue()),
      // Issue 14: the peer wire's port.
      wire: fc.oneof(fc.integer({ min: -5, max: 70000 }), fc.double(), fc.string({ maxLength: 6 }), fc.jsonValue()),
    },
    { requiredKeys: [] },
  ),
  fc.jsonValue(),
);
const body = fc.oneof(
  fc.array(entry, { maxLength: 30 }).map((e) => JSON.stringify(e)),
  fc.record({ peers: fc.array(entry, { maxLength: 30 }), interval: fc.jsonValue(), warning: fc.jsonValue() }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 200 }),
);

function check(b: string | Uint8Array, allowLoopback: boolean, peersPerReply: number): void {
  try {
    const r = parseTrackerReply(b, { allowLoopback, peersPerReply });
    expect(r.peers.length).toBeLessThanOrEqual(peersPerReply);
    expect(r.dropped).toBeGreaterThanOrEqual(0);
    expect(r.intervalMs).toBeGreaterThanOrEqual(LIMITS.announceIntervalMinMs);
    expect(r.intervalMs).toBeLessThanOrEqual(LIMITS.announceIntervalMaxMs);
    const keys = new Set<string>();
    for (const p of r.peers) {
      expect(canonicalIp(p.ip)).toBe(p.ip);
      expect(judgeAddress(p.ip, { allowLoopback })).toBe('ok');
      expect(Number.isInteger(p.port) && p.port >= 1 && p.port <= 65535).toBe(true);
      expect(p.progress >= 0 && p.progress <= 1).toBe(true);
      expect(typeof p.feeder).toBe('boolean');
      expect(p.blocks === undefined).toBe(p.blocksize === undefined);
      if (p.wire !== undefined) expect(Number.isInteger(p.wire) && p.wire >= 1 && p.wire <= 65535).toBe(true);
      keys.add(peerKey(p.ip, p.port));
    }
    expect(keys.size).toBe(r.peers.length);
  } catch (err) {
    if (!(err instanceof KfetchError)) throw err;
    expect(err.code in ERROR_CATALOGUE).toBe(true);
  }
}

describe('fuzz: parseTrackerReply', () => {
  it('yields only valid peers or a catalogued KfetchError', () => {
    fc.assert(
      fc.property(body, fc.boolean(), fc.integer({ min: 1, max: 40 }), (b, loop, cap) => check(b, loop, cap)),
      { numRuns },
    );
  });
});

describe('fuzz: address policy', () => {
  it('canonicalIp is idempotent and never accepts what node:net does not', () => {
    fc.assert(
      fc.property(ip, (s) => {
        const c = canonicalIp(s);
        if (c !== undefined) {
          expect(canonicalIp(c)).toBe(c);
          // A canonical address is always an IP: whatever the verdict (ok, link-local, …), never 'not-ip'.
          expect(judgeAddress(c, { allowLoopback: false })).not.toBe('not-ip');
        } else expect(judgeAddress(s, { allowLoopback: true })).toBe('not-ip');
      }),
      { numRuns },
    );
  });
});
