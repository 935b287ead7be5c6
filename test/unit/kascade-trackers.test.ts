// Issue 13 point 3: the `trackers` extension of a .kascade (docs/spec-trackers.md): failover tracker URLs after
// `tracker`. Valid lists, each refusal with its code and field path, the round trip through serialize (the key
// written only with more than one tracker, `tracker` untouched for original peers), and the dialects without it.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KfetchError } from '../../src/errors.js';
import { Kascade } from '../../src/kascade/kascade.js';
import { parseKascade, type ParseKascadeOptions } from '../../src/kascade/parse.js';
import { serializeKascade } from '../../src/kascade/serialize.js';
import { LIMITS } from '../../src/limits.js';

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
const MAIN = 'http://127.0.0.1:8000/peers/x.json';
const base = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  filename: 'f.bin',
  filesize: 1000,
  filehash: 'ab'.repeat(32),
  tracker: MAIN,
  blockhashes: { '512': [md5('a'), md5('b')] },
  ...extra,
});
const urls = (n: number, from = 1): string[] => Array.from({ length: n }, (_, i) => `http://127.0.0.${i + from}:9000/peers/x.json`);

function refusal(o: unknown, opts?: ParseKascadeOptions): { code: string; field: string | undefined; message: string } | 'ok' {
  try {
    parseKascade(JSON.stringify(o), 'x.json', opts);
    return 'ok';
  } catch (err) {
    if (!(err instanceof KfetchError)) throw err;
    return { code: err.code, field: err.field, message: err.message };
  }
}

describe('the trackers extension', () => {
  it('lists every tracker, tracker first, and leaves `extra` without it', () => {
    const more = ['https://tracker.example/announce', 'http://10.0.0.2:8000/peers/x.json', 'http://[::1]:8000/a'];
    const k = parseKascade(JSON.stringify(base({ trackers: more })));
    expect(k.tracker).toBe(MAIN);
    expect(k.trackers).toEqual([MAIN, ...more]);
    expect(Object.keys(k.extra)).toEqual([]);
  });

  it('without the key (2015 and 2014 dialects) is just `tracker`; an empty list is the same', () => {
    expect(parseKascade(JSON.stringify(base())).trackers).toEqual([MAIN]);
    expect(parseKascade(JSON.stringify(base({ trackers: [] }))).trackers).toEqual([MAIN]);
    const k2014 = parseKascade(
      JSON.stringify({ filename: 'f.bin', filesize: 1000, filehash: 'ab'.repeat(32), tracker: MAIN, blocksize: 512, blockhashes: [md5('a'), md5('b')] }),
    );
    expect(k2014.dialect).toBe(2014);
    expect(k2014.trackers).toEqual([MAIN]);
    // A 2014 file may carry the extension too.
    const with2014 = parseKascade(
      JSON.stringify({ filename: 'f.bin', filesize: 1000, filehash: 'ab'.repeat(32), tracker: MAIN, trackers: urls(1), blocksize: 512, blockhashes: [md5('a'), md5('b')] }),
    );
    expect(with2014.trackers).toEqual([MAIN, ...urls(1)]);
  });

  it(`accepts ${LIMITS.kascadeTrackersMax} trackers in all (tracker + ${LIMITS.kascadeTrackersMax - 1})`, () => {
    const more = urls(LIMITS.kascadeTrackersMax - 1);
    expect(parseKascade(JSON.stringify(base({ trackers: more }))).trackers).toHaveLength(LIMITS.kascadeTrackersMax);
  });

  const long = `http://127.0.0.1:9000/${'a'.repeat(LIMITS.trackerUrlMaxBytes)}`;
  const table: Array<[string, unknown, string, string]> = [
    ['not an array', 'http://127.0.0.1:9000/a', 'KF_E_KASCADE_SCHEMA', 'trackers'],
    ['an object', { 0: 'http://127.0.0.1:9000/a' }, 'KF_E_KASCADE_SCHEMA', 'trackers'],
    ['one too many', urls(LIMITS.kascadeTrackersMax), 'KF_E_KASCADE_SCHEMA', 'trackers'],
    ['a number entry', [urls(1)[0], 8000], 'KF_E_KASCADE_SCHEMA', 'trackers[1]'],
    ['a null entry', [null], 'KF_E_KASCADE_SCHEMA', 'trackers[0]'],
    ['a nested array', [[urls(1)[0]]], 'KF_E_KASCADE_SCHEMA', 'trackers[0]'],
    ['a relative URL', [...urls(3), '/peers/x.json'], 'KF_E_KASCADE_TRACKER', 'trackers[3]'],
    ['a file: URL', ['file:///etc/passwd'], 'KF_E_KASCADE_TRACKER', 'trackers[0]'],
    ['credentials', [...urls(1), 'http://u:secret@127.0.0.1:9000/a'], 'KF_E_KASCADE_TRACKER', 'trackers[1]'],
    ['a metadata address', [...urls(2), 'http://169.254.169.254/latest'], 'KF_E_KASCADE_TRACKER', 'trackers[2]'],
    ['an unspecified address', ['http://0.0.0.0:9000/a'], 'KF_E_KASCADE_TRACKER', 'trackers[0]'],
    ['a URL over the length limit', [long], 'KF_E_KASCADE_TRACKER', 'trackers[0]'],
    ['a repeat of tracker', [...urls(1), MAIN], 'KF_E_KASCADE_TRACKER', 'trackers[1]'],
    ['a repeat of tracker, spelt differently', ['HTTP://127.0.0.1:8000/peers/x.json'], 'KF_E_KASCADE_TRACKER', 'trackers[0]'],
    ['a repeat of an entry', [...urls(3), urls(1, 2)[0]], 'KF_E_KASCADE_TRACKER', 'trackers[3]'],
  ];
  it.each(table)('refuses %s, naming the field', (_what, value, code, field) => {
    const r = refusal(base({ trackers: value }));
    expect(r).not.toBe('ok');
    if (r === 'ok') return;
    expect({ code: r.code, field: r.field }).toEqual({ code, field });
    expect(r.message.startsWith(field)).toBe(true);
  });

  it('never puts a password from a refused URL in the message', () => {
    const r = refusal(base({ trackers: ['http://u:hunter2@127.0.0.1:9000/a'] }));
    expect(r === 'ok' ? '' : r.message).not.toContain('hunter2');
  });

  it('the limit can be lowered by the caller (counting tracker)', () => {
    expect(refusal(base({ trackers: urls(2) }), { maxTrackers: 3 })).toBe('ok');
    const r = refusal(base({ trackers: urls(3) }), { maxTrackers: 3 });
    expect(r === 'ok' ? undefined : r.field).toBe('trackers');
  });
});

