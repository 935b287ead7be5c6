// Table tests of the pure announce-request parser (SPEC §2): every bad row gives 400 and names its field.
import { describe, expect, it } from 'vitest';
import { KfetchError } from '../../src/errors.js';
import { parseAnnounce } from '../../src/tracker/parse-announce.js';

const ok = { port: '8000', progress: '0.5' };
const H = 'a'.repeat(64);

function fields(o: Record<string, string>): Array<[string, string]> {
  return Object.entries(o);
}

const BAD: Array<[string, Record<string, string> | Array<[string, string]>, string]> = [
  ['missing port', { progress: '0.5' }, 'port'],
  ['port 0', { ...ok, port: '0' }, 'port'],
  ['port 65536', { ...ok, port: '65536' }, 'port'],
  ['port negative', { ...ok, port: '-1' }, 'port'],
  ['port with leading zero', { ...ok, port: '080' }, 'port'],
  ['port not decimal', { ...ok, port: '0x50' }, 'port'],
  ['port fractional', { ...ok, port: '80.5' }, 'port'],
  ['port empty', { ...ok, port: '' }, 'port'],
  ['port with space', { ...ok, port: ' 80' }, 'port'],
  ['missing progress', { port: '8000' }, 'progress'],
  ['progress non-numeric', { ...ok, progress: 'half' }, 'progress'],
  ['progress 1.5', { ...ok, progress: '1.5' }, 'progress'],
  ['progress negative', { ...ok, progress: '-0.1' }, 'progress'],
  ['progress exponent', { ...ok, progress: '1e-1' }, 'progress'],
  ['progress NaN', { ...ok, progress: 'NaN' }, 'progress'],
  ['progress Infinity', { ...ok, progress: 'Infinity' }, 'progress'],
  ['progress bare dot', { ...ok, progress: '.5' }, 'progress'],
  ['progress empty', { ...ok, progress: '' }, 'progress'],
  ['ip host name', { ...ok, ip: 'example.com' }, 'ip'],
  ['ip short form', { ...ok, ip: '127.1' }, 'ip'],
  ['ip 0.0.0.0', { ...ok, ip: '0.0.0.0' }, 'ip'],
  ['ip multicast', { ...ok, ip: '224.0.0.1' }, 'ip'],
  ['ip with zone', { ...ok, ip: 'fe80::1%eth0' }, 'ip'],
  ['blocks odd length', { ...ok, blocks: 'abc', blocksize: '4096' }, 'blocks'],
  ['blocks non-hex', { ...ok, blocks: 'zz', blocksize: '4096' }, 'blocks'],
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

  it('accepts 0, 1, 1.0, 0.0 and the port bounds', () => {
    for (const p of ['0', '1', '1.0', '0.0', '0.123456789']) {
      expect(parseAnnounce(fields({ ...ok, progress: p })).progress).toBe(Number(p));
    }
    expect(parseAnnounce(fields({ ...ok, port: '1' })).port).toBe(1);
    expect(parseAnnounce(fields({ ...ok, port: '65535' })).port).toBe(65535);
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

  it('accepts an empty bitfield (empty file)', () => {
    expect(parseAnnounce(fields({ ...ok, blocks: '', blocksize: '4096' })).blocks).toEqual({ hex: '', blockSize: 4096 });
  });
});
