// `kfetch tracker --store` values (issue 13): a table of good and bad ones, each bad one a KF_E_USAGE naming the
// flag; credentials in the URL are refused without echoing them.
import { describe, expect, it } from 'vitest';
import { isKfetchError } from '../../src/errors.js';
import { describeStore, parseStoreSpec } from '../../src/tracker/open-peer-store.js';

describe('parseStoreSpec', () => {
  it.each([
    ['memory', { kind: 'memory' }],
    ['redis://127.0.0.1', { kind: 'redis', host: '127.0.0.1', port: 6379, db: 0 }],
    ['redis://127.0.0.1:6380/3', { kind: 'redis', host: '127.0.0.1', port: 6380, db: 3 }],
    ['redis://localhost:1/15', { kind: 'redis', host: 'localhost', port: 1, db: 15 }],
    ['redis://redis.internal.example:65535/0', { kind: 'redis', host: 'redis.internal.example', port: 65535, db: 0 }],
    ['redis://[::1]:6379/2', { kind: 'redis', host: '[::1]', port: 6379, db: 2 }],
    ['redis://10.1.2.3/', { kind: 'redis', host: '10.1.2.3', port: 6379, db: 0 }],
  ] as const)('%s is %j', (text, want) => {
    expect(parseStoreSpec(text)).toEqual(want);
  });

  it.each([
    ['', /memory or redis/],
    ['Memory', /memory or redis/],
    ['http://127.0.0.1:6379', /memory or redis/],
    ['rediss://127.0.0.1', /TLS/],
    ['redis://', /redis:\/\/HOST/],
    ['redis://127.0.0.1:0', /port must be 1..65535/],
    ['redis://127.0.0.1:65536', /port must be 1..65535/],
    ['redis://127.0.0.1:06379', /port must be 1..65535/],
    ['redis://127.0.0.1:6379/16', /database must be 0..15/],
    ['redis://127.0.0.1:6379/01', /database must be 0..15/],
    ['redis://127.0.0.1:6379/1/2', /redis:\/\/HOST/],
    ['redis://127.0.0.1:6379/1?password=x', /redis:\/\/HOST/],
    ['redis://127.0.0.1:6379#x', /redis:\/\/HOST/],
    ['redis://-bad-.example', /host name/],
    ['redis://a..b', /host name/],
    ['redis://[127.0.0.1]', /IPv6/],
    ['redis://host name', /redis:\/\/HOST/],
    [`redis://${'a'.repeat(400)}`, /longer than/],
  ])('%j is refused (%s)', (text, why) => {
    let err: unknown;
    try {
      parseStoreSpec(text);
    } catch (e) {
      err = e;
    }
    expect(isKfetchError(err) && err.code === 'KF_E_USAGE' && err.field === '--store').toBe(true);
    expect((err as Error).message).toMatch(why);
  });

  it.each(['redis://:s3cret@127.0.0.1:6379/0', 'redis://user:s3cret@127.0.0.1', 'redis://s3cret@127.0.0.1'])(
    'refuses credentials in %s without echoing them',
    (text) => {
      expect(() => parseStoreSpec(text)).toThrow(/KFETCH_REDIS_PASSWORD/);
      expect(() => parseStoreSpec(text)).not.toThrow(/s3cret/);
    },
  );

  it('describes a store without a password', () => {
    expect(describeStore(parseStoreSpec('redis://127.0.0.1'))).toBe('redis://127.0.0.1:6379/0');
    expect(describeStore({ kind: 'memory' })).toBe('memory');
  });
});
