// The UDP tracker's connection ids (issue 14; SipHash-2-4 since the UDP CPU work): each one belongs to one source
// address, port and minute, IPv4 and IPv6 alike, and comes from the secret (the integration tests in
// tracker-udp-malformed.test.ts check the tracker refuses another port's, another minute's and a made-up id).
import { describe, expect, it } from 'vitest';
import { connectionId, connectionIdKey, writeConnectionId } from '../../src/tracker/udp-tracker.js';

const key = connectionIdKey(Buffer.from('a test secret of any length'));
const hex = (b: Buffer | undefined): string | undefined => b?.toString('hex');

describe('udp tracker connection ids', () => {
  it('differ by address, port, minute and secret; the same inputs give the same id', () => {
    const base = hex(connectionId(key, '127.0.0.1', 4000, 29_000_000));
    expect(base).toMatch(/^[0-9a-f]{16}$/);
    expect(hex(connectionId(key, '127.0.0.1', 4000, 29_000_000))).toBe(base);
    const others = [
      connectionId(key, '127.0.0.2', 4000, 29_000_000),
      connectionId(key, '127.0.0.1', 4001, 29_000_000),
      connectionId(key, '127.0.0.1', 4000, 29_000_001),
      connectionId(connectionIdKey(Buffer.from('another secret')), '127.0.0.1', 4000, 29_000_000),
      connectionId(key, '::1', 4000, 29_000_000),
    ].map(hex);
    for (const o of others) expect(o).toMatch(/^[0-9a-f]{16}$/);
    expect(new Set([base, ...others]).size).toBe(6);
  });

  it('an IPv6 source gets its own id; anything but canonical IP text (what the tracker passes, canonicalIp of the source) gets none', () => {
    expect(hex(connectionId(key, '2001:db8::1', 443, 1))).toMatch(/^[0-9a-f]{16}$/);
    expect(hex(connectionId(key, '2001:db8::1', 443, 1))).not.toBe(hex(connectionId(key, '2001:db8::2', 443, 1)));
    for (const bad of ['', 'localhost', '127.1', '01.2.3.4', '1.2.3.4 ', 'fe80::1%eth0', '::ffff:127.0.0.1']) expect(connectionId(key, bad, 1, 1)).toBeUndefined();
  });

  it('writes at an offset and nothing else', () => {
    const out = Buffer.alloc(12, 0xee);
    expect(writeConnectionId(key, '10.0.0.1', 5, 7, out, 2)).toBe(true);
    expect(out.subarray(2, 10)).toEqual(connectionId(key, '10.0.0.1', 5, 7));
    expect([...out.subarray(0, 2), ...out.subarray(10)]).toEqual([0xee, 0xee, 0xee, 0xee]);
  });
});
