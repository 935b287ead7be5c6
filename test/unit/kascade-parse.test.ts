// parseKascade details the corpus does not cover: options overriding LIMITS, string input, the swarm id rules,
// nested duplicate-key paths, the address policy on trackers and peers, and the filename rule on its own.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KfetchError } from '../../src/errors.js';
import { findDuplicateKey } from '../../src/kascade/duplicate-keys.js';
import { filenameProblem } from '../../src/kascade/filename.js';
import { parseKascade, type ParseKascadeOptions } from '../../src/kascade/parse.js';
import { serializeKascade } from '../../src/kascade/serialize.js';
import { parseTrackerReply } from '../../src/tracker/parse-reply.js';

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
const base = (): Record<string, unknown> => ({
  filename: 'f.bin',
  filesize: 1000,
  filehash: 'ab'.repeat(32),
  tracker: 'http://127.0.0.1:8000/peers/x.json',
  blockhashes: { '512': [md5('a'), md5('b')] },
});

function codeOf(o: unknown, opts?: ParseKascadeOptions): string {
  try {
    parseKascade(typeof o === 'string' ? o : JSON.stringify(o), 'x.json', opts);
    return 'ok';
  } catch (err) {
    if (!(err instanceof KfetchError)) throw err;
    return `${err.code} ${err.field ?? ''}`.trim();
  }
}

