// Table tests of the pure announce-request parser (SPEC §2): every bad row gives 400 and names its field; port
// and progress are read leniently (issue 9: the forms original 2015 peers send).
import { describe, expect, it } from 'vitest';
import { KfetchError } from '../../src/errors.js';
import { LIMITS } from '../../src/limits.js';
import { parseAnnounce } from '../../src/tracker/parse-announce.js';

const ok = { port: '8000', progress: '0.5' };
const H = 'a'.repeat(64);

function fields(o: Record<string, string>): Array<[string, string]> {
  return Object.entries(o);
}

const BAD: Array<[string, Record<string, string> | Array<[string, string]>, string]> = [
  ['missing port', { progress: '0.5' }, 'port'],
  ['port 65536', { ...ok, port: '65536' }, 'port'],
  ['port negative', { ...ok, port: '-1' }, 'port'],
  ['port 65536 with leading zero', { ...ok, port: '065536' }, 'port'],
  ['port with sign', { ...ok, port: '+80' }, 'port'],
  ['port exponent', { ...ok, port: '8e3' }, 'port'],
  ['port over 64 characters', { ...ok, port: `${'0'.repeat(63)}80` }, 'port'],
  ['port only spaces', { ...ok, port: '   ' }, 'port'],
  ['port not decimal', { ...ok, port: '0x50' }, 'port'],
  ['port fractional', { ...ok, port: '80.5' }, 'port'],
  ['port empty', { ...ok, port: '' }, 'port'],
  ['port with inner space', { ...ok, port: '80 80' }, 'port'],
  ['missing progress', { port: '8000' }, 'progress'],
  ['progress non-numeric', { ...ok, progress: 'half' }, 'progress'],
  ['progress 1.5', { ...ok, progress: '1.5' }, 'progress'],
  ['progress negative', { ...ok, progress: '-0.1' }, 'progress'],
  ['progress just past the slack', { ...ok, progress: '1.002' }, 'progress'],
  ['progress a percentage', { ...ok, progress: '50' }, 'progress'],
  ['progress overflowing exponent', { ...ok, progress: '1e400' }, 'progress'],
  ['progress hex', { ...ok, progress: '0x1' }, 'progress'],
  ['progress bare exponent', { ...ok, progress: '1e' }, 'progress'],
  ['progress exponent only', { ...ok, progress: 'e1' }, 'progress'],
  ['progress two dots', { ...ok, progress: '0.5.1' }, 'progress'],
  ['progress comma decimal', { ...ok, progress: '0,5' }, 'progress'],
  ['progress two signs', { ...ok, progress: '+-0.5' }, 'progress'],
  ['progress lone dot', { ...ok, progress: '.' }, 'progress'],
  ['progress lone sign', { ...ok, progress: '+' }, 'progress'],
  ['progress with underscore', { ...ok, progress: '0_5' }, 'progress'],
  ['progress over 64 characters', { ...ok, progress: `0.${'0'.repeat(63)}` }, 'progress'],
  ['progress only spaces', { ...ok, progress: '  ' }, 'progress'],
  ['progress NaN', { ...ok, progress: 'NaN' }, 'progress'],
  ['progress Infinity', { ...ok, progress: 'Infinity' }, 'progress'],
  ['progress empty', { ...ok, progress: '' }, 'progress'],
  ['ip host name', { ...ok, ip: 'example.com' }, 'ip'],
  ['ip short form', { ...ok, ip: '127.1' }, 'ip'],
  ['ip 0.0.0.0', { ...ok, ip: '0.0.0.0' }, 'ip'],
  ['ip multicast', { ...ok, ip: '224.0.0.1' }, 'ip'],
  ['ip with zone', { ...ok, ip: 'fe80::1%eth0' }, 'ip'],
  ['blocks odd length', { ...ok, blocks: 'abc', blocksize: '4096' }, 'blocks'],
  ['blocks non-hex', { ...ok, blocks: 'zz', blocksize: '4096' }, 'blocks'],
  // Issue 10 point 10: no file has more than LIMITS.maxBlocksPerSize blocks at one size, so no bitfield is longer.
  ['blocks over 2^22 blocks', { ...ok, blocks: '00'.repeat(LIMITS.maxBlocksPerSize / 8 + 1), blocksize: '4096' }, 'blocks'],
  ['blocks without blocksize', { ...ok, blocks: 'ff' }, 'blocksize'],
  ['blocksize without blocks', { ...ok, blocksize: '4096' }, 'blocks'],
  ['blocksize zero', { ...ok, blocks: 'ff', blocksize: '0' }, 'blocksize'],
  ['blocksize tiny', { ...ok, blocks: 'ff', blocksize: '1' }, 'blocksize'],
  ['blocksize not decimal', { ...ok, blocks: 'ff', blocksize: '4k' }, 'blocksize'],
  ['event unknown', { ...ok, event: 'paused' }, 'event'],
  ['id short', { ...ok, id: 'abc' }, 'id'],
  ['id 63 hex', { ...ok, id: 'a'.repeat(63) }, 'id'],
  ['id non-hex', { ...ok, id: 'g'.repeat(64) }, 'id'],
  ['port twice', [['port', '1'], ['port', '2'], ['progress', '0']], 'port'],
  // Issue 14: the `wire` extension, canonical decimal 1..65535 only (only kfetch sends it).
  ['wire 0', { ...ok, wire: '0' }, 'wire'],
  ['wire 65536', { ...ok, wire: '65536' }, 'wire'],
  ['wire negative', { ...ok, wire: '-1' }, 'wire'],
  ['wire empty', { ...ok, wire: '' }, 'wire'],
  ['wire leading zero', { ...ok, wire: '07000' }, 'wire'],
  ['wire with sign', { ...ok, wire: '+7000' }, 'wire'],
  ['wire with spaces', { ...ok, wire: ' 7000' }, 'wire'],
  ['wire fractional', { ...ok, wire: '7000.5' }, 'wire'],
  ['wire hex', { ...ok, wire: '0x1b58' }, 'wire'],
  ['wire exponent', { ...ok, wire: '7e3' }, 'wire'],
  ['wire huge', { ...ok, wire: '9'.repeat(400) }, 'wire'],
  ['wire a host:port', { ...ok, wire: '10.0.0.1:7000' }, 'wire'],
  ['wire twice', [['port', '1'], ['progress', '0'], ['wire', '7000'], ['wire', '7001']], 'wire'],
];

