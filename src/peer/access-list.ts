// Who may read the box's /metrics and /status, and which proxies the tracker believes about a peer's address: a
// list of addresses and CIDR blocks, matched against a request's remote address (IPv4-mapped IPv6 addresses count
// as their IPv4 form). Used by the seeding box and the tracker.

import { createRequire } from 'node:module';
import type * as IpAddr from 'ipaddr.js';

// ipaddr.js is CommonJS typed as an ambient module (see address-policy.ts).
const ipaddr = createRequire(import.meta.url)('ipaddr.js') as typeof IpAddr;

type Range = [IpAddr.IPv4 | IpAddr.IPv6, number];

function parseRange(text: string): Range {
  if (text.includes('/')) return ipaddr.parseCIDR(text);
  const a = ipaddr.parse(text);
  return [a, a.kind() === 'ipv4' ? 32 : 128];
}

/** Why `text` is not an address or CIDR block, or undefined if it is one. */
export function checkCidr(text: string): string | undefined {
  try {
    parseRange(text);
    return undefined;
  } catch {
    return 'must be an IP address or CIDR block, e.g. 127.0.0.1, 10.0.0.0/8 or ::1';
  }
}

/**
 * A predicate for remote addresses: every listed address or block, plus loopback unless `loopback` is false (the
 * tracker's trusted proxies: a loopback caller is not trusted unless listed).
 */
export function accessList(entries: readonly string[], o: { loopback?: boolean } = {}): (remote: string) => boolean {
  const ranges = entries.map(parseRange);
  const loopback = o.loopback ?? true;
  return (remote: string) => {
    let addr: IpAddr.IPv4 | IpAddr.IPv6;
    try {
      addr = ipaddr.process(remote);
    } catch {
      return false;
    }
    if (loopback && addr.range() === 'loopback') return true;
    return ranges.some(([net, bits]) => net.kind() === addr.kind() && addr.match([net, bits] as never));
  };
}
