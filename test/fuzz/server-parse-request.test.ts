// fast-check properties for the block server's request parser: any method, target and Range give a typed request
// or a 400/404/405/416, never an exception; an accepted target is only hex (nothing can name a path); an accepted
// Range is canonical and safe. Runs: KFETCH_FUZZ_RUNS (default 300; `npm run test:fuzz` runs 20 000).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseRange, parseRequest } from '../../src/server/parse-request.js';
import { isLoopbackHost } from '../../src/server/host-policy.js';

const RUNS = Number(process.env.KFETCH_FUZZ_RUNS ?? 300);
const ID = '01b944a73e124115caaed0787c66b896ed7662d3116ced9cb08ef7aafc109f16';

/** Targets built from the pieces attacks are made of, plus arbitrary strings. */
const target = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: 'binary', maxLength: 100 }),
  fc
    .array(fc.constantFrom('/', '..', '.', '%2e', '%2E', '%2f', '%25', '%00', '\\', ID, 'blocks', '?blocksize=', '4096', 'etc', 'passwd', 'http:', '\u00c0\u00ae', ' ', '#', '&'), {
      maxLength: 12,
    })
    .map((parts) => parts.join('')),
);
const range = fc.option(
  fc.oneof(
    fc.string({ maxLength: 40 }),
    fc
      .tuple(fc.constantFrom('', 'bytes=', 'BYTES=', ' bytes=', 'items='), fc.oneof(fc.bigInt({ min: -10n, max: 2n ** 60n }).map(String), fc.constant('')), fc.constantFrom('-', ',', '--'), fc.oneof(fc.bigInt({ min: -10n, max: 2n ** 60n }).map(String), fc.constant('')))
      .map(([u, a, d, b]) => `${u}${a}${d}${b}`),
  ),
  { nil: undefined },
);
const method = fc.oneof(fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'get', ''), fc.string({ maxLength: 10 }));

describe('parseRequest properties', () => {
  it('gives a typed request or a 400/404/405/416, and accepts only hex ids and canonical ranges', () => {
    fc.assert(
      fc.property(method, target, range, (m, t, r) => {
        const res = parseRequest(m, t, r);
        if (!res.ok) {
          expect([400, 404, 405, 416]).toContain(res.status);
          expect(typeof res.error).toBe('string');
          return;
        }
        expect(['GET', 'HEAD']).toContain(m);
        const req = res.request;
        expect(req.swarmId).toMatch(/^[0-9a-f]{1,128}$/);
        expect(t).not.toMatch(/\.\.|%|\\|\/\/|\0/);
        if (req.kind === 'range') {
          expect(Number.isSafeInteger(req.first) && req.first >= 0).toBe(true);
          if (req.last !== undefined) expect(Number.isSafeInteger(req.last) && req.last >= req.first).toBe(true);
          expect(r).toMatch(/^(bytes=)?(0|[1-9][0-9]*)-(0|[1-9][0-9]*)?$/);
        }
        if (req.kind === 'bitfield') expect(Number.isSafeInteger(req.blockSize) && req.blockSize > 0).toBe(true);
        if (req.kind === 'whole') expect(r).toBeUndefined();
      }),
      { numRuns: RUNS },
    );
  });

  it('parseRange round-trips every canonical safe range', () => {
    fc.assert(
      fc.property(fc.nat({ max: Number.MAX_SAFE_INTEGER }), fc.nat({ max: Number.MAX_SAFE_INTEGER }), fc.boolean(), (a, b, unit) => {
        const [first, last] = a <= b ? [a, b] : [b, a];
        expect(parseRange(`${unit ? 'bytes=' : ''}${first}-${last}`)).toEqual({ ok: true, first, last });
      }),
      { numRuns: RUNS },
    );
  });

  it('isLoopbackHost never throws and accepts nothing that is not loopback-shaped', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 60 }), fc.ipV4().map((ip) => `${ip}:80`), fc.ipV6().map((ip) => `[${ip}]`)), (h) => {
        const ok = isLoopbackHost(h);
        if (ok) expect(h.toLowerCase()).toMatch(/^(\[[0-9a-f:.]+\]|127\.[0-9.]+|localhost|[^:]*\.localhost)(:[0-9]{1,5})?$/);
      }),
      { numRuns: RUNS },
    );
  });
});