describe('parseAnnounce: bad requests', () => {
  it.each(BAD)('%s -> 400 naming the field', (_name, input, field) => {
    let caught: unknown;
    try {
      parseAnnounce(Array.isArray(input) ? input : fields(input));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(KfetchError);
    const e = caught as KfetchError;
    expect(e.code).toBe('KF_E_INPUT');
    expect(e.field).toBe(field);
    expect(e.detail?.status).toBe(400);
  });
});

describe('parseAnnounce: good requests', () => {
  it('takes the minimal SPEC form', () => {
    expect(parseAnnounce(fields(ok))).toEqual({ port: 8000, progress: 0.5 });
  });

  it('issue 14: takes the wire port (1..65535), absent when not given', () => {
    expect(parseAnnounce(fields({ ...ok, wire: '7000' }))).toEqual({ port: 8000, progress: 0.5, wire: 7000 });
    expect(parseAnnounce(fields({ ...ok, wire: '1' })).wire).toBe(1);
    expect(parseAnnounce(fields({ ...ok, wire: '65535' })).wire).toBe(65535);
    expect('wire' in parseAnnounce(fields(ok))).toBe(false);
  });

  it('accepts 0, 1, 1.0, 0.0 and the port bounds', () => {
    for (const p of ['0', '1', '1.0', '0.0', '0.123456789']) {
      expect(parseAnnounce(fields({ ...ok, progress: p })).progress).toBe(Number(p));
    }
    expect(parseAnnounce(fields({ ...ok, port: '1' })).port).toBe(1);
    expect(parseAnnounce(fields({ ...ok, port: '65535' })).port).toBe(65535);
  });

  it.each([
    ['1', 1],
    ['1.', 1],
    ['.5', 0.5],
    ['0.50', 0.5],
    ['1e0', 1],
    ['5E-1', 0.5],
    ['+0.5', 0.5],
    [' 0.5 ', 0.5],
    ['\t1.0\r\n', 1],
    ['00.25', 0.25],
    ['1.0000001', 1],
    ['1.001', 1],
    ['-0', 0],
    ['-0.0005', 0],
    ['1e-400', 0],
    ['0.9999999999999999', 0.9999999999999999],
  ])('reads progress %j as %d (issue 9: lenient, clamped into [0, 1])', (text, want) => {
    const p = parseAnnounce(fields({ ...ok, progress: text })).progress;
    expect(p).toBe(want);
    expect(Object.is(p, -0)).toBe(false);
  });

  it.each([
    ['08000', 8000],
    [' 8000 ', 8000],
    ['00001', 1],
    ['065535', 65535],
    ['\t80\n', 80],
    ['0', 0],
    ['0000', 0],
  ])('reads port %j as %d (issue 9: leading zeros and white space; 0 = accepts no connections)', (text, want) => {
    expect(parseAnnounce(fields({ ...ok, port: text })).port).toBe(want);
  });

  it('normalises ip, blocks and id to canonical lowercase', () => {
    const a = parseAnnounce(
      fields({ ...ok, ip: '::FFFF:10.0.0.1', blocks: 'E040', blocksize: '4096', id: H.toUpperCase(), event: 'stopped' }),
    );
    expect(a).toEqual({ port: 8000, progress: 0.5, ip: '10.0.0.1', blocks: { hex: 'e040', blockSize: 4096 }, peerId: H, event: 'stopped' });
    expect(parseAnnounce(fields({ ...ok, ip: '2001:DB8:0:0:0:0:0:1' })).ip).toBe('2001:db8::1');
  });

  it('treats empty ip and event as absent and ignores unknown fields', () => {
    expect(parseAnnounce(fields({ ...ok, ip: '', event: '', peer_id: 'x', uploaded: '0' }))).toEqual({ port: 8000, progress: 0.5 });
  });

  it('accepts a bitfield of LIMITS.maxBlocksPerSize blocks, the longest a file can have (issue 10)', () => {
    const hex = 'ff'.repeat(LIMITS.maxBlocksPerSize / 8);
    expect(parseAnnounce(fields({ ...ok, blocks: hex, blocksize: '512' })).blocks?.hex.length).toBe(hex.length);
  });

  it('names the length and the bound when refusing an over-long bitfield (issue 10)', () => {
    expect(() => parseAnnounce(fields({ ...ok, blocks: '00'.repeat(LIMITS.maxBlocksPerSize / 8 + 1), blocksize: '4096' }))).toThrow(
      /524289 bytes.*524288/,
    );
  });

  it('accepts an empty bitfield (empty file)', () => {
    expect(parseAnnounce(fields({ ...ok, blocks: '', blocksize: '4096' })).blocks).toEqual({ hex: '', blockSize: 4096 });
  });
});

// Edge rows found by the mutation run (npm run mutate): bounds accepted exactly, and what each refusal tells the caller.
describe('parseAnnounce: edges', () => {
  function errOf(input: Array<[string, string]>, limits?: Parameters<typeof parseAnnounce>[1]): KfetchError {
    try {
      parseAnnounce(input, limits);
    } catch (err) {
      if (err instanceof KfetchError) return err;
      throw err;
    }
    throw new Error('parsed without error');
  }

  // The message goes back to the client in {"error": "..."} (SPEC §2): it must say which field is wrong.
  it.each(BAD)('%s -> the message names the field', (_name, input, field) => {
    const e = errOf(Array.isArray(input) ? input : fields(input));
    expect(e.message).toMatch(/^announce: /);
    expect(e.message.slice('announce: '.length)).toMatch(new RegExp(`\\b${field}\\b`));
  });

  it('ignores an unknown field even when it is given twice', () => {
    expect(parseAnnounce([['port', '80'], ['progress', '1'], ['uploaded', '0'], ['uploaded', '5']])).toEqual({ port: 80, progress: 1 });
  });

  it('accepts port and progress texts of exactly 64 characters', () => {
    expect(parseAnnounce(fields({ ...ok, port: `${'0'.repeat(60)}8000` })).port).toBe(8000);
    expect(parseAnnounce(fields({ ...ok, progress: `0.${'5'.repeat(62)}` })).progress).toBeCloseTo(5 / 9, 10);
    expect(errOf(fields({ ...ok, progress: `0.${'5'.repeat(63)}` })).field).toBe('progress');
  });

  it('clamps a progress exactly at -slack or 1 + slack into [0, 1]', () => {
    const limits = { minBlockSize: 512, maxBlockSize: 4096, maxBlocks: 64, progressSlack: 0.25 };
    expect(parseAnnounce(fields({ ...ok, progress: '-0.25' }), limits).progress).toBe(0);
    expect(parseAnnounce(fields({ ...ok, progress: '1.25' }), limits).progress).toBe(1);
    expect(errOf(fields({ ...ok, progress: '-0.26' }), limits).field).toBe('progress');
    expect(errOf(fields({ ...ok, progress: '1.26' }), limits).field).toBe('progress');
  });

  it('accepts a loopback ip (a tracker and its peers on one host)', () => {
    expect(parseAnnounce(fields({ ...ok, ip: '127.0.0.1' })).ip).toBe('127.0.0.1');
    expect(parseAnnounce(fields({ ...ok, ip: '::1' })).ip).toBe('::1');
  });

  it('reports a missing blocksize before looking at the blocks', () => {
    expect(errOf(fields({ ...ok, blocks: 'zz' })).field).toBe('blocksize');
    expect(errOf(fields({ ...ok, blocks: 'abc' })).field).toBe('blocksize');
  });

  it('accepts blocksize exactly at its bounds and refuses one past them', () => {
    const b = (blocksize: string) => fields({ ...ok, blocks: 'ff', blocksize });
    expect(parseAnnounce(b(String(LIMITS.maxBlockSize))).blocks).toEqual({ hex: 'ff', blockSize: LIMITS.maxBlockSize });
    expect(parseAnnounce(b(String(LIMITS.minBlockSize))).blocks).toEqual({ hex: 'ff', blockSize: LIMITS.minBlockSize });
    expect(errOf(b(String(LIMITS.maxBlockSize + 1))).field).toBe('blocksize');
    expect(errOf(b(String(LIMITS.minBlockSize - 1))).field).toBe('blocksize');
  });
});
