// The one address policy every address kfetch dials passes, whatever its source (DESIGN.md invariants).
// Entry points judge an address where it comes in — the tracker reply parser (loopback only from a loopback
// tracker), the .kascade parser (`peers` and the tracker URL, loopback allowed as for anything the user named),
// `--peer` — and the dialers assert the floor once more at the socket (peer/dial-guard.ts). Pure, and in util/ so
// the .kascade parser (which uses no other part) shares it: a tracker URL and a `peers` entry get one verdict.
//
// The rule: only an IP literal (a host name only from the user or a .kascade, judged after resolution) that names
// one remote host. Refused: unspecified (0.0.0.0/8, ::; 0.0.0.0 dials this host on Linux), broadcast, multicast,
// link-local (169.254.0.0/16 and fe80::/10: cloud metadata services live there), class E (240.0.0.0/4), the IPv6
// discard prefix, deprecated site-local fec0::/10 and IPv4-compatible ::a.b.c.d; loopback unless allowed.
// IPv4 carried in IPv6 (mapped ::ffff:a.b.c.d, translated ::ffff:0:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16)
// is judged as the IPv4 it carries. Private, CGNAT, unique-local and documentation ranges pass: LANs, tests and
// examples use them, and they reach no service of this host or its link.

import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import type * as IpAddr from 'ipaddr.js';

// ipaddr.js is CommonJS typed as an ambient module, so neither a default nor a named ESM import type-checks
// under nodenext without allowSyntheticDefaultImports; require it.
const ipaddr = createRequire(import.meta.url)('ipaddr.js') as typeof IpAddr;

/** Why an address was refused, or 'ok'. */
export type AddressVerdict = 'ok' | 'not-ip' | 'unspecified' | 'broadcast' | 'multicast' | 'link-local' | 'reserved' | 'loopback';

export interface AddressPolicy {
  /** Accept 127.0.0.0/8 and ::1: the source is itself on loopback (a tracker) or the user named the address. */
  allowLoopback: boolean;
}

/** The policy for addresses a user (`--peer`) or a .kascade (`peers`, `tracker`) names: loopback allowed. */
export const NAMED_ADDRESS_POLICY: AddressPolicy = { allowLoopback: true };

/**
 * A canonical dotted quad (no leading zeros, each part 0..255) as its 32-bit value, else -1; read by hand (no array,
 * no regular expression): canonicalIp's fast path, and the UDP tracker's reply encoder calls it for every peer.
 */
export function dottedQuadValue(ip: string): number {
  if (ip.length > 15 || ip.length < 7) return -1;
  let value = 0;
  let parts = 0;
  let v = 0;
  let digits = 0;
  for (let i = 0; i <= ip.length; i++) {
    const c = i === ip.length ? 0x2e : ip.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || v > 255 || parts === 4) return -1;
      value = value * 256 + v;
      parts++;
      v = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && v === 0) return -1; // a leading zero
      v = v * 10 + (c - 0x30);
      digits++;
      if (digits > 3) return -1;
    } else return -1;
  }
  return parts === 4 ? value : -1;
}

/**
 * Parse a strict IP literal (dotted-quad IPv4 or IPv6 without a zone id) into its canonical text:
 * IPv4-mapped IPv6 becomes plain IPv4, IPv6 is RFC 5952 lowercase. Returns undefined for anything else
 * (host names, `0x7f.1`, `127.1`, `fe80::1%eth0`, surrounding brackets or spaces).
 */
