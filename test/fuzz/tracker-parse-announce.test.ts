// Property: any announce form gives a valid Announce or a KfetchError from the catalogue, never another
// exception. Runs KFETCH_FUZZ_RUNS cases (default 200; `npm run test:fuzz` runs 20 000).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, KfetchError } from '../../src/errors.js';
import { parseAnnounce } from '../../src/tracker/parse-announce.js';
import { canonicalIp } from '../../src/util/address-policy.js';

const numRuns = Number(process.env.KFETCH_FUZZ_RUNS ?? 200);

const name = fc.oneof(fc.constantFrom('port', 'progress', 'ip', 'blocks', 'blocksize', 'event', 'id', 'wire'), fc.string({ maxLength: 8 }));
const value = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.integer({ min: -70000, max: 70000 }).map(String),
  fc.double().map(String),
  fc.ipV4(),
  fc.ipV6(),
  fc.stringMatching(/^[0-9a-fA-F]{0,70}$/),
  fc.constantFrom('stopped', 'started', '0.5', '1.0', '4096', '', ' 1', '1e3', '0x10', '::ffff:0.0.0.0', '.5', '1.', '+1e0', '-0', '08000', ' 1e-400 ', '1.0009'),
  // Numbers the way other languages print them, with stray white space.
  fc
    .tuple(fc.double({ noNaN: false }), fc.constantFrom('', ' ', '\t', '\n'), fc.constantFrom('plain', 'exp', 'fixed', 'upper'))
    .map(([x, ws, how]) => {
      const t = how === 'exp' ? x.toExponential() : how === 'fixed' && Math.abs(x) < 1e21 ? x.toFixed(6) : how === 'upper' ? x.toExponential().toUpperCase() : String(x);
      return `${ws}${t}${ws}`;
    }),
);
const form = fc.oneof(
  fc.array(fc.tuple(name, value), { maxLength: 10 }),
  // Mostly-valid forms, so the optional fields get exercised past the required ones.
  fc
    .tuple(fc.integer({ min: 1, max: 65535 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.array(fc.tuple(name, value), { maxLength: 6 }))
    .map(([port, progress, rest]): Array<[string, string]> => [
      ['port', String(port)],
      ['progress', progress.toFixed(4)],
      ...rest.filter(([n]) => n !== 'port' && n !== 'progress'),
    ]),
);

describe('fuzz: parseAnnounce', () => {
  it('reads any number in [0, 1] printed in any usual form, with white space, as that number (issue 9)', () => {
    const form = fc.constantFrom('plain', 'exp', 'EXP', 'fixed', 'plus');
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1, noNaN: true }), form, fc.constantFrom('', ' ', '\t', '\r\n'), fc.integer({ min: 0, max: 4 }), (x, how, ws, zeros) => {
        const text =
          how === 'exp' ? x.toExponential() : how === 'EXP' ? x.toExponential().toUpperCase() : how === 'fixed' ? x.toFixed(20) : how === 'plus' ? `+${x}` : String(x);
        const a = parseAnnounce([
          ['port', `${ws}${'0'.repeat(zeros)}8000${ws}`],
          ['progress', `${ws}${text}${ws}`],
        ]);
        expect(a.port).toBe(8000);
        expect(Math.abs(a.progress - x)).toBeLessThan(1e-15);
      }),
      { numRuns },
    );
  });

  it('returns a well-formed Announce or a catalogued KfetchError with a field', () => {
    fc.assert(
      fc.property(form, (fields) => {
        try {
          const a = parseAnnounce(fields);
          expect(Number.isInteger(a.port) && a.port >= 1 && a.port <= 65535).toBe(true);
          expect(a.progress >= 0 && a.progress <= 1).toBe(true);
          if (a.ip !== undefined) expect(canonicalIp(a.ip)).toBe(a.ip);
          if (a.blocks !== undefined) expect(a.blocks.hex).toMatch(/^(?:[0-9a-f]{2})*$/);
          if (a.peerId !== undefined) expect(a.peerId).toMatch(/^[0-9a-f]{64}$/);
          if (a.wire !== undefined) expect(Number.isInteger(a.wire) && a.wire >= 1 && a.wire <= 65535).toBe(true);
        } catch (err) {
          if (!(err instanceof KfetchError)) throw err;
          expect(err.code in ERROR_CATALOGUE).toBe(true);
          expect(err.field).toBeTypeOf('string');
        }
      }),
      { numRuns },
    );
  });
});
