// Issue 10 point 11: a reply over the client's cap keeps its complete peer entries. The reader is pure: bytes in
// (split anywhere), validated peers out; an oversized entry is dropped alone, bitfields past a budget are shed.
import { describe, expect, it } from 'vitest';
import { KfetchError } from '../../src/errors.js';
import { LIMITS } from '../../src/limits.js';
import { OverlongReplyReader, parseTrackerReply, type ParseReplyOptions } from '../../src/tracker/parse-reply.js';

const opts: ParseReplyOptions = { allowLoopback: false };
const honest = (i: number): Record<string, unknown> => ({ ip: `10.0.0.${i}`, port: 7000 + i, progress: 1, feeder: true, blocks: 'ff', blocksize: 4096 });
/** An entry longer than any honest one: a bitfield of more blocks than a file can have. */
const poison = (i: number, hexChars: number): Record<string, unknown> => ({ ip: `10.9.9.${i}`, port: 1, progress: 1, blocks: 'f'.repeat(hexChars), blocksize: 4096 });

function read(text: string, chunk: number, o: ParseReplyOptions = opts) {
  const r = new OverlongReplyReader(o);
  const bytes = Buffer.from(text);
  let n = 0;
  for (let i = 0; i < bytes.length; i += chunk) {
    n = Math.min(bytes.length, i + chunk);
    if (r.push(bytes.subarray(i, n))) break;
  }
  return r.finish(n, LIMITS.trackerReplyMaxBytes);
}

describe('OverlongReplyReader', () => {
  it('keeps the honest peers around oversized entries, at any chunking', () => {
    const body = JSON.stringify([poison(1, 3 * 1024 * 1024), honest(1), poison(2, 600 * 1024), honest(2), honest(3)]);
    for (const chunk of [1 << 16, 4093, 1 << 20]) {
      const r = read(body, chunk);
      expect(r.peers.map((p) => p.ip)).toEqual(['10.0.0.1', '10.9.9.2', '10.0.0.2', '10.0.0.3']);
      expect(r.dropped).toBe(1);
      expect(r.warning).toMatch(/over the 1048576-byte cap: kept 4 peers/);
    }
  });

  it('sheds bitfields past the budget but keeps their peers', () => {
    const body = JSON.stringify([poison(1, 600 * 1024), poison(2, 600 * 1024), honest(1)]);
    const r = read(body, 1 << 16);
    expect(r.peers.map((p) => p.blocks?.length)).toEqual([600 * 1024, undefined, 2]);
  });

  it('keeps the complete entries of a body cut anywhere, and gives the same peers as the whole parse', () => {
    const entries = [honest(1), { ip: 'x', port: 2 }, 'junk', [1, 2], { ip: '10.0.0.4', port: 9, updated: 'a]b}"c' }, 42, null, honest(5)];
    const body = JSON.stringify(entries);
    const whole = parseTrackerReply(body, opts);
    for (const chunk of [1, 3, 7, 1000]) {
      const r = read(body, chunk);
      expect(r.peers).toEqual(whole.peers);
      expect(r.dropped).toBe(whole.dropped);
    }
    const cut = body.slice(0, body.indexOf('"10.0.0.5"'));
    expect(read(cut, 5).peers.map((p) => p.ip)).toEqual(['10.0.0.1', '10.0.0.4']);
  });

  it('stops at peersPerReply and says when it needs no more bytes', () => {
    const r = new OverlongReplyReader({ ...opts, peersPerReply: 2 });
    expect(r.push(Buffer.from(`[${JSON.stringify(honest(1))},`))).toBe(false);
    expect(r.push(Buffer.from(`${JSON.stringify(honest(2))},${JSON.stringify(honest(3))}`))).toBe(true);
    expect(r.finish(100, 10).peers).toHaveLength(2);
  });

  it('refuses a body that is not an array, or holds no complete entry', () => {
    const code = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        return e instanceof KfetchError ? e.code : 'other';
      }
      return undefined;
    };
    expect(code(() => read(`{"peers": [${JSON.stringify(honest(1))}]}`, 10))).toBe('KF_E_TRACKER_RESPONSE');
    expect(code(() => read('<html>', 10))).toBe('KF_E_TRACKER_RESPONSE');
    expect(code(() => read(`[   ${JSON.stringify(honest(1)).slice(0, 20)}`, 10))).toBe('KF_E_TRACKER_RESPONSE');
  });
});
