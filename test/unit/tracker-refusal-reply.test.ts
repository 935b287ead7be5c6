// The tracker's reply shape by client (issue 9): kfetch clients get JSON errors with the real status, anything
// else a JSON array (200 on an announce path, 404 elsewhere) with the reason in X-Kascade-Error.
import { describe, expect, it } from 'vitest';
import { isKfetchClient, refusalReply } from '../../src/tracker/refusal-reply.js';

describe('isKfetchClient', () => {
  it.each([
    ['kfetch/0.1.0', true],
    ['kfetch/', true],
    [undefined, false],
    ['', false],
    ['Kfetch/0.1.0', false],
    ['python-requests/2.7', false],
    ['node', false],
    ['not kfetch/0.1.0', false],
    [' kfetch/0.1.0', false],
  ])('%j -> %s', (ua, want) => {
    expect(isKfetchClient(ua)).toBe(want);
  });
});

describe('refusalReply', () => {
  const tooSoon = { status: 403, message: 'too soon', headers: { 'Retry-After': '5' }, announcePath: true };
  const peers = [{ ip: '10.0.0.1', port: 1 }];

  it('gives a kfetch client the status, a JSON object and its headers', () => {
    expect(refusalReply(true, { ...tooSoon, field: 'port' }, peers, 60)).toEqual({
      status: 403,
      body: { error: 'too soon', field: 'port' },
      headers: { 'Retry-After': '5' },
    });
  });

  it('gives any other client 200 and the array on an announce path, 404 [] elsewhere', () => {
    expect(refusalReply(false, tooSoon, peers, 60)).toEqual({
      status: 200,
      body: peers,
      headers: { 'X-Kascade-Error': 'too soon', 'X-Kascade-Interval': '60' },
    });
    expect(refusalReply(false, { status: 404, message: 'not found', announcePath: false }, peers, 60)).toEqual({
      status: 404,
      body: [],
      headers: { 'X-Kascade-Error': 'not found' },
    });
  });

  it('keeps X-Kascade-Error a short printable header', () => {
    const r = refusalReply(false, { status: 400, message: `field \r\nX-Evil: 1 é ${'x'.repeat(500)}`, announcePath: true }, [], 60);
    expect(r.headers['X-Kascade-Error']).toMatch(/^[\x20-\x7e]{1,200}$/);
  });
});