describe('parseKascade', () => {
  it('accepts string input and refuses a BOM or blank string', () => {
    expect(codeOf(base())).toBe('ok');
    expect(codeOf(`\ufeff${JSON.stringify(base())}`)).toBe('KF_E_KASCADE_JSON');
    expect(codeOf('   ')).toBe('KF_E_KASCADE_JSON');
  });

  it('gives the byte (not character) offset of a syntax error after multi-byte text', () => {
    const text = '{"filename": "日本", x}';
    try {
      parseKascade(new TextEncoder().encode(text));
      expect.unreachable();
    } catch (err) {
      expect((err as KfetchError).detail?.offset).toBe(Buffer.byteLength('{"filename": "日本", '));
    }
  });

  it('lets options override the block limits', () => {
    expect(codeOf(base(), { minBlockSize: 1024 })).toBe('KF_E_KASCADE_BLOCKS blockhashes.512');
    expect(codeOf(base(), { maxBlocksPerSize: 1 })).toBe('KF_E_KASCADE_BLOCKS blockhashes.512');
    expect(codeOf({ ...base(), filename: 'abcdef' }, { maxFilenameBytes: 5 })).toBe('KF_E_KASCADE_NAME filename');
    expect(codeOf({ ...base(), peers: ['a:1', 'b:2'] }, { maxPeers: 1 })).toBe('KF_E_KASCADE_SCHEMA peers');
  });

  it('normalises filesize -0 to 0', () => {
    const k = parseKascade(JSON.stringify({ ...base(), filesize: 0, blockhashes: { '512': [] } }).replace('"filesize":0', '"filesize":-0'));
    expect(Object.is(k.filesize, 0)).toBe(true);
  });

  it('takes trackhash or kascadehash as the swarm id, and refuses two that differ', () => {
    expect(parseKascade(JSON.stringify(base())).swarmId).toBe('ab'.repeat(32));
    expect(parseKascade(JSON.stringify({ ...base(), kascadehash: 'CD'.repeat(20) })).swarmId).toBe('cd'.repeat(20));
    expect(parseKascade(JSON.stringify({ ...base(), trackhash: 'ef'.repeat(16), kascadehash: 'EF'.repeat(16) })).swarmId).toBe('ef'.repeat(16));
    expect(codeOf({ ...base(), trackhash: 'ef'.repeat(16), kascadehash: 'cd'.repeat(16) })).toBe('KF_E_KASCADE_SCHEMA kascadehash');
    expect(codeOf({ ...base(), trackhash: 'e'.repeat(33) })).toBe('KF_E_KASCADE_HASH trackhash');
  });

  it('refuses link-local trackers in every spelling', () => {
    for (const t of ['http://169.254.169.254/', 'http://2852039166/', 'http://[fe80::1]:80/', 'http://[::ffff:169.254.169.254]/', 'http://0.0.0.0:8000/']) {
      expect(codeOf({ ...base(), tracker: t }), t).toBe('KF_E_KASCADE_TRACKER tracker');
    }
    expect(codeOf({ ...base(), tracker: 'https://10.0.0.1:443/peers/x.json' })).toBe('ok');
  });

  // Issue 10 point 15: a kascade's peers were only shape-checked, so these were dialled.
  it('refuses a peers entry the address policy refuses, naming peers[i] and the reason', () => {
    for (const [peer, reason] of [
      ['169.254.169.254:80', /link-local/],
      ['0.0.0.0:1', /unspecified/],
      ['[fe80::1]:80', /link-local/],
      ['[::ffff:169.254.169.254]:80', /link-local/],
      ['239.1.2.3:80', /multicast/],
    ] as const) {
      try {
        parseKascade(JSON.stringify({ ...base(), peers: ['127.0.0.1:8001', peer] }), 'x.json');
        expect.unreachable(peer);
      } catch (err) {
        expect(err, peer).toBeInstanceOf(KfetchError);
        const e = err as KfetchError;
        expect([e.code, e.field, e.file], peer).toEqual(['KF_E_KASCADE_PEER', 'peers[1]', 'x.json']);
        expect(e.message, peer).toMatch(/^peers\[1\] /);
        expect(e.message, peer).toMatch(reason);
      }
    }
    expect(codeOf({ ...base(), peers: ['127.0.0.1:8001', '[::1]:2', '10.0.0.1:80', 'seed.example:80'] })).toBe('ok');
    // A numeric name is IPv4 to getaddrinfo, past the literal check: refused as a malformed host.
    expect(codeOf({ ...base(), peers: ['2852039166:80'] })).toBe('KF_E_KASCADE_SCHEMA peers[0]');
  });

  it('gives a tracker URL, a peers entry and a tracker reply entry the same verdict for the same address', () => {
    const hosts = ['169.254.169.254', '[fe80::1]', '0.0.0.0', '[::]', '224.0.0.1', '[ff02::1]', '255.255.255.255', '240.0.0.1', '[64:ff9b::a9fe:a9fe]',
      '[::ffff:169.254.169.254]', '127.0.0.1', '[::1]', '10.0.0.1', '192.168.0.2', '[fd00::1]', '8.8.8.8', '[2001:db8::1]', 'seed.example'];
    for (const host of hosts) {
      const asTracker = codeOf({ ...base(), tracker: `http://${host}:80/peers/x.json` }) === 'ok';
      const asPeer = codeOf({ ...base(), peers: [`${host}:80`] }) === 'ok';
      expect(asPeer, host).toBe(asTracker);
      // A loopback tracker's reply names IP literals only (never a name), with the same rule.
      if (host === 'seed.example') continue;
      const ip = host.replace(/^\[(.*)\]$/, '$1');
      const inReply = parseTrackerReply(JSON.stringify([{ ip, port: 80 }]), { allowLoopback: true }).peers.length === 1;
      expect(inReply, host).toBe(asTracker);
    }
  });

  it('never echoes a tracker password in the message', () => {
    try {
      parseKascade(JSON.stringify({ ...base(), tracker: 'http://u:hunter2@127.0.0.1/' }));
      expect.unreachable();
    } catch (err) {
      expect((err as KfetchError).message).not.toContain('hunter2');
    }
  });
});