describe('serialize with several trackers', () => {
  it('writes `trackers` (the ones after tracker) only when there is more than one, and round-trips', () => {
    const k = parseKascade(JSON.stringify(base({ trackers: urls(2) })));
    const text = serializeKascade(k);
    const json = JSON.parse(text) as Record<string, unknown>;
    expect(json.tracker).toBe(MAIN); // what an original peer reads: unchanged, a string
    expect(json.trackers).toEqual(urls(2));
    expect(Object.keys(json).slice(0, 5)).toEqual(['filename', 'filesize', 'filehash', 'tracker', 'trackers']);
    expect(parseKascade(text).trackers).toEqual(k.trackers);

    const one = serializeKascade(parseKascade(JSON.stringify(base())));
    expect(JSON.parse(one)).not.toHaveProperty('trackers');
    const empty = serializeKascade(parseKascade(JSON.stringify(base({ trackers: [] }))));
    expect(JSON.parse(empty)).not.toHaveProperty('trackers');
  });

  it('a Kascade built without trackers has just its tracker; one whose list does not start with it is a bug', () => {
    const fields = { filename: 'f', filesize: 0, filehash: 'ab'.repeat(32), tracker: MAIN, blockhashes: new Map([[512, []]]), swarmId: 'ab'.repeat(32), peers: [], dialect: 2015 as const, extra: {} };
    expect(new Kascade(fields).trackers).toEqual([MAIN]);
    expect(() => new Kascade({ ...fields, trackers: urls(1) })).toThrow(RangeError);
  });
});
