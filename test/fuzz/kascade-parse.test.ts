// fast-check properties for the .kascade parser: any input gives a Kascade or a KfetchError with a catalogued code
// (never another exception), accepted names stay inside their directory, nothing pollutes Object.prototype, and
// serialize/parse round-trips. Runs: KFETCH_FUZZ_RUNS (default 300; `npm run test:fuzz` runs 20 000).

import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { corpusRows } from '../../scripts/make-bad-corpus.js';
import { ERROR_CATALOGUE, KfetchError } from '../../src/errors.js';
import { Kascade } from '../../src/kascade/kascade.js';
import { firstInvalidUtf8 } from '../../src/kascade/decode-text.js';
import { parseKascade } from '../../src/kascade/parse.js';
import { serializeKascade } from '../../src/kascade/serialize.js';

const RUNS = Number(process.env.KFETCH_FUZZ_RUNS ?? 300);
const BASE = corpusRows().find((r) => r.file === 'ok-base.json')!.bytes;
const BASE_OBJ = JSON.parse(new TextDecoder().decode(BASE)) as Record<string, unknown>;
const PROTO_NAMES = Object.getOwnPropertyNames(Object.prototype).sort();

/** Parse, and classify: a Kascade, or a KfetchError whose code is catalogued. Anything else fails the property. */
function parseOrCode(input: Uint8Array | string): Kascade | string {
  try {
    const k = parseKascade(input, 'fuzz.json');
    expect(k).toBeInstanceOf(Kascade);
    return k;
  } catch (err) {
    if (!(err instanceof KfetchError)) throw err;
    expect(Object.hasOwn(ERROR_CATALOGUE, err.code)).toBe(true);
    expect(err.code.startsWith('KF_E_KASCADE_')).toBe(true);
    expect(err.file).toBe('fuzz.json');
    return err.code;
  }
}

const hexOf = (n: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: n, maxLength: n });
const weirdString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom('', '.', '..', '/', '\\', '__proto__', 'constructor', 'CON', 'a/../b', 'x\u0000y', 'e\u0301', '0x', 'http://', 'file:///'),
);
const anyValue = fc.oneof(fc.jsonValue({ maxDepth: 2 }), weirdString, fc.double(), fc.integer());
const blockKey = fc.oneof(fc.constantFrom('512', '1024', '2048', '4096', '0', '-1', '1e3', '01024', '1024.0', '__proto__'), fc.nat().map(String), weirdString);

/** JSON-ish .kascade objects: the known keys with right-ish and wrong values, plus random extra keys. */
const kascadeish = fc
  .record(
    {
      filename: fc.oneof(weirdString, anyValue),
      filesize: fc.oneof(fc.nat({ max: 20_000 }), fc.double(), fc.constantFrom(-1, 2 ** 53, 1e308), anyValue),
      filehash: fc.oneof(hexOf(64), hexOf(63), weirdString, anyValue),
      tracker: fc.oneof(fc.webUrl(), fc.constantFrom('http://127.0.0.1:1/', 'ftp://x/', 'http://u:p@h/', 'javascript:x'), weirdString),
      blockhashes: fc.oneof(
        fc.dictionary(blockKey, fc.oneof(fc.array(hexOf(32), { maxLength: 12 }), fc.array(anyValue, { maxLength: 4 }), anyValue), { maxKeys: 3 }),
        fc.array(fc.oneof(hexOf(32), anyValue), { maxLength: 12 }),
        anyValue,
      ),
      blocksize: fc.oneof(fc.constantFrom(512, 1024, 0, -1, 1.5), anyValue),
      trackhash: fc.oneof(hexOf(32), hexOf(40), weirdString),
      peers: fc.oneof(fc.array(fc.oneof(fc.constantFrom('127.0.0.1:1', '[::1]:80', 'h:0', ':1'), weirdString), { maxLength: 4 }), anyValue),
      // Issue 13: the failover tracker list (repeats, bad schemes, credentials, over-long lists).
      trackers: fc.oneof(
        fc.array(fc.oneof(fc.webUrl(), fc.constantFrom('http://127.0.0.1:1/', 'HTTP://127.0.0.1:1/', 'ftp://x/', 'http://u:p@h/', 'http://169.254.169.254/'), weirdString, anyValue), { maxLength: 20 }),
        anyValue,
      ),
      'created by': anyValue,
    },
    { requiredKeys: [] },
  )
  .chain((o) => fc.dictionary(weirdString, anyValue, { maxKeys: 3 }).map((extra) => ({ ...extra, ...o })));

afterAll(() => {
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTO_NAMES);
});

