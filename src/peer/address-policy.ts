// Which addresses kfetch will accept as peers: IP literals only (never a host name to resolve), no
// unspecified/broadcast/multicast/class-E addresses, loopback only when the tracker itself is on loopback.
// Used by the tracker reply parser and the tracker server's `ip` field.

import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import type * as IpAddr from 'ipaddr.js';

// ipaddr.js is CommonJS typed as an ambient module, so neither a default nor a named ESM import type-checks
// under nodenext without allowSyntheticDefaultImports; require it.
const ipaddr = createRequire(import.meta.url)('ipaddr.js') as typeof IpAddr;

/** Why an address was refused, or 'ok'. */
export type AddressVerdict = 'ok' | 'not-ip' | 'unspecified' | 'broadcast' | 'multicast' | 'reserved' | 'loopback';

export interface AddressPolicy {
  /** Accept 127.0.0.0/8 and ::1 (only when the tracker we asked is itself on loopback). */
  allowLoopback: boolean;
}

/**
 * Parse a strict IP literal (dotted-quad IPv4 or IPv6 without a zone id) into its canonical text:
 * IPv4-mapped IPv6 becomes plain IPv4, IPv6 is RFC 5952 lowercase. Returns undefined for anything else
 * (host names, `0x7f.1`, `127.1`, `fe80::1%eth0`, surrounding brackets or spaces).
 */
export function canonicalIp(text: string): string | undefined {
  if (text.length > 45 || text.includes('%') || isIP(text) === 0) return undefined;
  let addr: IpAddr.IPv4 | IpAddr.IPv6;
  try {
    addr = ipaddr.parse(text);
  } catch {
    return undefined;
  }
  if (addr.kind() === 'ipv6' && (addr as IpAddr.IPv6).isIPv4MappedAddress()) addr = (addr as IpAddr.IPv6).toIPv4Address();
  return addr.kind() === 'ipv6' ? (addr as IpAddr.IPv6).toRFC5952String() : addr.toString();
}

/** Judge an address (any text) against the policy; only 'ok' addresses may be dialled. */
export function judgeAddress(text: string, policy: AddressPolicy): AddressVerdict {
  const canon = canonicalIp(text);
  if (canon === undefined) return 'not-ip';
  const addr = ipaddr.parse(canon);
  const range = addr.range();
  if (range === 'unspecified') return 'unspecified';
  if (range === 'broadcast') return 'broadcast';
  if (range === 'multicast') return 'multicast';
  // Class E (240.0.0.0/4) is not routable; other "reserved" ranges (documentation nets) are harmless.
  if (addr.kind() === 'ipv4' && (addr as IpAddr.IPv4).octets[0]! >= 240) return 'reserved';
  if (range === 'loopback' && !policy.allowLoopback) return 'loopback';
  return 'ok';
}

/**
 * True if a URL host (as `URL.hostname` gives it: `127.0.0.1`, `[::1]`, `localhost`) is loopback.
 * `localhost` counts (RFC 6761 reserves it for loopback); no other name is resolved.
 */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  const canon = canonicalIp(h);
  return canon !== undefined && ipaddr.parse(canon).range() === 'loopback';
}