export function canonicalIp(text: string): string | undefined {
  // A canonical dotted quad (what the kernel reports for an IPv4 source) is its own canonical text: no parse (1 µs).
  if (dottedQuadValue(text) >= 0) return text;
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

/** The IPv4 address an IPv6 one carries for translation or tunnelling (see the module comment), if any. */
function embeddedIpv4(v6: IpAddr.IPv6): IpAddr.IPv4 | undefined {
  const p = v6.parts;
  const fromLow32 = (): IpAddr.IPv4 => new ipaddr.IPv4([p[6]! >> 8, p[6]! & 0xff, p[7]! >> 8, p[7]! & 0xff]);
  const range: string = v6.range();
  // 64:ff9b::/96 only: the local-use 64:ff9b:1::/48 (RFC 8215) has no fixed place for the IPv4.
  if (range === 'rfc6052' && p[1] === 0xff9b && p[2] === 0 && p[3] === 0 && p[4] === 0 && p[5] === 0) return fromLow32();
  if (range === 'rfc6145') return fromLow32();
  if (range === '6to4') return new ipaddr.IPv4([p[1]! >> 8, p[1]! & 0xff, p[2]! >> 8, p[2]! & 0xff]);
  return undefined;
}

function judgeIpv4(addr: IpAddr.IPv4, policy: AddressPolicy): AddressVerdict {
  const range = addr.range();
  if (range === 'unspecified') return 'unspecified';
  if (range === 'broadcast') return 'broadcast';
  if (range === 'multicast') return 'multicast';
  if (range === 'linkLocal') return 'link-local';
  // Class E (240.0.0.0/4) is not routable; ipaddr.js's other "reserved" ranges (documentation nets) are harmless.
  if (addr.octets[0]! >= 240) return 'reserved';
  if (range === 'loopback' && !policy.allowLoopback) return 'loopback';
  return 'ok';
}

/** Judge an address (any text) against the policy; only 'ok' addresses may be dialled. */
export function judgeAddress(text: string, policy: AddressPolicy): AddressVerdict {
  const canon = canonicalIp(text);
  if (canon === undefined) return 'not-ip';
  const addr = ipaddr.parse(canon);
  if (addr.kind() === 'ipv4') return judgeIpv4(addr as IpAddr.IPv4, policy);
  const v6 = addr as IpAddr.IPv6;
  const carried = embeddedIpv4(v6);
  if (carried !== undefined) return judgeIpv4(carried, policy);
  // ipaddr.js 2.5 names more ranges than its typings list (discard, deprecatedSiteLocal).
  const range: string = v6.range();
  if (range === 'unspecified') return 'unspecified';
  if (range === 'multicast') return 'multicast';
  if (range === 'linkLocal') return 'link-local';
  if (range === 'discard' || range === 'deprecatedSiteLocal') return 'reserved';
  // ::a.b.c.d (IPv4-compatible, deprecated by RFC 4291): ipaddr.js calls it unicast; nothing routes it.
  if (v6.parts.slice(0, 6).every((x) => x === 0) && range !== 'loopback') return 'reserved';
  if (range === 'loopback' && !policy.allowLoopback) return 'loopback';
  return 'ok';
}

/** A sentence for a refused verdict, for messages (`… is refused: link-local (…)`). */
export function verdictReason(verdict: Exclude<AddressVerdict, 'ok'>): string {
  switch (verdict) {
    case 'not-ip':
      return 'not an IP address';
    case 'unspecified':
      return 'the unspecified address (it dials this host)';
    case 'broadcast':
      return 'a broadcast address';
    case 'multicast':
      return 'a multicast address';
    case 'link-local':
      return 'a link-local address (cloud metadata services live there)';
    case 'reserved':
      return 'a reserved address that names no remote host';
    case 'loopback':
      return 'a loopback address, which only a loopback source may name';
  }
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

/**
 * The source a per-address limit counts: an IPv4 address as it is, an IPv6 address as its /64 (`2001:db8:1:2::/64`),
 * since one host is routinely handed a whole /64. IPv4-mapped IPv6 counts as its IPv4; text that is not an IP
 * literal is its own key.
 */
export function sourceKey(text: string): string {
  const canon = canonicalIp(text);
  if (canon === undefined || !canon.includes(':')) return canon ?? text;
  const parts = (ipaddr.parse(canon) as IpAddr.IPv6).parts;
  return `${parts.slice(0, 4).map((p) => p.toString(16)).join(':')}::/64`;
}