describe('findDuplicateKey', () => {
  it('names nested paths and compares unescaped keys', () => {
    expect(findDuplicateKey('{"a": [1, {"b": 1}, {"c": 1, "c": 2}]}')).toBe('a[2].c');
    expect(findDuplicateKey('{"a": {"x": "}\\"{", "y": 1}, "b": {"y": 1}}')).toBeUndefined();
    expect(findDuplicateKey('{"k\\n": 1, "k\\u000a": 2}')).toBe('k\n');
    expect(findDuplicateKey('[{"a": 1}, {"a": 1}]')).toBeUndefined();
  });
});

describe('filenameProblem', () => {
  it('accepts ordinary names and refuses with the character and position', () => {
    for (const ok of ['a', 'movie.mkv', '.hidden', '..x', 'Überraschung.txt', 'console.log', 'com10', '-rf']) {
      expect(filenameProblem(ok, 255), ok).toBeUndefined();
    }
    expect(filenameProblem('ab/c', 255)).toMatchObject({ char: '/', position: 2 });
    expect(filenameProblem('日本\u0000', 255)).toMatchObject({ char: '\u0000', position: 2 });
    expect(filenameProblem('LPT9.txt', 255)?.reason).toMatch(/reserved/);
    expect(filenameProblem('Ω\ud800', 255)?.reason).toMatch(/surrogate/);
  });

  // Issue 10 point 17: invisible and direction-changing characters were accepted though bidi overrides were refused.
  it.each([
    ['U+200B', /invisible/],
    ['U+200C', /invisible/],
    ['U+200D', /invisible/],
    ['U+2060', /invisible/],
    ['U+FEFF', /invisible/],
    ['U+00AD', /invisible/],
    ['U+180E', /invisible/],
    ['U+115F', /invisible/],
    ['U+3164', /invisible/],
    ['U+FE0F', /invisible/],
    ['U+E0041', /invisible/],
    ['U+200E', /bidirectional mark/],
    ['U+200F', /bidirectional mark/],
    ['U+061C', /bidirectional mark/],
    ['U+2028', /line or paragraph separator/],
    ['U+2029', /line or paragraph separator/],
  ])('refuses %s in a name, naming the code point and its position', (label, what) => {
    const ch = String.fromCodePoint(parseInt(label.slice(2), 16));
    expect(filenameProblem(`ab${ch}c.txt`, 255)).toEqual({ reason: expect.stringMatching(what) as unknown, char: ch, position: 2 });
    expect(filenameProblem(`ab${ch}c.txt`, 255)?.reason).toContain(`(${label}) at position 2`);
    try {
      parseKascade(JSON.stringify({ ...base(), filename: `ab${ch}c.txt` }), 'x.json');
      expect.unreachable();
    } catch (err) {
      const e = err as KfetchError;
      expect([e.code, e.field]).toEqual(['KF_E_KASCADE_NAME', 'filename']);
      expect(e.message).toContain(label);
      expect(e.message).not.toContain(ch); // escaped in the quoted name, so the message shows where it is
    }
  });

  it('still accepts ordinary non-ASCII names', () => {
    for (const ok of ['Ελληνικά.txt', 'عربي.txt', 'עברית.pdf', '中文.zip', 'café.mp3', '🎵 song.ogg']) expect(filenameProblem(ok, 255), ok).toBeUndefined();
  });
});

