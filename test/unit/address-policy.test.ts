// Unit tests of the peer address policy: IP literals only, no unusable ranges, loopback only by permission.
import { describe, expect, it } from 'vitest';
import { canonicalIp, isLoopbackHost, judgeAddress } from '../../src/peer/address-policy.js';

describe('canonicalIp', () => {
  it.each([
    ['1.2.3.4', '1.2.3.4'],
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['2001:DB8::0:1', '2001:db8::1'],
    ['::1', '::1'],
  ])('%s -> %s', (input, want) => expect(canonicalIp(input)).toBe(want));

  it.each(['localhost', 'example.com', '127.1', '0x7f000001', '1.2.3', '1.2.3.4.5', '01.2.3.4', ' 1.2.3.4', '[::1]', 'fe80::1%eth0', '', '1.2.3.256'])(
    'refuses %j',
    (input) => expect(canonicalIp(input)).toBeUndefined(),
  );
});

describe('judgeAddress', () => {
  const strict = { allowLoopback: false };
  it.each([
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['255.255.255.255', 'broadcast'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::1', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['127.0.0.1', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['evil.example', 'not-ip'],
    ['10.0.0.1', 'ok'],
    ['192.168.1.20', 'ok'],
    ['8.8.8.8', 'ok'],
    ['2001:db8::1', 'ok'],
  ])('%s -> %s', (ip, verdict) => expect(judgeAddress(ip, strict)).toBe(verdict));

  it('allows loopback only when told to', () => {
    expect(judgeAddress('127.0.0.5', { allowLoopback: true })).toBe('ok');
    expect(judgeAddress('::1', { allowLoopback: true })).toBe('ok');
    expect(judgeAddress('0.0.0.0', { allowLoopback: true })).toBe('unspecified');
  });
});

describe('isLoopbackHost', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.9.9.9', true],
    ['[::1]', true],
    ['localhost', true],
    ['LOCALHOST', true],
    ['a.localhost', true],
    ['10.0.0.1', false],
    ['tracker.example.org', false],
    ['[2001:db8::1]', false],
  ])('%s -> %s', (host, want) => expect(isLoopbackHost(host)).toBe(want));
});