describe('parseKascade fuzz', () => {
  it('arbitrary bytes give a Kascade or a catalogued KfetchError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        parseOrCode(bytes);
      }),
      { numRuns: RUNS },
    );
  });

  it('the UTF-8 offset finder agrees with node:buffer isUtf8', () => {
    const utf8ish = fc.array(fc.oneof(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0x80, max: 0xbf }), fc.constantFrom(0xc0, 0xc2, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5)), { maxLength: 24 });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), utf8ish.map((a) => Uint8Array.from(a)), fc.string({ unit: 'binary' }).map((s) => new TextEncoder().encode(s))), (b) => {
        const off = firstInvalidUtf8(b);
        expect(off === -1).toBe(isUtf8(b));
        if (off >= 0) {
          expect(isUtf8(b.subarray(0, off))).toBe(true);
        }
      }),
      { numRuns: RUNS * 3 },
    );
  });

  it('arbitrary strings give a Kascade or a catalogued KfetchError', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => {
        parseOrCode(text);
      }),
      { numRuns: RUNS },
    );
  });

  it('JSON-ish kascade objects give a Kascade or a catalogued KfetchError', () => {
    fc.assert(
      fc.property(kascadeish, (o) => {
        parseOrCode(JSON.stringify(o));
      }),
      { numRuns: RUNS },
    );
  });

  it('byte mutations of the valid file give a Kascade or a catalogued KfetchError', () => {
    const edit = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
      fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.nat({ max: 20 }) }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
    );
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 4 }), (edits) => {
        let b = Array.from(BASE);
        for (const e of edits) {
          const at = e.at % (b.length + 1);
          if (e.kind === 'flip' && at < b.length) b[at] = b[at]! ^ (1 << e.bit);
          else if (e.kind === 'delete') b.splice(at, e.len);
          else if (e.kind === 'insert') b.splice(at, 0, ...e.bytes);
        }
        parseOrCode(Uint8Array.from(b));
      }),
      { numRuns: RUNS },
    );
  });

  it('value mutations of the valid file (one key replaced or removed) never throw anything else', () => {
    fc.assert(
      fc.property(fc.constantFrom(...Object.keys(BASE_OBJ), 'blocksize', 'peers', '__proto__'), fc.option(anyValue), (key, value) => {
        const o: Record<string, unknown> = { ...BASE_OBJ };
        if (value === null) delete o[key];
        else Object.defineProperty(o, key, { value, enumerable: true });
        parseOrCode(JSON.stringify(o));
      }),
      { numRuns: RUNS },
    );
  });

  it('any accepted filename, joined to a directory, stays inside it', () => {
    const dir = join(tmpdir(), 'kfetch-containment');
    const name = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 30 }),
      fc.array(fc.constantFrom('.', '..', '/', '\\', 'a', ' ', ':', '\u0000', 'C', 'e\u0301', '~'), { maxLength: 8 }).map((p) => p.join('')),
    );
    fc.assert(
      fc.property(name, (filename) => {
        const got = parseOrCode(JSON.stringify({ ...BASE_OBJ, filename }));
        if (typeof got === 'string') return;
        const full = resolve(join(dir, got.filename));
        const rel = relative(dir, full);
        expect(rel).not.toBe('');
        expect(rel.split(sep)[0]).not.toBe('..');
        expect(isAbsolute(rel)).toBe(false);
        expect(rel).toBe(got.filename);
      }),
      { numRuns: RUNS },
    );
  });

  it('a __proto__ key does not change Object.prototype', () => {
    const text = `{"__proto__": {"polluted": 1}, "constructor": {"prototype": {"polluted": 2}}, ${JSON.stringify(BASE_OBJ).slice(1)}`;
    const k = parseKascade(text);
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTO_NAMES);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.hasOwn(k.extra, '__proto__')).toBe(true);
  });

  it('serialize then parse gives an equal value for generated valid kascades', () => {
    const valid = fc
      .record({
        filesize: fc.nat({ max: 50_000 }),
        sizes: fc.uniqueArray(fc.constantFrom(512, 1024, 4096, 8192, 65536), { minLength: 1, maxLength: 3 }),
        filename: fc.string({ unit: fc.constantFrom(...'abcXYZ019-_()é日 '), minLength: 1, maxLength: 20 }).filter((s) => !s.endsWith(' ')),
        upper: fc.boolean(),
        peers: fc.array(fc.constantFrom('127.0.0.1:8001', '[::1]:9', 'peer.example:443'), { maxLength: 3 }),
        extra: fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => !['filename', 'filesize', 'filehash', 'tracker', 'blockhashes', 'blocksize', 'trackhash', 'kascadehash', 'peers', 'created by'].includes(k)), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
        seed: fc.nat(),
      })
      .map((r) => {
        const h = (s: string, algo: string): string => {
          const x = createHash(algo).update(`${r.seed}:${s}`).digest('hex');
          return r.upper ? x.toUpperCase() : x;
        };
        const blockhashes: Record<string, string[]> = {};
        for (const b of r.sizes) blockhashes[String(b)] = Array.from({ length: Math.ceil(r.filesize / b) }, (_, i) => h(`${b}/${i}`, 'md5'));
        return { ...r.extra, filename: r.filename.normalize('NFC'), filesize: r.filesize, filehash: h('file', 'sha256'), tracker: 'http://127.0.0.1:8000/peers/x.json', blockhashes, peers: r.peers };
      });
    fc.assert(
      fc.property(valid, (o) => {
        const k = parseKascade(JSON.stringify(o));
        const again = parseKascade(serializeKascade(k));
        const fields = (x: Kascade): unknown => [x.filename, x.filesize, x.filehash, x.tracker, [...x.blockhashes].sort((a, b) => a[0] - b[0]), x.swarmId, x.peers, x.dialect, Object.entries(x.extra)];
        expect(fields(again)).toEqual(fields(k));
      }),
      { numRuns: RUNS },
    );
  });
});
