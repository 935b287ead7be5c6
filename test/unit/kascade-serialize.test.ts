// serializeKascade: stable 2015-dialect output, lowercase hex, and parse(serialize(k)) == k over the valid corpus;
// trackerUrlFor's base-URL convention.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Expectation } from '../../scripts/make-bad-corpus.js';
import { KfetchError } from '../../src/errors.js';
import type { Kascade } from '../../src/kascade/kascade.js';
import { parseKascade } from '../../src/kascade/parse.js';
import { serializeKascade, trackerUrlFor } from '../../src/kascade/serialize.js';

const DIR = fileURLToPath(new URL('../fixtures/kascade/', import.meta.url));
const expected = JSON.parse(await readFile(join(DIR, 'expected.json'), 'utf8')) as Record<string, Expectation>;
const valid = Object.entries(expected)
  .filter(([, e]) => e.code === 'ok')
  .map(([f]) => f);

/** Every observable field of a Kascade, as plain data (Maps and null-prototype objects flattened). */
function fieldsOf(k: Kascade): Record<string, unknown> {
  return {
    filename: k.filename,
    filesize: k.filesize,
    filehash: k.filehash,
    tracker: k.tracker,
    blockhashes: [...k.blockhashes.entries()].sort((a, b) => a[0] - b[0]),
    swarmId: k.swarmId,
    peers: [...k.peers],
    dialect: k.dialect,
    extra: Object.entries(k.extra),
  };
}

describe('serializeKascade', () => {
  it.each(valid)('round-trips %s', async (file) => {
    const k = parseKascade(await readFile(join(DIR, file)), file);
    const text = serializeKascade(k);
    const again = parseKascade(text, 'again.json');
    const want = fieldsOf(k);
    if (k.dialect === 2014) want.dialect = 2015; // 2014 files are written in the 2015 dialect
    expect(fieldsOf(again)).toEqual(want);
    // And it is a fixed point.
    expect(serializeKascade(again)).toBe(text);
  });

  it('writes keys in the stable order with lowercase hex and a final newline', async () => {
    const k = parseKascade(await readFile(join(DIR, 'ok-extensions.json')));
    const text = serializeKascade(k);
    expect(text.endsWith('}\n')).toBe(true);
    expect(Object.keys(JSON.parse(text) as object)).toEqual(['filename', 'filesize', 'filehash', 'tracker', 'blockhashes', 'peers', 'created by', 'comment']);
    const upper = serializeKascade(parseKascade(await readFile(join(DIR, 'ok-uppercase-hashes.json'))));
    const hexTokens = upper.match(/"[0-9a-fA-F]{32,64}"/g) ?? [];
    expect(hexTokens.length).toBe(4);
    for (const t of hexTokens) expect(t).toBe(t.toLowerCase());
    expect(upper).toBe(serializeKascade(parseKascade(await readFile(join(DIR, 'ok-base.json')))));
  });

  it('writes a 2014 file as 2015 with its swarm id as trackhash', async () => {
    const k = parseKascade(await readFile(join(DIR, 'ok-2014-1k.kascade')));
    const out = JSON.parse(serializeKascade(k)) as Record<string, unknown>;
    expect(Object.keys(out)).toEqual(['filename', 'filesize', 'filehash', 'tracker', 'trackhash', 'blockhashes']);
    expect(out.trackhash).toBe(k.swarmId);
    expect(Array.isArray(out.blockhashes)).toBe(false);
    expect(Object.keys(out.blockhashes as object)).toEqual(['1024']);
    expect(out.blocksize).toBeUndefined();
  });

  it('keeps a __proto__ extra key as data and pollutes nothing', async () => {
    const k = parseKascade(await readFile(join(DIR, 'ok-proto-keys.json')));
    const text = serializeKascade(k);
    expect(text).toContain('"__proto__": {');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.hasOwn(parseKascade(text).extra, '__proto__')).toBe(true);
  });
});

describe('trackerUrlFor', () => {
  const h = 'AB'.repeat(32);
  it('adds /peers/<filehash>.json to a base with no path', () => {
    expect(trackerUrlFor('http://127.0.0.1:8000', h)).toBe(`http://127.0.0.1:8000/peers/${'ab'.repeat(32)}.json`);
    expect(trackerUrlFor('http://127.0.0.1:8000/', h)).toBe(`http://127.0.0.1:8000/peers/${'ab'.repeat(32)}.json`);
    expect(trackerUrlFor('https://[::1]:9/', h)).toBe(`https://[::1]:9/peers/${'ab'.repeat(32)}.json`);
  });
  it('keeps a URL that has a path or query as given', () => {
    expect(trackerUrlFor('http://t.example/announce', h)).toBe('http://t.example/announce');
    expect(trackerUrlFor('http://t.example/peers/x.json', h)).toBe('http://t.example/peers/x.json');
    expect(trackerUrlFor('http://t.example/?id=1', h)).toBe('http://t.example/?id=1');
  });
  it('refuses a base that is not an acceptable tracker URL', () => {
    for (const bad of ['ftp://x/', 'not a url', 'http://u:p@x/', 'http://169.254.169.254/']) {
      expect(() => trackerUrlFor(bad, h)).toThrow(KfetchError);
      try {
        trackerUrlFor(bad, h);
      } catch (err) {
        expect((err as KfetchError).code).toBe('KF_E_KASCADE_TRACKER');
        expect((err as KfetchError).message).not.toContain(':p@');
      }
    }
  });
});
