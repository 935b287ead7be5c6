// Property (issue 10 point 11): the over-long reply reader, fed any bytes split anywhere, yields a catalogued
// KfetchError or peers; fed a JSON array whole or cut, it keeps exactly the peers of the entries that came whole.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, KfetchError } from '../../src/errors.js';
import { OverlongReplyReader, parseTrackerReply } from '../../src/tracker/parse-reply.js';

const numRuns = Number(process.env.KFETCH_FUZZ_RUNS ?? 200);
const opts = { allowLoopback: true };

const entry = fc.oneof(
  fc.record({ ip: fc.oneof(fc.ipV4(), fc.ipV6(), fc.string({ maxLength: 8 })), port: fc.integer({ min: 0, max: 70000 }), progress: fc.double(), updated: fc.string({ maxLength: 10 }) }, { requiredKeys: ['ip', 'port'] }),
  fc.jsonValue(),
);

/** Feed `bytes` cut at `cuts`; the reader's result, or the error's code. */
function feed(bytes: Buffer, cuts: number[]): { peers: unknown[] } | string {
  const r = new OverlongReplyReader(opts);
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  try {
    let from = 0;
    for (const to of [...points, bytes.length]) {
      if (r.push(bytes.subarray(from, to))) break;
      from = to;
    }
    return r.finish(bytes.length, 1);
  } catch (err) {
    if (!(err instanceof KfetchError)) throw err;
    expect(err.code in ERROR_CATALOGUE).toBe(true);
    return err.code;
  }
}

describe('fuzz: OverlongReplyReader', () => {
  it('any bytes, split anywhere: peers or a catalogued KfetchError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.string({ maxLength: 300 }).map((s) => new TextEncoder().encode(s))), fc.array(fc.nat(), { maxLength: 8 }), (b, cuts) => {
        feed(Buffer.from(b), cuts);
      }),
      { numRuns },
    );
  });

  it('a JSON array, split anywhere: the same peers as the whole parse', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 8 }), (entries, cuts) => {
        const text = JSON.stringify(entries);
        const whole = parseTrackerReply(text, opts);
        const got = feed(Buffer.from(text), cuts);
        if (entries.length === 0) expect(got).toBe('KF_E_TRACKER_RESPONSE');
        else expect(got).toMatchObject({ peers: whole.peers, dropped: whole.dropped });
      }),
      { numRuns },
    );
  });
});
