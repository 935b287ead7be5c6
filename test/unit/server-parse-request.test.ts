// Table tests for the block server's request parser (RELIABILITY.md "Peer server"): every bad target and Range,
// and the good shapes, without sockets.

import { describe, expect, it } from 'vitest';
import { parseRange, parseRequest } from '../../src/server/parse-request.js';

const ID = '01b944a73e124115caaed0787c66b896ed7662d3116ced9cb08ef7aafc109f16';

describe('parseRequest: targets', () => {
  const bad: Array<[string, 400 | 404]> = [
    ['/../../etc/passwd', 400],
    ['/..', 400],
    [`/${ID}/..`, 400],
    [`/${ID}/../../etc/passwd`, 400],
    ['/%2e%2e/%2e%2e/etc/passwd', 400],
    ['/%2E%2e/etc/passwd', 400],
    ['/..%2f..%2fetc%2fpasswd', 400],
    ['/%252e%252e/etc/passwd', 400],
    ['/..\\..\\etc\\passwd', 400],
    ['\\etc\\passwd', 400],
    [`/${ID}%00`, 400],
    [`/${ID}\x00`, 400],
    ['/%c0%ae%c0%ae/etc/passwd', 400], // overlong UTF-8 for '.'
    ['/\u00c0\u00ae\u00c0\u00ae/etc/passwd', 400],
    [`http://x/${ID}`, 400],
    [`http://127.0.0.1:7001/${ID}`, 400],
    ['127.0.0.1:7001', 400],
    ['*', 400],
    [`//${ID}`, 400],
    [`/${ID}//blocks?blocksize=4096`, 400],
    ['', 400],
    [`/${ID} `, 400],
    [`/${ID}?x=1`, 404],
    [`/${ID}/`, 404],
    ['/etc/passwd', 404],
    ['/', 404],
    ['/favicon.ico', 404],
    [`/${ID}/blocks`, 400],
    [`/${ID}/blocks?blocksize=`, 400],
    [`/${ID}/blocks?blocksize=0`, 400],
    [`/${ID}/blocks?blocksize=04096`, 400],
    [`/${ID}/blocks?blocksize=4096&x=1`, 400],
    [`/${ID}/blocks?blocksize=1e3`, 400],
    [`/${ID}/blocks?blocksize=-1`, 400],
    [`/${ID}/blocks?blocksize=99999999999999999`, 400],
    [`/${'a'.repeat(129)}`, 404],
    [`/${ID}${'a'.repeat(300)}`, 404],
    [`/g${ID.slice(1)}`, 404],
  ];
  it.each(bad)('%j -> %i', (target, status) => {
    const r = parseRequest('GET', target, undefined);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.status).toBe(status);
  });

  it('accepts /<id> (any case, lowercased) as the whole file without Range', () => {
    expect(parseRequest('GET', `/${ID.toUpperCase()}`, undefined)).toEqual({
      ok: true,
      request: { kind: 'whole', swarmId: ID, head: false },
    });
    expect(parseRequest('HEAD', `/${ID}`, undefined)).toEqual({ ok: true, request: { kind: 'whole', swarmId: ID, head: true } });
  });

  it('accepts /<id>/blocks?blocksize=B', () => {
    expect(parseRequest('GET', `/${ID}/blocks?blocksize=4096`, undefined)).toEqual({
      ok: true,
      request: { kind: 'bitfield', swarmId: ID, blockSize: 4096, head: false },
    });
  });

  it.each(['POST', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT', 'PATCH', 'get', ''])('method %j -> 405', (m) => {
    const r = parseRequest(m, `/${ID}`, 'bytes=0-1');
    expect(r).toMatchObject({ ok: false, status: 405 });
  });
});

describe('parseRequest: Range', () => {
  const good: Array<[string, number, number | undefined]> = [
    ['bytes=0-4095', 0, 4095],
    ['0-4095', 0, 4095],
    ['bytes=4096-8191', 4096, 8191],
    ['bytes=5-5', 5, 5],
    ['bytes=100-', 100, undefined],
    [`bytes=0-${2 ** 53 - 1}`, 0, 2 ** 53 - 1],
  ];
  it.each(good)('%j -> [%i, %s]', (value, first, last) => {
    expect(parseRequest('GET', `/${ID}`, value)).toEqual({ ok: true, request: { kind: 'range', swarmId: ID, first, last, head: false } });
  });

  const bad: Array<[string, 400 | 416]> = [
    ['bytes=-1', 416],
    ['-500', 416],
    ['bytes=1.0-2', 400],
    ['bytes=1e3-', 400],
    ['bytes=0x10-0x20', 400],
    [' bytes=0-1', 400],
    ['bytes=0-1 ', 400],
    ['bytes= 0-1', 400],
    ['bytes=0 -1', 400],
    ['', 400],
    ['bytes=', 400],
    ['bytes=-', 400],
    ['bytes=+1-2', 400],
    ['bytes=01-2', 400],
    ['bytes=1-02', 400],
    ['bytes=a-b', 400],
    ['bytes=0-1\x00', 400],
    ['bytes=0-1,5-6', 416],
    ['0-1,5-6', 416],
    ['bytes=0-1, 5-6', 416],
    ['items=0-1', 416],
    ['bytes=5-4', 416],
    [`bytes=0-${2 ** 53}`, 416],
    [`bytes=${2 ** 53}-${2 ** 53 + 2}`, 416],
    ['bytes=0-99999999999999999999999999', 416],
  ];
  it.each(bad)('%j -> %i', (value, status) => {
    const r = parseRequest('GET', `/${ID}`, value);
    expect(r).toMatchObject({ ok: false, status });
    expect(parseRange(value)).toMatchObject({ ok: false, status });
  });
});
