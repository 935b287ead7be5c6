// Edges of the block-request and tracker-reply parsers that the first mutation run (`npm run mutate`, issue 10)
// showed no test would notice: limits at their exact bound, anchored patterns, error text capped before it is
// echoed, and the fields a reply entry keeps or drops. Tables, no I/O.

import { describe, expect, it } from 'vitest';
import { KfetchError } from '../../src/errors.js';
import { LIMITS } from '../../src/limits.js';
import { parseRange, parseRequest } from '../../src/server/parse-request.js';
import { parseTrackerReply } from '../../src/tracker/parse-reply.js';

const ID = 'ab'.repeat(32);

describe('block request parser edges', () => {
  it('caps a long method in its error text', () => {
    const r = parseRequest('X'.repeat(1000), `/${ID}`, undefined);
    expect(r).toEqual({ ok: false, status: 405, error: `method ${'X'.repeat(16)} not allowed` });
  });

  it('answers any target over 256 characters 404 before looking at it, and reads one of 256', () => {
    const base = `/${ID}/blocks?`;
    const at = (n: number): string => `${base}${'x'.repeat(n - base.length)}`;
    expect(parseRequest('GET', at(256), undefined)).toEqual({ ok: false, status: 400, error: 'expected /<id>/blocks?blocksize=<decimal>' });
    expect(parseRequest('GET', at(257), undefined)).toEqual({ ok: false, status: 404, error: 'not found' });
  });

  it.each([
    ['', 400, 'empty Range header'],
    ['bytes=-5', 416, 'suffix ranges are not served'],
    ['-5', 416, 'suffix ranges are not served'],
    ['bytes=-5x', 400, 'malformed Range header'],
    ['x-5', 400, 'malformed Range header'],
    ['items=1-', 416, 'only the bytes unit is served'],
    ['items=12-345', 416, 'only the bytes unit is served'],
    ['items=1-2x', 400, 'malformed Range header'],
    ['xitems=1-2 ', 400, 'malformed Range header'],
    ['bytes=9007199254740992-9007199254740993', 416, 'range offset beyond 2^53'],
    ['bytes=5-4', 416, 'range end before its start'],
  ])('Range %j is %i (%s)', (value, status, error) => {
    expect(parseRange(value)).toEqual({ ok: false, status, error });
  });

  it('takes an open-ended range and a one-byte range', () => {
    expect(parseRange('bytes=5-')).toEqual({ ok: true, first: 5, last: undefined });
    expect(parseRange('5-5')).toEqual({ ok: true, first: 5, last: 5 });
  });
});

