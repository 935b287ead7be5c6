// Generates test/fixtures/kascade/: one tiny valid .kascade and one changed copy per row of RELIABILITY.md's
// "Malformed .kascade" table, plus expected.json (file -> expected code and field). Run after a build:
//   node dist/scripts/make-bad-corpus.js [out-dir]
// The corpus test also regenerates it in memory and checks the committed files have not drifted.

import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** What loading a corpus file must give: "ok", or an error code and (for most) the JSON path it names. */
export interface Expectation {
  code: string;
  field?: string;
}

export interface CorpusRow {
  file: string;
  bytes: Uint8Array;
  expect: Expectation;
}

type Obj = Record<string, unknown>;

const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** The base payload: 2500 bytes, so 1 KiB blocks give 3 blocks (the last one short). */
function payload(): Uint8Array {
  const b = new Uint8Array(2500);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7 + 3) % 251;
  return b;
}

function hashesFor(data: Uint8Array, blockSize: number): string[] {
  const out: string[] = [];
  for (let off = 0; off < data.length; off += blockSize) out.push(md5(data.subarray(off, off + blockSize)));
  return out;
}

function baseObject(): Obj {
  const data = payload();
  const filehash = sha256(data);
  return {
    filename: 'base.bin',
    filesize: data.length,
    filehash,
    tracker: `http://127.0.0.1:8000/peers/${filehash}.json`,
    blockhashes: { '1024': hashesFor(data, 1024) },
  };
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const json = (o: unknown): Uint8Array => enc(`${JSON.stringify(o, null, 2)}\n`);

/** A copy of the base with one top-level change (undefined deletes the key). */
function withField(key: string, value: unknown): Uint8Array {
  const o = baseObject();
  if (value === undefined) delete o[key];
  else o[key] = value;
  return json(o);
}

function withBlocks(blocks: unknown): Uint8Array {
  return withField('blockhashes', blocks);
}

function baseHashes(): string[] {
  return hashesFor(payload(), 1024);
}

function replaceHash(i: number, h: unknown): Uint8Array {
  const list: unknown[] = baseHashes();
  list[i] = h;
  return withBlocks({ '1024': list });
}

/** Base JSON text with `from` replaced by `to` once (for inputs JSON.stringify cannot produce). */
function textEdit(from: string, to: string): Uint8Array {
  const t = JSON.stringify(baseObject(), null, 2);
  if (!t.includes(from)) throw new Error(`corpus: ${from} not in base`);
  return enc(t.replace(from, to));
}

function v2014(change: (o: Obj) => void = () => {}): Uint8Array {
  const o = baseObject();
  o.blockhashes = baseHashes();
  o.blocksize = 1024;
  o.trackhash = md5(enc('a 2014 swarm'));
  change(o);
  return json(o);
}

/** Every corpus row: file name, bytes, expected result. */
export function corpusRows(): CorpusRow[] {
  const data = payload();
  const rows: CorpusRow[] = [];
  const ok = (file: string, bytes: Uint8Array): void => void rows.push({ file, bytes, expect: { code: 'ok' } });
  const bad = (file: string, bytes: Uint8Array, code: string, field?: string): void =>
    void rows.push({ file, bytes, expect: field === undefined ? { code } : { code, field } });

  // Valid files.
  ok('ok-base.json', json(baseObject()));
  ok('ok-2014-1k.kascade', v2014());
  ok('ok-two-sizes.json', withBlocks({ '1024': baseHashes(), '2048': hashesFor(data, 2048) }));
  ok('ok-uppercase-hashes.json', enc(JSON.stringify(baseObject(), null, 2).replace(/"([0-9a-f]{32}|[0-9a-f]{64})"/g, (m) => m.toUpperCase())));
  ok('ok-extensions.json', enc(JSON.stringify({ ...baseObject(), peers: ['127.0.0.1:8001', '[::1]:8002', 'seed.example:80'], 'created by': 'kfetch 0.1.0', comment: 'unknown keys are kept' }, null, 2)));
  ok('ok-proto-keys.json', textEdit('"filename"', '"__proto__": {"polluted": 1},\n  "constructor": {"prototype": {"polluted": 1}},\n  "filename"'));
  ok('ok-empty-file.json', enc(JSON.stringify({ ...baseObject(), filesize: 0, filehash: sha256(new Uint8Array(0)), blockhashes: { '1024': [] } })));
  ok('ok-unicode-name.json', withField('filename', 'Überraschung – 日本.bin'));

  // Not JSON.
  bad('json-not-json.json', enc('this is not JSON\n'), 'KF_E_KASCADE_JSON');
  bad('json-truncated.json', json(baseObject()).subarray(0, 120), 'KF_E_KASCADE_JSON');
  bad('json-empty.json', new Uint8Array(0), 'KF_E_KASCADE_JSON');
  bad('json-blank.json', enc('  \n\t\n'), 'KF_E_KASCADE_JSON');
  bad('json-bom.json', new Uint8Array([0xef, 0xbb, 0xbf, ...json(baseObject())]), 'KF_E_KASCADE_JSON');
  const utf8 = textEdit('base.bin', 'base\u00ff.bin');
  const at = utf8.indexOf(0xc3);
  utf8[at] = 0xff; // a lone 0xff byte in the file name
  bad('json-invalid-utf8.json', utf8, 'KF_E_KASCADE_JSON');
  bad('json-overlong-utf8.json', new Uint8Array([...enc('{"filename": "a'), 0xc0, 0xaf, ...enc('"}')]), 'KF_E_KASCADE_JSON');
  bad('json-trailing-garbage.json', enc(`${JSON.stringify(baseObject())} x`), 'KF_E_KASCADE_JSON');
  bad('json-trailing-comma.json', textEdit('"filename": "base.bin"', '"filename": "base.bin",'), 'KF_E_KASCADE_JSON');

  // Schema.
  bad('schema-top-array.json', enc('[]'), 'KF_E_KASCADE_SCHEMA', '');
  bad('schema-top-string.json', enc('"base.bin"'), 'KF_E_KASCADE_SCHEMA', '');
  bad('schema-top-null.json', enc('null'), 'KF_E_KASCADE_SCHEMA', '');
  for (const key of ['filename', 'filesize', 'filehash', 'tracker', 'blockhashes']) {
    bad(`schema-missing-${key}.json`, withField(key, undefined), 'KF_E_KASCADE_SCHEMA', key);
  }
  bad('schema-filename-number.json', withField('filename', 42), 'KF_E_KASCADE_SCHEMA', 'filename');
  bad('schema-filesize-string.json', withField('filesize', '2500'), 'KF_E_KASCADE_SCHEMA', 'filesize');
  bad('schema-filesize-null.json', withField('filesize', null), 'KF_E_KASCADE_SCHEMA', 'filesize');
  bad('schema-filehash-number.json', withField('filehash', 12345), 'KF_E_KASCADE_SCHEMA', 'filehash');
  bad('schema-tracker-array.json', withField('tracker', ['http://127.0.0.1:8000/']), 'KF_E_KASCADE_SCHEMA', 'tracker');
  bad('schema-blockhashes-string.json', withBlocks('1024'), 'KF_E_KASCADE_SCHEMA', 'blockhashes');
  bad('schema-blockhashes-value-object.json', withBlocks({ '1024': { 0: 'x' } }), 'KF_E_KASCADE_SCHEMA', 'blockhashes.1024');
  bad('schema-blockhash-number.json', replaceHash(1, 5), 'KF_E_KASCADE_SCHEMA', 'blockhashes.1024[1]');
  bad('schema-duplicate-blockhashes.json', textEdit('"blockhashes"', '"blockhashes": {"2048": []},\n  "blockhashes"'), 'KF_E_KASCADE_SCHEMA', 'blockhashes');
  bad('schema-duplicate-filesize.json', textEdit('"filesize": 2500', '"filesize": 1, "filesize": 2500'), 'KF_E_KASCADE_SCHEMA', 'filesize');
  bad('schema-duplicate-escaped-key.json', textEdit('"tracker"', '"fil\\u0065hash": "00",\n  "tracker"'), 'KF_E_KASCADE_SCHEMA', 'filehash');
  bad('schema-duplicate-block-size.json', textEdit('"1024": [', '"1024": [], "1024": ['), 'KF_E_KASCADE_SCHEMA', 'blockhashes.1024');
  bad('schema-2015-with-blocksize.json', withField('blocksize', 1024), 'KF_E_KASCADE_SCHEMA', 'blocksize');
  bad('schema-peers-string.json', withField('peers', '127.0.0.1:8001'), 'KF_E_KASCADE_SCHEMA', 'peers');
  bad('schema-peers-number.json', withField('peers', ['127.0.0.1:8001', 8002]), 'KF_E_KASCADE_SCHEMA', 'peers[1]');
  bad('schema-peers-port-zero.json', withField('peers', ['127.0.0.1:8001', '127.0.0.1:8002', '127.0.0.1:0']), 'KF_E_KASCADE_SCHEMA', 'peers[2]');
  bad('schema-peers-port-big.json', withField('peers', ['127.0.0.1:65536']), 'KF_E_KASCADE_SCHEMA', 'peers[0]');
  bad('schema-peers-no-port.json', withField('peers', ['127.0.0.1']), 'KF_E_KASCADE_SCHEMA', 'peers[0]');
  bad('schema-peers-empty-host.json', withField('peers', [':8001']), 'KF_E_KASCADE_SCHEMA', 'peers[0]');
  bad('schema-peers-bare-ipv6.json', withField('peers', ['::1:8001']), 'KF_E_KASCADE_SCHEMA', 'peers[0]');
  bad('schema-created-by-number.json', withField('created by', 1), 'KF_E_KASCADE_SCHEMA', 'created by');
  bad('schema-2014-blocksize-string.json', v2014((o) => void (o.blocksize = '1024')), 'KF_E_KASCADE_SCHEMA', 'blocksize');

  // Sizes.
  bad('size-negative.json', withField('filesize', -1), 'KF_E_KASCADE_SIZE', 'filesize');
  bad('size-fractional.json', withField('filesize', 2500.5), 'KF_E_KASCADE_SIZE', 'filesize');
  bad('size-1e309.json', textEdit('"filesize": 2500', '"filesize": 1e309'), 'KF_E_KASCADE_SIZE', 'filesize');
  bad('size-2pow53.json', textEdit('"filesize": 2500', '"filesize": 9007199254740992'), 'KF_E_KASCADE_SIZE', 'filesize');
  bad('size-2pow64.json', textEdit('"filesize": 2500', '"filesize": 18446744073709551616'), 'KF_E_KASCADE_SIZE', 'filesize');

  // Blocks.
  bad('blocks-size-zero.json', withBlocks({ '0': [] }), 'KF_E_KASCADE_BLOCKS', 'blockhashes.0');
  bad('blocks-size-negative.json', withBlocks({ '-1024': baseHashes() }), 'KF_E_KASCADE_BLOCKS', 'blockhashes.-1024');
  bad('blocks-size-fractional.json', withBlocks({ '1024.5': baseHashes() }), 'KF_E_KASCADE_BLOCKS', 'blockhashes.1024.5');
  bad('blocks-size-hex.json', withBlocks({ '0x400': baseHashes() }), 'KF_E_KASCADE_BLOCKS', 'blockhashes.0x400');
  bad('blocks-size-leading-zero.json', withBlocks({ '01024': baseHashes() }), 'KF_E_KASCADE_BLOCKS', 'blockhashes.01024');
  bad('blocks-size-space.json', withBlocks({ ' 1024': baseHashes() }), 'KF_E_KASCADE_BLOCKS', 'blockhashes. 1024');
  bad('blocks-size-exponent.json', withBlocks({ '1e3': baseHashes() }), 'KF_E_KASCADE_BLOCKS', 'blockhashes.1e3');
  bad('blocks-size-tiny.json', withBlocks({ '1': [] }), 'KF_E_KASCADE_BLOCKS', 'blockhashes.1');
  bad('blocks-size-huge.json', withBlocks({ '4294967296': [md5(data)] }), 'KF_E_KASCADE_BLOCKS', 'blockhashes.4294967296');
  bad('blocks-too-few.json', withBlocks({ '1024': baseHashes().slice(0, 2) }), 'KF_E_KASCADE_BLOCKS', 'blockhashes.1024');
  bad('blocks-too-many.json', withBlocks({ '1024': [...baseHashes(), md5(enc('x'))] }), 'KF_E_KASCADE_BLOCKS', 'blockhashes.1024');
  bad('blocks-second-size-wrong.json', withBlocks({ '1024': baseHashes(), '2048': baseHashes() }), 'KF_E_KASCADE_BLOCKS', 'blockhashes.2048');
  bad('blocks-none.json', withBlocks({}), 'KF_E_KASCADE_BLOCKS', 'blockhashes');
  bad('blocks-empty-file-with-hashes.json', enc(JSON.stringify({ ...baseObject(), filesize: 0 })), 'KF_E_KASCADE_BLOCKS', 'blockhashes.1024');
  bad('blocks-count-over-limit.json', enc(JSON.stringify({ ...baseObject(), filesize: 2 ** 40, blockhashes: { '1024': [] } })), 'KF_E_KASCADE_BLOCKS', 'blockhashes.1024');
  bad('blocks-2014-no-blocksize.kascade', v2014((o) => void delete o.blocksize), 'KF_E_KASCADE_BLOCKS', 'blocksize');
  bad('blocks-2014-blocksize-zero.kascade', v2014((o) => void (o.blocksize = 0)), 'KF_E_KASCADE_BLOCKS', 'blocksize');
  bad('blocks-2014-blocksize-fraction.kascade', v2014((o) => void (o.blocksize = 1024.5)), 'KF_E_KASCADE_BLOCKS', 'blocksize');
  bad('blocks-2014-too-few.kascade', v2014((o) => void (o.blockhashes = baseHashes().slice(1))), 'KF_E_KASCADE_BLOCKS', 'blockhashes');

  // Hashes.
  bad('hash-filehash-short.json', withField('filehash', sha256(data).slice(0, 63)), 'KF_E_KASCADE_HASH', 'filehash');
  bad('hash-filehash-not-hex.json', withField('filehash', `g${sha256(data).slice(1)}`), 'KF_E_KASCADE_HASH', 'filehash');
  bad('hash-filehash-0x.json', withField('filehash', `0x${sha256(data)}`), 'KF_E_KASCADE_HASH', 'filehash');
  bad('hash-block-short.json', replaceHash(2, baseHashes()[2]!.slice(1)), 'KF_E_KASCADE_HASH', 'blockhashes.1024[2]');
  bad('hash-block-not-hex.json', replaceHash(1, `${baseHashes()[1]!.slice(0, 31)}z`), 'KF_E_KASCADE_HASH', 'blockhashes.1024[1]');
  bad('hash-block-0x.json', replaceHash(0, `0x${baseHashes()[0]!.slice(2)}`), 'KF_E_KASCADE_HASH', 'blockhashes.1024[0]');
  bad('hash-block-sha256.json', replaceHash(0, sha256(data)), 'KF_E_KASCADE_HASH', 'blockhashes.1024[0]');
  bad('hash-2014-block.kascade', v2014((o) => void ((o.blockhashes as string[])[2] = 'not a hash')), 'KF_E_KASCADE_HASH', 'blockhashes[2]');
  bad('hash-trackhash.kascade', v2014((o) => void (o.trackhash = 'xyz')), 'KF_E_KASCADE_HASH', 'trackhash');

  // Names.
  const names: Array<[string, string]> = [
    ['slash', 'dir/base.bin'],
    ['backslash', 'dir\\base.bin'],
    ['dotdot', '..'],
    ['dot', '.'],
    ['empty', ''],
    ['nul', 'base\u0000.bin'],
    ['control', 'base\u0007.bin'],
    ['del', 'base\u007f.bin'],
    ['absolute', '/etc/passwd'],
    ['windows-absolute', 'C:\\x'],
    ['drive-relative', 'C:x'],
    ['traversal', '../../.bashrc'],
    ['too-long', 'é'.repeat(128)],
    ['trailing-dot', 'base.'],
    ['trailing-space', 'base.bin '],
    ['reserved-con', 'CON'],
    ['reserved-nul-ext', 'nul.txt'],
    ['reserved-com1', 'com1.bin'],
    ['not-nfc', 'cafe\u0301.bin'],
    ['bidi', 'evil\u202etxt.exe'],
  ];
  for (const [what, name] of names) bad(`name-${what}.json`, withField('filename', name), 'KF_E_KASCADE_NAME', 'filename');

  // Trackers.
  const trackers: Array<[string, string]> = [
    ['file', 'file:///etc/passwd'],
    ['data', 'data:text/plain,hello'],
    ['javascript', 'javascript:alert(1)'],
    ['ftp', 'ftp://127.0.0.1/peers.json'],
    ['unparseable', 'not a url'],
    ['relative', '/peers/x.json'],
    ['credentials', 'http://user:secret@127.0.0.1:8000/peers/x.json'],
    ['link-local', 'http://169.254.169.254/latest/meta-data/'],
  ];
  for (const [what, url] of trackers) bad(`tracker-${what}.json`, withField('tracker', url), 'KF_E_KASCADE_TRACKER', 'tracker');

  return rows;
}

/** Write the corpus and expected.json into `dir`, removing stale corpus files first. */
export function writeCorpus(dir: string): number {
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(dir)) if (/\.(json|kascade)$/.test(f)) rmSync(join(dir, f));
  const expected: Record<string, Expectation> = {};
  for (const row of corpusRows()) {
    writeFileSync(join(dir, row.file), row.bytes);
    expected[row.file] = row.expect;
  }
  writeFileSync(join(dir, 'expected.json'), `${JSON.stringify(expected, null, 2)}\n`);
  return Object.keys(expected).length;
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  // dist/scripts/make-bad-corpus.js -> <repo>/test/fixtures/kascade
  const dir = process.argv[2] ?? fileURLToPath(new URL('../../test/fixtures/kascade/', import.meta.url));
  const n = writeCorpus(dir);
  process.stdout.write(`wrote ${n} corpus files and expected.json to ${dir}\n`);
}
