// Unit tests of the address policy (issue 10 point 15): IP literals only, no unusable ranges (link-local and the
// carried-IPv4 forms of each included), loopback only by permission; the dial guard's floor and its lookup. No
// test here dials anything: the guard's own dial tests are in test/integration/peer-dial-guard.test.ts.
import { describe, expect, it } from 'vitest';
import { canonicalIp, isLoopbackHost, judgeAddress, sourceKey } from '../../src/util/address-policy.js';
import { AddressPolicyError, dialProblem, policedLookup } from '../../src/peer/dial-guard.js';
import { parsePeerAddress } from '../../src/util/peer-address.js';

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
    ['255.255.255.254', 'reserved'],
    ['169.254.169.254', 'link-local'],
    ['169.254.0.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['febf:ffff::1', 'link-local'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['::ffff:0.0.0.0', 'unspecified'],
    // IPv4 carried in IPv6 is judged as that IPv4: translated (RFC 6145), NAT64 (RFC 6052), 6to4.
    ['::ffff:0:a9fe:a9fe', 'link-local'],
    ['64:ff9b::a9fe:a9fe', 'link-local'],
    ['64:ff9b::7f00:1', 'loopback'],
    ['64:ff9b::0:0', 'unspecified'],
    ['64:ff9b::e000:1', 'multicast'],
    ['2002:a9fe:a9fe::1', 'link-local'],
    ['2002:7f00:1::1', 'loopback'],
    ['64:ff9b::808:808', 'ok'],
    ['2002:808:808::1', 'ok'],
    ['100::1', 'reserved'],
    ['fec0::1', 'reserved'],
    ['::a9fe:a9fe', 'reserved'],
    ['::2', 'reserved'],
    ['127.0.0.1', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['evil.example', 'not-ip'],
    ['10.0.0.1', 'ok'],
    ['172.16.0.1', 'ok'],
    ['100.64.0.1', 'ok'],
    ['fd00::1', 'ok'],
    ['192.0.2.1', 'ok'],
    ['192.168.1.20', 'ok'],
    ['8.8.8.8', 'ok'],
    ['2001:db8::1', 'ok'],
  ])('%s -> %s', (ip, verdict) => expect(judgeAddress(ip, strict)).toBe(verdict));

  it('allows loopback only when told to', () => {
    expect(judgeAddress('127.0.0.5', { allowLoopback: true })).toBe('ok');
    expect(judgeAddress('::1', { allowLoopback: true })).toBe('ok');
    expect(judgeAddress('0.0.0.0', { allowLoopback: true })).toBe('unspecified');
    expect(judgeAddress('169.254.169.254', { allowLoopback: true })).toBe('link-local');
    expect(judgeAddress('64:ff9b::7f00:1', { allowLoopback: true })).toBe('ok');
  });
});

describe('parsePeerAddress (--peer and a .kascade\'s peers)', () => {
  it.each(['169.254.169.254:80', '0.0.0.0:1', '[fe80::1]:80', '[::ffff:169.254.169.254]:80', '224.0.0.1:80', '[::]:80', '255.255.255.255:9'])(
    'refuses %s by the policy',
    (text) => expect(parsePeerAddress(text)).toMatchObject({ problem: expect.stringMatching(/kfetch never dials it/) as unknown, policy: true }),
  );

  it.each(['2852039166:80', '127.1:80', '0x7f.1:80', '0:80', 'a.0x10:80', 'host.123:80'])('refuses the numeric name %s (getaddrinfo reads it as IPv4)', (text) =>
    expect(parsePeerAddress(text)).toMatchObject({ problem: expect.stringMatching(/not an IP address or a DNS name/) as unknown, policy: false }),
  );

  it('accepts loopback, private and named hosts (a name is judged at the dial)', () => {
    expect(parsePeerAddress('127.0.0.1:8001')).toEqual({ host: '127.0.0.1', port: 8001, key: '127.0.0.1:8001' });
    expect(parsePeerAddress('[::1]:8002')).toMatchObject({ key: '[::1]:8002' });
    expect(parsePeerAddress('10.1.2.3:80')).toMatchObject({ key: '10.1.2.3:80' });
    expect(parsePeerAddress('Seed.Example:80')).toMatchObject({ key: 'seed.example:80' });
    expect(parsePeerAddress('0xdead.example:80')).toMatchObject({ key: '0xdead.example:80' });
  });
});

describe('dial guard', () => {
  it('refuses at the dial what no source may name, and leaves loopback to the entry points', () => {
    for (const host of ['0.0.0.0', '169.254.169.254', '[fe80::1]', 'fe80::1', '[::ffff:a9fe:a9fe]', '224.0.0.1', '[::]', '240.1.2.3']) {
      expect(dialProblem(host), host).toMatch(/address policy refuses to dial it/);
    }
    for (const host of ['127.0.0.1', '[::1]', '10.0.0.1', 'localhost', 'seed.example']) expect(dialProblem(host), host).toBeUndefined();
  });

  const resolve = (name: string): Promise<unknown> =>
    new Promise((res) => {
      policedLookup(name, { all: true }, (err, addresses) => res(err ?? addresses));
    });

  it('judges a name by what it resolves to (numeric names resolve without DNS)', async () => {
    // getaddrinfo turns these into 0.0.0.0 and 169.254.169.254 locally; nothing is dialled.
    for (const name of ['0', '2852039166', '169.254.169.254']) {
      const got = await resolve(name);
      expect(got, name).toBeInstanceOf(AddressPolicyError);
      expect((got as Error).message).toMatch(/resolves only to addresses the address policy refuses/);
    }
    expect(await resolve('localhost')).toEqual(expect.arrayContaining([expect.objectContaining({ address: expect.stringMatching(/^(127\.|::1$)/) as unknown })]));
  });

  it('answers the one-address form of lookup too', async () => {
    const one = await new Promise<unknown[]>((res) => {
      policedLookup('127.0.0.1', {}, (err, address, family) => res([err, address, family]));
    });
    expect(one).toEqual([null, '127.0.0.1', 4]);
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

describe('sourceKey (per-source limits)', () => {
  it('keeps IPv4 as it is, counts IPv6 by its /64, and maps IPv4-mapped IPv6 to its IPv4', () => {
    expect(sourceKey('10.1.2.3')).toBe('10.1.2.3');
    expect(sourceKey('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('2001:db8:1:3::1')).not.toBe(sourceKey('2001:db8:1:2::1'));
    expect(sourceKey('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(sourceKey('::1')).toBe('0:0:0:0::/64');
    expect(sourceKey('unknown')).toBe('unknown');
  });
});
