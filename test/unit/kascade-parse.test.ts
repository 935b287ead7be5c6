// parseKascade details the corpus does not cover: options overriding LIMITS, string input, the swarm id rules,
// nested duplicate-key paths, the address policy on trackers and peers, and the filename rule on its own.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KfetchError } from '../../src/errors.js';
import { findDuplicateKey } from '../../src/kascade/duplicate-keys.js';
import { filenameProblem } from '../../src/kascade/filename.js';
import { parseKascade, type ParseKascadeOptions } from '../../src/kascade/parse.js';
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
