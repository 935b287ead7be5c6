// Properties of the one address policy (issue 10 point 15): for any address text, --peer / .kascade parsing and
// the dial guard agree — an accepted IP literal is one the dial guard lets through, and a literal the guard refuses
// is never accepted — and nothing throws. The IPv4-in-IPv6 forms are judged as their IPv4.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NAMED_ADDRESS_POLICY, judgeAddress } from '../../src/util/address-policy.js';
import { dialProblem } from '../../src/peer/dial-guard.js';
import { parsePeerAddress } from '../../src/util/peer-address.js';

const numRuns = Number(process.env.KFETCH_FUZZ_RUNS ?? 300);
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
});
