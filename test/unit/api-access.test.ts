// The control API's pure gates: the Host header check against DNS rebinding (api-access.ts) and the bearer token
// comparison (api-token.ts).

import { describe, expect, it } from 'vitest';
import { apiHostAllowed } from '../../src/api/api-access.js';
import { bearerMatches } from '../../src/api/api-token.js';
import { accessList } from '../../src/peer/access-list.js';

describe('apiHostAllowed', () => {
  const names = new Set(['box.example.org']);
  it.each([
    ['127.0.0.1:7001', true],
    ['127.0.0.1', true],
    ['[::1]:7001', true],
    ['10.1.2.3:80', true],
    ['localhost:7001', true],
    ['LOCALHOST', true],
    ['app.localhost:7001', true],
    ['localhost.', true],
    ['box.example.org:443', true],
    ['BOX.EXAMPLE.ORG.', true],
    [undefined, true],
    ['evil.example', false],
    ['localhost.evil.example', false],
    ['box.example.org.evil', false],
    ['2130706433', false],
    ['0x7f.1', false],
    ['127.1', false],
    ['[::1', false],
    ['[fe80::1%25eth0]:80', false],
    ['a b', false],
    ['x'.repeat(301), false],
  ])('%s → %s', (host, ok) => {
    expect(apiHostAllowed(host, names)).toBe(ok);
  });
});

describe('bearerMatches', () => {
  const token = 'A'.repeat(43);
  it.each([
    [`Bearer ${token}`, true],
    [`bearer ${token}`, true],
    [`Bearer  ${token} `, true],
    [`Bearer ${token}x`, false],
    [`Bearer ${'A'.repeat(42)}`, false],
    [`Basic ${token}`, false],
    [`Bearer`, false],
    [token, false],
    [undefined, false],
    [`Bearer ${'A'.repeat(300)}`, false],
  ])('%s → %s', (header, ok) => {
    expect(bearerMatches(header, token)).toBe(ok);
  });
});

describe('who may use the API (--api-allow)', () => {
  it('loopback always; others only when listed', () => {
    const none = accessList([]);
    expect(none('127.0.0.1')).toBe(true);
    expect(none('::1')).toBe(true);
    expect(none('::ffff:127.0.0.1')).toBe(true);
    expect(none('192.168.1.5')).toBe(false);
    const lan = accessList(['192.168.1.0/24']);
    expect(lan('192.168.1.5')).toBe(true);
    expect(lan('::ffff:192.168.1.5')).toBe(true);
    expect(lan('192.168.2.5')).toBe(false);
  });
});
