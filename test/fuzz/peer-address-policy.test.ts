// Properties of the one address policy (issue 10 point 15): for any address text, --peer / .kascade parsing and
// the dial guard agree — an accepted IP literal is one the dial guard lets through, and a literal the guard refuses
// is never accepted — and nothing throws. The IPv4-in-IPv6 forms are judged as their IPv4.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import type * as IpAddr from 'ipaddr.js';
import { NAMED_ADDRESS_POLICY, canonicalIp, dottedQuadValue, judgeAddress } from '../../src/util/address-policy.js';
import { dialProblem } from '../../src/peer/dial-guard.js';
import { parsePeerAddress } from '../../src/util/peer-address.js';

const numRuns = Number(process.env.KFETCH_FUZZ_RUNS ?? 300);
const ipaddr = createRequire(import.meta.url)('ipaddr.js') as typeof IpAddr;
const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255));
const hex = (a: number, b: number): string => ((a << 8) | b).toString(16);
const host = fc.oneof(
  fc.ipV4(),
  fc.ipV6().map((h) => `[${h}]`),
  v4.map(([a, b, c, d]) => `[::ffff:${a}.${b}.${c}.${d}]`),
  v4.map(([a, b, c, d]) => `[64:ff9b::${hex(a, b)}:${hex(c, d)}]`),
  v4.map(([a, b, c, d]) => `[2002:${hex(a, b)}:${hex(c, d)}::1]`),
  fc.ipV4Extended(),
  fc.domain(),
  fc.string({ maxLength: 30 }),
);

describe('address policy properties', () => {
  it('parsePeerAddress and the dial guard agree on every IP literal; nothing throws', () => {
    fc.assert(
      fc.property(host, fc.integer({ min: 0, max: 70000 }), (h, port) => {
        const parsed = parsePeerAddress(`${h}:${port}`);
        const guard = dialProblem(h);
        if (!('problem' in parsed)) {
          expect(port).toBeGreaterThan(0);
          if (guard !== undefined) expect.unreachable(`${h} accepted but refused at the dial: ${guard}`);
          expect(dialProblem(parsed.host)).toBeUndefined();
        } else if (parsed.policy) {
          expect(guard).toBeDefined();
        }
      }),
      { numRuns },
    );
  });

  it('judges IPv4 carried in IPv6 as the IPv4', () => {
    fc.assert(
      fc.property(v4, ([a, b, c, d]) => {
        const plain = judgeAddress(`${a}.${b}.${c}.${d}`, NAMED_ADDRESS_POLICY);
        expect(judgeAddress(`::ffff:${a}.${b}.${c}.${d}`, NAMED_ADDRESS_POLICY)).toBe(plain);
        expect(judgeAddress(`64:ff9b::${hex(a, b)}:${hex(c, d)}`, NAMED_ADDRESS_POLICY)).toBe(plain);
        expect(judgeAddress(`2002:${hex(a, b)}:${hex(c, d)}::1`, NAMED_ADDRESS_POLICY)).toBe(plain);
      }),
      { numRuns },
    );
  });

  it("canonicalIp's dotted-quad fast path (issue 14: UDP CPU) takes exactly the texts that are their own canonical IPv4", () => {
    const text = fc.oneof(
      fc.ipV4(),
      fc.ipV4Extended(),
      v4.map(([a, b, c, d]) => `${a}.0${b}.${c}.${d}`),
      fc.tuple(v4, fc.integer({ min: 256, max: 99999 })).map(([[a, b, c], d]) => `${a}.${b}.${c}.${d}`),
      fc.array(fc.constantFrom('0', '1', '9', '.', '2', '5', ' ', '+', '-', 'x'), { maxLength: 18 }).map((cs) => cs.join('')),
      fc.string({ maxLength: 20 }),
    );
    fc.assert(
      fc.property(text, (t) => {
        // The slow path's verdict: an IPv4 literal whose canonical text is itself.
        const own = isIP(t) === 4 && ipaddr.parse(t).toString() === t;
        const value = dottedQuadValue(t);
        expect(value >= 0).toBe(own);
        if (own) {
          const bytes = ipaddr.parse(t).toByteArray();
          expect(value).toBe(((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0);
          expect(canonicalIp(t)).toBe(t);
        }
      }),
      { numRuns },
    );
  });
});
