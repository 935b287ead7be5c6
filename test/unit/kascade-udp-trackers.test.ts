// Issue 14 point 2: a `udp://` tracker (docs/spec-udp-tracker.md) is accepted in the `.kascade` `trackers`
// extension only — never in `tracker`, which original peers read — under the same host rule as http(s) trackers,
// and `kfetch create`'s base URL rule writes the conventional path for it.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KfetchError } from '../../src/errors.js';
import { parseKascade } from '../../src/kascade/parse.js';
import { trackerProblem, trackerUrlFor } from '../../src/kascade/tracker-url.js';

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
const HASH = 'ab'.repeat(32);
const MAIN = `http://127.0.0.1:8000/peers/${HASH}.json`;
const base = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  filename: 'f.bin',
  filesize: 1000,
  filehash: HASH,
  tracker: MAIN,
  blockhashes: { '512': [md5('a'), md5('b')] },
  ...extra,
});

function refusal(o: unknown): { code: string; field: string | undefined } | 'ok' {
  try {
    parseKascade(JSON.stringify(o), 'x.json');
    return 'ok';
  } catch (err) {
    if (!(err instanceof KfetchError)) throw err;
    return { code: err.code, field: err.field };
  }
}

describe('udp:// trackers in a .kascade', () => {
  it('are accepted in trackers, in order', () => {
    const udp = [`udp://127.0.0.1:6969/peers/${HASH}.json`, `udp://[::1]:6969/peers/${HASH}.json`, `udp://tracker.example:6969/peers/${HASH}.json`];
    expect(parseKascade(JSON.stringify(base({ trackers: udp }))).trackers).toEqual([MAIN, ...udp]);
  });

  it('are refused as tracker (original peers read it), without a port, with credentials, or at a refused address', () => {
    expect(refusal(base({ tracker: `udp://127.0.0.1:6969/peers/${HASH}.json` }))).toEqual({ code: 'KF_E_KASCADE_TRACKER', field: 'tracker' });
    for (const bad of [
      `udp://127.0.0.1/peers/${HASH}.json`,
      `udp://u:p@127.0.0.1:1/peers/${HASH}.json`,
      `udp://169.254.169.254:1/peers/${HASH}.json`,
      `udp://2852039166:1/peers/${HASH}.json`, // 169.254.169.254 as a number: read as an http host is
      `udp://[fe80::1]:1/peers/${HASH}.json`,
      `udp://0.0.0.0:1/peers/${HASH}.json`,
    ]) {
      expect(refusal(base({ trackers: [bad] })), bad).toEqual({ code: 'KF_E_KASCADE_TRACKER', field: 'trackers[0]' });
    }
    expect(trackerProblem('udp://127.0.0.1:1/x')).toMatch(/only http: and https:/);
  });

  it('kfetch create: a udp base gets the conventional path as a failover tracker, and is refused as the first', () => {
    expect(trackerUrlFor('udp://127.0.0.1:6969', HASH, 'trackers[0]')).toBe(`udp://127.0.0.1:6969/peers/${HASH}.json`);
    expect(trackerUrlFor('udp://[::1]:6969/', HASH, 'trackers[0]')).toBe(`udp://[::1]:6969/peers/${HASH}.json`);
    expect(() => trackerUrlFor('udp://127.0.0.1:6969', HASH)).toThrow(/scheme "udp:"/);
  });
});
