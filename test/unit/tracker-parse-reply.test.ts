// Table tests of the pure tracker-reply parser: shapes accepted, entries dropped, caps and interval clamping.
import { describe, expect, it } from 'vitest';
import { KfetchError } from '../../src/errors.js';
import { LIMITS } from '../../src/limits.js';
import { parseTrackerReply } from '../../src/tracker/parse-reply.js';

const strict = { allowLoopback: false };
const peer = (ip: string, port: unknown = 8000, extra: Record<string, unknown> = {}) => ({ ip, port, progress: 0.5, feeder: false, ...extra });

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof KfetchError ? err.code : `not a KfetchError: ${String(err)}`;
  }
  return undefined;
}

describe('parseTrackerReply: whole-body errors', () => {
  it.each([
    ['empty', '', 'KF_E_TRACKER_RESPONSE'],
    ['html', '<html>hi</html>', 'KF_E_TRACKER_RESPONSE'],
    ['truncated', '[{"ip":"1.2.3.4"', 'KF_E_TRACKER_RESPONSE'],
    ['a string', '"peers"', 'KF_E_TRACKER_RESPONSE'],
    ['null', 'null', 'KF_E_TRACKER_RESPONSE'],
    ['a number', '42', 'KF_E_TRACKER_RESPONSE'],
    ['object without peers', '{"interval": 60}', 'KF_E_TRACKER_RESPONSE'],
    ['failure reason', '{"failure reason": "unregistered torrent"}', 'KF_E_TRACKER_REFUSED'],
    ['error object', '{"error": "nope"}', 'KF_E_TRACKER_REFUSED'],
  ])('%s -> %s', (_n, body, want) => {
    expect(code(() => parseTrackerReply(body, strict))).toBe(want);
  });

  it('refuses invalid UTF-8', () => {
    expect(code(() => parseTrackerReply(new Uint8Array([0x5b, 0xff, 0x5d]), strict))).toBe('KF_E_TRACKER_RESPONSE');
  });
});

describe('parseTrackerReply: entries', () => {
  it('takes the SPEC array shape with extension fields', () => {
    const body = JSON.stringify([
      peer('1.2.3.4', 8000, { updated: '2024-01-01T00:00:00Z', blocks: 'E040', blocksize: 4096, feeder: true }),
    ]);
    const r = parseTrackerReply(body, strict);
    expect(r.peers).toEqual([
      { ip: '1.2.3.4', port: 8000, progress: 0.5, feeder: true, updated: '2024-01-01T00:00:00Z', blocks: 'e040', blocksize: 4096 },
    ]);
    expect(r.dropped).toBe(0);
    expect(r.intervalMs).toBe(LIMITS.announceIntervalDefaultMs);
  });

  it('issue 14: takes a peer\'s `wire` port; a bad one drops the key, never the peer', () => {
    const good = [7000, 1, 65535, '7001'];
    const bad = [0, -1, 65536, 7000.5, '07000', '', 'x', null, true, [7000], { port: 7000 }, 1e400, '7000 '];
    const body = JSON.stringify([...good, ...bad].map((wire, i) => peer(`1.2.3.${i + 1}`, 8000, { wire })));
    const r = parseTrackerReply(body, strict);
    expect(r.dropped).toBe(0);
    expect(r.peers.map((p) => p.wire)).toEqual([7000, 1, 65535, 7001, ...bad.map(() => undefined)]);
    for (const p of r.peers.slice(good.length)) expect('wire' in p).toBe(false);
  });

  it('drops bad entries and counts them', () => {
    const entries = [
      peer('1.2.3.4'), // good
      peer('example.com'), // host name: never resolved
      peer('0.0.0.0'),
      peer('255.255.255.255'),
      peer('224.1.1.1'),
      peer('::'),
      peer('127.0.0.1'), // loopback from a non-loopback tracker
      peer('1.2.3.5', 0),
      peer('1.2.3.5', 65536),
      peer('1.2.3.5', 80.5),
      peer('1.2.3.5', -1),
      peer('1.2.3.5', '0x50'),
      peer('1.2.3.5', null),
      { port: 80 },
      null,
      42,
      'x',
      [],
      peer('1.2.3.4'), // duplicate
      peer('::ffff:1.2.3.4'), // duplicate after canonicalisation
      peer('1.2.3.6', '8080'), // a port as a canonical decimal string is accepted
    ];
    const r = parseTrackerReply(JSON.stringify(entries), strict);
    expect(r.peers.map((p) => `${p.ip}:${p.port}`)).toEqual(['1.2.3.4:8000', '1.2.3.6:8080']);
    expect(r.dropped).toBe(entries.length - 2);
  });

  it('keeps loopback peers when the tracker is on loopback', () => {
    const r = parseTrackerReply(JSON.stringify([peer('127.0.0.1'), peer('::1')]), { allowLoopback: true });
    expect(r.peers).toHaveLength(2);
  });

  it('drops an entry bitfield that is malformed but keeps the peer', () => {
    const r = parseTrackerReply(
      JSON.stringify([peer('1.2.3.4', 1, { blocks: 'abc', blocksize: 4096 }), peer('1.2.3.5', 1, { blocks: 'ff' }), peer('1.2.3.6', 1, { progress: 'x' })]),
      strict,
    );
    expect(r.peers.map((p) => p.blocks)).toEqual([undefined, undefined, undefined]);
    expect(r.peers[2]!.progress).toBe(0);
  });

  it('takes at most peersPerReply peers', () => {
    const entries = Array.from({ length: 10_000 }, (_, i) => peer(`10.0.${i >> 8}.${i & 255}`));
    expect(parseTrackerReply(JSON.stringify(entries), strict).peers).toHaveLength(LIMITS.peersPerReply);
    expect(parseTrackerReply(JSON.stringify(entries), { ...strict, peersPerReply: 7 }).peers).toHaveLength(7);
  });
});

describe('parseTrackerReply: interval', () => {
  const withInterval = (interval: unknown) => parseTrackerReply(JSON.stringify({ peers: [], interval }), strict).intervalMs;
  it.each([
    [0, LIMITS.announceIntervalDefaultMs],
    [-5, LIMITS.announceIntervalDefaultMs],
    ['NaN', LIMITS.announceIntervalDefaultMs],
    [null, LIMITS.announceIntervalDefaultMs],
    [1, LIMITS.announceIntervalMinMs],
    [120, 120_000],
    ['120', 120_000],
    [10 * 365 * 86_400, LIMITS.announceIntervalMaxMs],
    [1e308, LIMITS.announceIntervalMaxMs],
  ])('interval %j -> %d ms', (iv, want) => expect(withInterval(iv)).toBe(want));

  it('takes the X-Kascade-Interval header for a bare array, the body interval first otherwise', () => {
    expect(parseTrackerReply('[]', { ...strict, headerInterval: '120' }).intervalMs).toBe(120_000);
    expect(parseTrackerReply('[]', { ...strict, headerInterval: 'junk' }).intervalMs).toBe(LIMITS.announceIntervalDefaultMs);
    expect(parseTrackerReply('{"peers": [], "interval": 300}', { ...strict, headerInterval: '120' }).intervalMs).toBe(300_000);
    expect(parseTrackerReply('{"peers": [], "interval": 0}', { ...strict, headerInterval: '120' }).intervalMs).toBe(120_000);
  });

  it('passes a warning through', () => {
    expect(parseTrackerReply('{"peers": [], "warning": "be nice"}', strict).warning).toBe('be nice');
  });
});
