// The malformed-.kascade corpus (RELIABILITY.md): every file in test/fixtures/kascade/ loads to the code and field
// listed in expected.json; plus loadKascade's own refusals (missing, directory, too large — checked before reading).

import { mkdtemp, mkdir, readFile, rm, truncate, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corpusRows, type Expectation } from '../../scripts/make-bad-corpus.js';
import { ERROR_CATALOGUE, KfetchError } from '../../src/errors.js';
import { loadKascade } from '../../src/kascade/load.js';
import type { Kascade } from '../../src/kascade/kascade.js';

const DIR = fileURLToPath(new URL('../fixtures/kascade/', import.meta.url));
const expected = JSON.parse(await readFile(join(DIR, 'expected.json'), 'utf8')) as Record<string, Expectation>;

async function loadOrError(path: string, opts?: { maxBytes?: number }): Promise<Kascade | KfetchError> {
  try {
    return await loadKascade(path, opts);
  } catch (err) {
    if (err instanceof KfetchError) return err;
    throw err;
  }
}

describe('kascade corpus', () => {
  it('is what scripts/make-bad-corpus.ts generates (no drift, tiny)', async () => {
    const rows = corpusRows();
    expect(Object.keys(expected).sort()).toEqual(rows.map((r) => r.file).sort());
    let total = 0;
    for (const row of rows) {
      const bytes = await readFile(join(DIR, row.file));
      expect(Buffer.compare(bytes, Buffer.from(row.bytes)), row.file).toBe(0);
      expect(expected[row.file]).toEqual(row.expect);
      total += bytes.length;
    }
    const onDisk = (await readdir(DIR)).filter((f) => f !== 'expected.json');
    expect(onDisk.sort()).toEqual(rows.map((r) => r.file).sort());
    expect(total).toBeLessThan(256 * 1024);
  });

  it.each(Object.entries(expected))('%s -> %j', async (file, want) => {
    const path = join(DIR, file);
    const got = await loadOrError(path);
    if (want.code === 'ok') {
      expect(got, got instanceof KfetchError ? got.toLine() : '').not.toBeInstanceOf(KfetchError);
      return;
    }
    expect(got).toBeInstanceOf(KfetchError);
    const err = got as KfetchError;
    expect(err.code).toBe(want.code);
    expect(err.code in ERROR_CATALOGUE).toBe(true);
    expect(err.file).toBe(path);
    if (want.field !== undefined) expect(err.field).toBe(want.field);
    expect(err.message.length).toBeGreaterThan(0);
  });

  it('reports the byte offset of invalid UTF-8 and of a JSON syntax error', async () => {
    const utf8 = (await loadOrError(join(DIR, 'json-invalid-utf8.json'))) as KfetchError;
    const raw = await readFile(join(DIR, 'json-invalid-utf8.json'));
    expect(utf8.detail?.offset).toBe(raw.indexOf(0xff));
    const trunc = (await loadOrError(join(DIR, 'json-truncated.json'))) as KfetchError;
    expect(trunc.detail?.offset).toBe(120);
  });

  it('normalises uppercase hashes to lowercase', async () => {
    const upper = (await loadKascade(join(DIR, 'ok-uppercase-hashes.json'))) as Kascade;
    const base = await loadKascade(join(DIR, 'ok-base.json'));
    expect(upper.filehash).toBe(base.filehash);
    expect(upper.filehash).toMatch(/^[0-9a-f]{64}$/);
    expect(upper.blockhashes.get(1024)).toEqual(base.blockhashes.get(1024));
  });

  it('reads a 2014 file: array blockhashes, blocksize, trackhash as swarm id', async () => {
    const k = await loadKascade(join(DIR, 'ok-2014-1k.kascade'));
    expect(k.dialect).toBe(2014);
    expect(k.blockSizes).toEqual([1024]);
    expect(k.geometry(1024).count).toBe(3);
    expect(k.swarmId).not.toBe(k.filehash);
    expect(k.swarmId).toMatch(/^[0-9a-f]{32}$/);
    expect(Object.keys(k.extra)).toEqual([]);
  });

  it('keeps unknown keys and extensions, and offers two block sizes', async () => {
    const k = await loadKascade(join(DIR, 'ok-extensions.json'));
    expect(k.peers).toEqual(['127.0.0.1:8001', '[::1]:8002', 'seed.example:80']);
    expect(k.extra['created by']).toBe('kfetch 0.1.0');
    expect(k.extra.comment).toBe('unknown keys are kept');
    expect(Object.getPrototypeOf(k.extra)).toBeNull();
    const two = await loadKascade(join(DIR, 'ok-two-sizes.json'));
    expect(two.blockSizes).toEqual([1024, 2048]);
    expect(two.geometry(2048).lastSize).toBe(2500 - 2048);
  });

  it('a __proto__ key pollutes nothing and is kept as plain data', async () => {
    const before = Object.getOwnPropertyNames(Object.prototype).sort();
    const k = await loadKascade(join(DIR, 'ok-proto-keys.json'));
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(before);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.hasOwn(k.extra, '__proto__')).toBe(true);
    expect(Object.hasOwn(k.extra, 'constructor')).toBe(true);
    expect(Object.getPrototypeOf(k.extra)).toBeNull();
    expect((k.extra as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('loadKascade refusals', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'kfetch-kascade-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('a missing file is KF_E_INPUT naming the path', async () => {
    const path = join(tmp, 'nope.kascade');
    const err = (await loadOrError(path)) as KfetchError;
    expect(err).toBeInstanceOf(KfetchError);
    expect(err.code).toBe('KF_E_INPUT');
    expect(err.file).toBe(path);
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/no such file/);
  });

  it('a directory is KF_E_INPUT naming the path', async () => {
    const path = join(tmp, 'dir.kascade');
    await mkdir(path);
    const err = (await loadOrError(path)) as KfetchError;
    expect(err.code).toBe('KF_E_INPUT');
    expect(err.file).toBe(path);
    expect(err.message).toMatch(/directory/);
  });

  it('a 100 MB sparse file is refused with KF_E_KASCADE_TOO_LARGE before it is read', async () => {
    const path = join(tmp, 'huge.kascade');
    await writeFile(path, '{"filename": "x"');
    await truncate(path, 100 * 1000 * 1000);
    const rssBefore = process.memoryUsage().rss;
    const err = (await loadOrError(path)) as KfetchError;
    const rssAfter = process.memoryUsage().rss;
    expect(err.code).toBe('KF_E_KASCADE_TOO_LARGE');
    expect(err.file).toBe(path);
    expect(rssAfter - rssBefore).toBeLessThan(20 * 1024 * 1024);
  });

  it('maxBytes overrides the cap: one byte over is refused, exactly at the cap loads', async () => {
    const src = await readFile(join(DIR, 'ok-base.json'));
    const path = join(tmp, 'base.json');
    await writeFile(path, src);
    const over = (await loadOrError(path, { maxBytes: src.length - 1 })) as KfetchError;
    expect(over.code).toBe('KF_E_KASCADE_TOO_LARGE');
    expect(over.file).toBe(path);
    const at = await loadOrError(path, { maxBytes: src.length });
    expect(at).not.toBeInstanceOf(KfetchError);
  });

  it('an aborted signal stops the load', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(loadKascade(join(DIR, 'ok-base.json'), { signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });
});