// Edge rows found by the mutation run (npm run mutate): exact codes, fields and details at each bound.
describe('parseKascade edges', () => {
  function errOf(o: unknown, opts?: ParseKascadeOptions): KfetchError {
    try {
      parseKascade(typeof o === 'string' ? o : JSON.stringify(o), 'x.json', opts);
    } catch (err) {
      if (err instanceof KfetchError) return err;
      throw err;
    }
    throw new Error('parsed without error');
  }
  const H64 = 'ab'.repeat(32);

  it('says which JSON type it got where a type is wrong', () => {
    expect(errOf({ ...base(), filename: null }).message).toMatch(/null/);
    expect(errOf({ ...base(), filename: [] }).message).toMatch(/array/);
    expect(errOf({ ...base(), filename: {} }).message).toMatch(/object/);
    expect(errOf({ ...base(), filename: {} }).message).not.toContain('[object');
    expect(errOf({ ...base(), filename: 7 }).message).toMatch(/number 7/);
    expect(errOf({ ...base(), filename: true }).message).toMatch(/boolean true/);
    expect(errOf({ ...base(), filename: undefined }).message).toMatch(/missing/);
    expect(errOf({ ...base(), filesize: '1000' }).message).toContain('"1000"');
    expect(errOf({ ...base(), filesize: [] }).message).not.toMatch(/object/);
    expect(errOf({ ...base(), filesize: null }).message).not.toMatch(/object|missing/);
    expect(errOf({ ...base(), filesize: '' }).message).not.toMatch(/object|missing/);
    expect(errOf([1]).message).toMatch(/array/);
  });

  it('refuses a missing blockhashes as missing and a scalar one as the wrong type, both SCHEMA blockhashes', () => {
    const missing = errOf({ ...base(), blockhashes: undefined });
    expect([missing.code, missing.field]).toEqual(['KF_E_KASCADE_SCHEMA', 'blockhashes']);
    expect(missing.message).toMatch(/missing/);
    const scalar = errOf({ ...base(), blockhashes: 5 });
    expect([scalar.code, scalar.field]).toEqual(['KF_E_KASCADE_SCHEMA', 'blockhashes']);
    expect(scalar.message).toMatch(/number 5/);
    expect(scalar.message).not.toMatch(/missing/);
  });

  it('shows names in messages with invisible and control characters escaped, and long ones shortened', () => {
    expect(errOf({ ...base(), filename: 'ab\u200bc.txt' }).message).toContain('"ab\\u200bc.txt"');
    expect(errOf({ ...base(), filename: 'ab\u0001c.txt' }).message).toContain('"ab\\u0001c.txt"');
    expect(errOf({ ...base(), filename: 'ab\u00adc.txt' }).message).toContain('"ab\\u00adc.txt"');
    expect(errOf({ ...base(), filename: 'ab\u{e0041}c.txt' }).message).toContain('"ab\\u{e0041}c.txt"');
    // 300 characters are shown whole; past that the name is cut there.
    const at300 = errOf({ ...base(), filename: 'a'.repeat(300) });
    expect(at300.code).toBe('KF_E_KASCADE_NAME');
    expect(at300.message).toContain(`"${'a'.repeat(300)}"`);
    expect(at300.message).not.toContain('…');
    const long = errOf({ ...base(), filename: 'b'.repeat(5000) });
    expect(long.message).toContain(`"${'b'.repeat(300)}…"`);
    expect(long.message).not.toContain('b'.repeat(301));
  });

  it('gives the name problem character and position in detail, and only what is known', () => {
    const slash = errOf({ ...base(), filename: 'ab/c' });
    expect([slash.code, slash.field]).toEqual(['KF_E_KASCADE_NAME', 'filename']);
    expect(slash.detail).toStrictEqual({ char: '/', position: 2 });
    const dotdot = errOf({ ...base(), filename: '..' });
    expect(dotdot.code).toBe('KF_E_KASCADE_NAME');
    expect(Object.keys(dotdot.detail ?? {})).toEqual([]);
  });

  it('quotes the tracker URL as given, with only a password redacted', () => {
    const plain = errOf({ ...base(), tracker: 'http://169.254.169.254/peers/x.json' });
    expect([plain.code, plain.field]).toEqual(['KF_E_KASCADE_TRACKER', 'tracker']);
    expect(plain.message).toContain('"http://169.254.169.254/peers/x.json"');
    const pw = errOf({ ...base(), tracker: 'http://u:hunter2@169.254.169.254/' });
    expect(pw.message).toContain('"http://u:***@169.254.169.254/"');
    const notUrl = errOf({ ...base(), tracker: 'not a url' });
    expect([notUrl.code, notUrl.field]).toEqual(['KF_E_KASCADE_TRACKER', 'tracker']);
    expect(notUrl.message).toContain('"not a url"');
  });

  it('gives the byte offset of a JSON error when V8 names one, and no offset when it does not', () => {
    const after = errOf('{"a":1}x');
    expect(after.code).toBe('KF_E_KASCADE_JSON');
    expect(after.detail).toStrictEqual({ offset: 7 });
    expect(after.message).toContain('byte 7');
    const token = errOf('{"a": x}');
    expect(token.code).toBe('KF_E_KASCADE_JSON');
    expect(token.detail).toBeUndefined();
    expect(token.message).not.toMatch(/byte/);
  });

  it.each([
    [-5, /negative/],
    [1.5, /whole/],
    [2 ** 53, /2\^53/],
  ])('refuses filesize %d with KF_E_KASCADE_SIZE and why', (size, why) => {
    const e = errOf({ ...base(), filesize: size });
    expect([e.code, e.field]).toEqual(['KF_E_KASCADE_SIZE', 'filesize']);
    expect(e.message).toMatch(why);
  });

  it('refuses a filesize too large for a double (1e400) as too large, not as negative or fractional', () => {
    const e = errOf(JSON.stringify(base()).replace('"filesize":1000', '"filesize":1e400'));
    expect([e.code, e.field]).toEqual(['KF_E_KASCADE_SIZE', 'filesize']);
    expect(e.message).toMatch(/too large/);
    expect(e.message).not.toMatch(/negative|whole|2\^53/);
  });

  it('takes filesize 2^53 - 1 as a size, then refuses it on the block-count limit', () => {
    const e = errOf({ ...base(), filesize: 2 ** 53 - 1 });
    expect([e.code, e.field]).toEqual(['KF_E_KASCADE_BLOCKS', 'blockhashes.512']);
  });

  it('names the algorithm and gives length or position details for a bad hash', () => {
    const short = errOf({ ...base(), filehash: 'a'.repeat(63) });
    expect([short.code, short.field]).toEqual(['KF_E_KASCADE_HASH', 'filehash']);
    expect(short.detail).toStrictEqual({ expected: 64, actual: 63 });
    expect(short.message).toContain('SHA-256');
    const nonHex = errOf({ ...base(), filehash: `${'a'.repeat(10)}z${'a'.repeat(53)}` });
    expect([nonHex.code, nonHex.field]).toEqual(['KF_E_KASCADE_HASH', 'filehash']);
    expect(nonHex.detail).toStrictEqual({ position: 10 });
    expect(nonHex.message).toContain('"z"');
    // "0x" only counts as a prefix at the start: inside 64 characters it is a non-hex digit at its position.
    const inner = errOf({ ...base(), filehash: `${'ab'.repeat(31)}0x` });
    expect(inner.detail).toStrictEqual({ position: 63 });
    const prefixed = errOf({ ...base(), filehash: `0x${'ab'.repeat(32)}` });
    expect([prefixed.code, prefixed.field]).toEqual(['KF_E_KASCADE_HASH', 'filehash']);
    expect(prefixed.message).toMatch(/0x/);
    expect(prefixed.detail).toBeUndefined();
    const wrongType = errOf({ ...base(), filehash: 5 });
    expect([wrongType.code, wrongType.field]).toEqual(['KF_E_KASCADE_SCHEMA', 'filehash']);
    const missing = errOf({ ...base(), filehash: undefined });
    expect([missing.code, missing.field]).toEqual(['KF_E_KASCADE_SCHEMA', 'filehash']);
  });

  // Every character just outside 0-9, a-f and A-F (and a few far off) is refused in a block hash, at its index.
  // Padded with digits, lowercase or uppercase hex, so a wrong range check on any of the three shows.
  const badHexRows = ['0', 'a', 'A'].flatMap((pad) => ['/', ':', '@', 'G', '`', 'g', '!', ' ', 'é'].map((c) => [c, pad] as const));
  it.each(badHexRows)('refuses %j (among %j) in an MD5 block hash as KF_E_KASCADE_HASH at blockhashes.512[1]', (c, pad) => {
    const e = errOf({ ...base(), blockhashes: { '512': [md5('a'), `${pad.repeat(5)}${c}${pad.repeat(26)}`] } });
    expect([e.code, e.field]).toEqual(['KF_E_KASCADE_HASH', 'blockhashes.512[1]']);
    expect(e.detail).toStrictEqual({ position: 5 });
  });

  it('names MD5 and the lengths for a block hash of the wrong length', () => {
    const e = errOf({ ...base(), blockhashes: { '512': [md5('a'), md5('b').slice(1)] } });
    expect([e.code, e.field]).toEqual(['KF_E_KASCADE_HASH', 'blockhashes.512[1]']);
    expect(e.detail).toStrictEqual({ expected: 32, actual: 31 });
    expect(e.message).toContain('MD5');
  });

  it('accepts every hex digit in either case in block hashes, lowercased', () => {
    const mixed = '0123456789abcdefABCDEF0123456789';
    const k = parseKascade(JSON.stringify({ ...base(), blockhashes: { '512': [mixed, mixed.toUpperCase()] } }));
    expect(k.blockhashes.get(512)).toEqual([mixed.toLowerCase(), mixed.toLowerCase()]);
  });

  it('refuses a non-string block hash, even one with a length of 32, as SCHEMA at its index', () => {
    const arr = errOf({ ...base(), blockhashes: { '512': [md5('a'), Array.from({ length: 32 }, () => 'a')] } });
    expect([arr.code, arr.field]).toEqual(['KF_E_KASCADE_SCHEMA', 'blockhashes.512[1]']);
    const obj = errOf({ ...base(), blockhashes: { '512': [{ length: 32 }, md5('b')] } });
    expect([obj.code, obj.field]).toEqual(['KF_E_KASCADE_SCHEMA', 'blockhashes.512[0]']);
  });

  it('accepts block sizes and block counts exactly at their limits, and gives the counts in detail past them', () => {
    expect(codeOf({ ...base(), blockhashes: { '1000': [md5('a')] } }, { maxBlockSize: 1000 })).toBe('ok');
    expect(codeOf({ ...base(), blockhashes: { '1001': [md5('a')] } }, { maxBlockSize: 1000 })).toBe('KF_E_KASCADE_BLOCKS blockhashes.1001');
    expect(codeOf({ ...base(), blockhashes: [md5('a')], blocksize: 1000 }, { maxBlockSize: 1000 })).toBe('ok');
    expect(codeOf(base(), { maxBlocksPerSize: 2 })).toBe('ok');
    const over = errOf(base(), { maxBlocksPerSize: 1 });
    expect(over.detail).toStrictEqual({ expected: 2, limit: 1 });
    const wrongCount = errOf({ ...base(), blockhashes: { '512': [md5('a')] } });
    expect([wrongCount.code, wrongCount.field]).toEqual(['KF_E_KASCADE_BLOCKS', 'blockhashes.512']);
    expect(wrongCount.detail).toStrictEqual({ expected: 2, actual: 1 });
  });

  it('refuses a 2014 blocksize of 0 or out of range as BLOCKS blocksize, whatever the minimum', () => {
    const b2014 = { ...base(), blockhashes: [md5('a'), md5('b')] };
    expect(codeOf({ ...b2014, blocksize: 0 }, { minBlockSize: 0 })).toBe('KF_E_KASCADE_BLOCKS blocksize');
    expect(codeOf({ ...b2014, blocksize: -512 }, { minBlockSize: -1024 })).toBe('KF_E_KASCADE_BLOCKS blocksize');
    expect(codeOf({ ...b2014, blocksize: 256 })).toBe('KF_E_KASCADE_BLOCKS blocksize');
    expect(codeOf({ ...b2014, blocksize: 512 })).toBe('ok');
  });

  it('shortens a huge block-size key in the message but names it whole in the field', () => {
    const key = '9'.repeat(400);
    const e = errOf({ ...base(), blockhashes: { [key]: [] } });
    expect([e.code, e.field]).toEqual(['KF_E_KASCADE_BLOCKS', `blockhashes.${key}`]);
    expect(e.message).toContain(`${'9'.repeat(16)}…`);
    expect(e.message).not.toContain('9'.repeat(17));
    const at16 = errOf({ ...base(), blockhashes: { ['1'.repeat(16)]: [] } });
    expect(at16.message).toContain('1'.repeat(16));
    expect(at16.message).not.toContain('…');
    const small = errOf({ ...base(), blockhashes: { '100': [] } });
    expect(small.message).not.toContain('…');
  });

  it('checks trackhash / kascadehash type and length bounds (32..128 hex, even)', () => {
    expect(codeOf({ ...base(), trackhash: 5 })).toBe('KF_E_KASCADE_SCHEMA trackhash');
    expect(errOf({ ...base(), trackhash: 5 }).message).toMatch(/number 5/);
    expect(codeOf({ ...base(), kascadehash: null })).toBe('KF_E_KASCADE_SCHEMA kascadehash');
    expect(codeOf({ ...base(), trackhash: 'ab'.repeat(15) })).toBe('KF_E_KASCADE_HASH trackhash');
    expect(codeOf({ ...base(), trackhash: 'ab'.repeat(65) })).toBe('KF_E_KASCADE_HASH trackhash');
    expect(codeOf({ ...base(), trackhash: 'xy'.repeat(16) })).toBe('KF_E_KASCADE_HASH trackhash');
    expect(parseKascade(JSON.stringify({ ...base(), trackhash: 'AB'.repeat(64) })).swarmId).toBe('ab'.repeat(64));
    expect(parseKascade(JSON.stringify({ ...base(), trackhash: 'cd'.repeat(16) })).swarmId).toBe('cd'.repeat(16));
    const both = errOf({ ...base(), trackhash: 'ef'.repeat(16), kascadehash: 'cd'.repeat(16) });
    expect(both.message).toMatch(/trackhash/);
    expect(both.message).toMatch(/kascadehash/);
    expect(parseKascade(JSON.stringify({ ...base(), filehash: H64.toUpperCase() })).filehash).toBe(H64);
  });

  it('accepts exactly maxPeers entries, and refuses a non-string entry as SCHEMA peers[i]', () => {
    expect(codeOf({ ...base(), peers: ['a:1', 'b:2'] }, { maxPeers: 2 })).toBe('ok');
    const over = errOf({ ...base(), peers: ['a:1', 'b:2', 'c:3'] }, { maxPeers: 2 });
    expect([over.code, over.field]).toEqual(['KF_E_KASCADE_SCHEMA', 'peers']);
    expect(over.message).toMatch(/3\b.*\b2\b/);
    for (const p of [5, null, ['a:1'], { host: 'a', port: 1 }]) {
      expect(codeOf({ ...base(), peers: ['a:1', p] }), JSON.stringify(p)).toBe('KF_E_KASCADE_SCHEMA peers[1]');
    }
  });

  it('keeps unknown keys, enumerable, so they are written back', () => {
    const k = parseKascade(JSON.stringify({ ...base(), 'created by': 'kfetch', comment: 'hi', note: 1 }));
    expect(Object.keys(k.extra).sort()).toEqual(['comment', 'created by', 'note']);
    expect(JSON.parse(serializeKascade(k))).toMatchObject({ comment: 'hi', 'created by': 'kfetch' });
  });
});