describe('tracker reply parser edges', () => {
  const peer = (o: Record<string, unknown>): string => JSON.stringify([{ ip: '10.0.0.1', port: 6881, ...o }]);
  const one = (o: Record<string, unknown>) => parseTrackerReply(peer(o), { allowLoopback: false }).peers[0];
  const err = (body: string | Uint8Array): KfetchError => {
    try {
      parseTrackerReply(body, { allowLoopback: false });
    } catch (e) {
      return e as KfetchError;
    }
    throw new Error('no error');
  };

  it('says why a body is not a reply, and keeps the cause', () => {
    expect(err('').message).toBe('tracker reply: empty body');
    expect(err('  \n').message).toBe('tracker reply: empty body');
    expect(err('{').message).toBe('tracker reply: not JSON');
    expect(err('{').cause).toBeInstanceOf(SyntaxError);
    expect(err(new Uint8Array([0x5b, 0xff, 0x5d])).message).toBe('tracker reply: not UTF-8');
    expect(err('{"peers": 3}').message).toBe('tracker reply: an object without a peers array');
    expect(err('{"peers": 3}').cause).toBeUndefined();
    expect(err('"x"').code).toBe('KF_E_TRACKER_RESPONSE');
  });

  it('caps refusal and warning texts at 200 characters', () => {
    const long = 'r'.repeat(500);
    expect(err(JSON.stringify({ 'failure reason': long })).message).toBe(`tracker refused: ${'r'.repeat(200)}`);
    expect(err(JSON.stringify({ error: long })).message).toBe(`tracker refused: ${'r'.repeat(200)}`);
    expect(parseTrackerReply(JSON.stringify({ peers: [], warning: long }), { allowLoopback: false }).warning).toBe('r'.repeat(200));
    expect(parseTrackerReply(JSON.stringify({ peers: [] }), { allowLoopback: false })).not.toHaveProperty('warning');
  });

  it.each([
    [{}, 60_000],
    [{ interval: 120 }, 120_000],
    [{ interval: '120' }, 120_000],
    [{ interval: '120s' }, 60_000],
    [{ interval: 'x120' }, 60_000],
    [{ interval: 0 }, 60_000],
    [{ interval: -5 }, 60_000],
    [{ interval: 1 }, 30_000],
    [{ interval: 10 ** 9 }, 3_600_000],
  ])('interval %j gives %i ms', (o, ms) => {
    expect(parseTrackerReply(JSON.stringify({ peers: [], ...o }), { allowLoopback: false }).intervalMs).toBe(ms);
  });

  it('a header interval counts for a bare array, and only as decimal seconds', () => {
    expect(parseTrackerReply('[]', { allowLoopback: false, headerInterval: '90' }).intervalMs).toBe(90_000);
    expect(parseTrackerReply('[]', { allowLoopback: false, headerInterval: '90x' }).intervalMs).toBe(60_000);
  });

  it.each([
    ['an array entry', ['10.0.0.1', 6881]],
    ['port 0', { ip: '10.0.0.1', port: 0 }],
    ['port 65536', { ip: '10.0.0.1', port: 65536 }],
    ['port "0"', { ip: '10.0.0.1', port: '0' }],
    ['port 1.5', { ip: '10.0.0.1', port: 1.5 }],
    ['port "80x"', { ip: '10.0.0.1', port: '80x' }],
    ['a numeric ip', { ip: 167772161, port: 80 }],
  ])('drops %s', (_name, entry) => {
    expect(parseTrackerReply(JSON.stringify([entry]), { allowLoopback: false })).toMatchObject({ peers: [], dropped: 1 });
  });

  it('keeps ports 1 and 65535, as numbers or decimal strings', () => {
    expect(one({ port: 1 })?.port).toBe(1);
    expect(one({ port: 65535 })?.port).toBe(65535);
    expect(one({ port: '65535' })?.port).toBe(65535);
  });

  it('clamps progress into [0, 1] and takes only a number', () => {
    expect(one({ progress: 0.5 })?.progress).toBe(0.5);
    expect(one({ progress: 7 })?.progress).toBe(1);
    expect(one({ progress: -1 })?.progress).toBe(0);
    expect(one({ progress: '0.5' })?.progress).toBe(0);
    expect(one({})?.progress).toBe(0);
    expect(one({ feeder: 'true' })?.feeder).toBe(false);
    expect(one({ feeder: true })?.feeder).toBe(true);
  });

  it('keeps `updated` up to 64 characters', () => {
    expect(one({ updated: 'u'.repeat(64) })?.updated).toBe('u'.repeat(64));
    expect(one({ updated: 'u'.repeat(65) })).not.toHaveProperty('updated');
    expect(one({ updated: 5 })).not.toHaveProperty('updated');
  });

  it('keeps a bitfield only with a block size in the limits, at its exact bounds', () => {
    expect(one({ blocks: 'A0', blocksize: LIMITS.minBlockSize })).toMatchObject({ blocks: 'a0', blocksize: LIMITS.minBlockSize });
    expect(one({ blocks: 'a0', blocksize: LIMITS.maxBlockSize })).toMatchObject({ blocksize: LIMITS.maxBlockSize });
    expect(one({ blocks: 'a0', blocksize: LIMITS.minBlockSize - 1 })).not.toHaveProperty('blocks');
    expect(one({ blocks: 'a0', blocksize: LIMITS.maxBlockSize + 1 })).not.toHaveProperty('blocks');
    expect(one({ blocks: 'a0', blocksize: '4096' })).not.toHaveProperty('blocks');
    expect(one({ blocks: 'a0', blocksize: 4096.5 })).not.toHaveProperty('blocks');
    expect(one({ blocks: 'a0' })).not.toHaveProperty('blocksize');
    expect(one({ blocks: 'a', blocksize: 4096 })).not.toHaveProperty('blocks');
    expect(one({ blocks: 'zz', blocksize: 4096 })).not.toHaveProperty('blocks');
    const max = (LIMITS.maxBlocksPerSize / 8) * 2;
    expect(one({ blocks: '0'.repeat(max), blocksize: 4096 })?.blocks).toHaveLength(max);
    expect(one({ blocks: '0'.repeat(max + 2), blocksize: 4096 })).not.toHaveProperty('blocks');
  });
});
