// Table tests of the tracker's feeder policy (issue 9): operator addresses parsed to canonical keys, the flag
// combinations refused as usage errors, and who is a feeder in each mode.
import { describe, expect, it } from 'vitest';
import { KfetchError } from '../../src/errors.js';
import { DEFAULT_FEEDER_POLICY, isFeeder, makeFeederPolicy, parseFeederAddress } from '../../src/tracker/feeder-policy.js';

function usageError(f: () => unknown): KfetchError {
  let caught: unknown;
  try {
    f();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(KfetchError);
  expect((caught as KfetchError).code).toBe('KF_E_USAGE');
  return caught as KfetchError;
}

describe('parseFeederAddress', () => {
  it.each([
    ['127.0.0.1:8000', '127.0.0.1:8000'],
    ['10.1.2.3:1', '10.1.2.3:1'],
    ['[::1]:65535', '[::1]:65535'],
    ['[2001:DB8:0:0:0:0:0:1]:80', '[2001:db8::1]:80'],
    ['[::ffff:10.0.0.1]:80', '10.0.0.1:80'],
  ])('%s -> %s', (text, key) => {
    expect(parseFeederAddress(text)).toBe(key);
  });

  it.each([
    '127.0.0.1',
    '127.0.0.1:0',
    '127.0.0.1:65536',
    '127.0.0.1:080',
    '127.1:80',
    'localhost:80',
    'example.com:80',
    '::1:80',
    '[::1]',
    '[127.0.0.1]:80',
    '[fe80::1%eth0]:80',
    '300.0.0.1:80',
    ' 127.0.0.1:80',
    '',
  ])('refuses %j with KF_E_USAGE naming --feeder', (text) => {
    expect(usageError(() => parseFeederAddress(text)).field).toBe('--feeder');
  });
});

describe('makeFeederPolicy', () => {
  it('refuses --feeder with --feeders none, listed without any --feeder, and unknown modes', () => {
    expect(usageError(() => makeFeederPolicy('none', ['127.0.0.1:1'])).message).toMatch(/none/);
    usageError(() => makeFeederPolicy('listed', []));
    usageError(() => makeFeederPolicy('all', []));
  });

  it('deduplicates listed addresses by their canonical key', () => {
    expect([...makeFeederPolicy('listed', ['[::1]:80', '[0:0:0:0:0:0:0:1]:80']).listed]).toEqual(['[::1]:80']);
  });
});

describe('isFeeder', () => {
  const complete = makeFeederPolicy('complete', ['10.0.0.2:80', '[::1]:80']);
  const listed = makeFeederPolicy('listed', ['10.0.0.2:80']);
  const none = makeFeederPolicy('none');
  it.each([
    ['default, complete peer', DEFAULT_FEEDER_POLICY, '10.0.0.1', 80, 1, true],
    ['default, 0.999 is not complete', DEFAULT_FEEDER_POLICY, '10.0.0.1', 80, 0.999, false],
    ['complete + listed, listed downloader', complete, '10.0.0.2', 80, 0, true],
    ['complete + listed, listed v6', complete, '::1', 80, 0, true],
    ['complete + listed, same ip other port', complete, '10.0.0.2', 81, 0, false],
    ['listed, listed peer', listed, '10.0.0.2', 80, 0, true],
    ['listed, complete but not listed', listed, '10.0.0.1', 80, 1, false],
    ['none, complete peer', none, '10.0.0.1', 80, 1, false],
  ] as const)('%s -> %s', (_name, policy, ip, port, progress, want) => {
    expect(isFeeder(policy, ip, port, progress)).toBe(want);
  });
});
