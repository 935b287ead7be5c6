// DNS-rebinding guard for servers bound to loopback: a browser tricked into calling 127.0.0.1 through an attacker's
// DNS name still sends that name as Host, so a loopback-bound server accepts only loopback Host values. Pure.

import { createRequire } from 'node:module';

// ipaddr.js is CommonJS with `export =`: Node's ESM loader gives it only a default export, and a default import
// does not type-check without allowSyntheticDefaultImports, so load it through require.
const ipaddr = createRequire(import.meta.url)('ipaddr.js') as typeof import('ipaddr.js');
type IPv6 = InstanceType<typeof ipaddr.IPv6>;

/** True if `address` (an IP literal, possibly IPv4-mapped IPv6) is a loopback address, or the name `localhost`. */
export function isLoopbackAddress(address: string): boolean {
  const a = address.toLowerCase();
  if (a === 'localhost' || a.endsWith('.localhost')) return true;
  if (!ipaddr.isValid(a)) return false;
  let ip = ipaddr.parse(a);
  if (ip.kind() === 'ipv6' && (ip as IPv6).isIPv4MappedAddress()) ip = (ip as IPv6).toIPv4Address();
  return ip.range() === 'loopback';
}

/**
 * True if a Host header value names this machine over loopback: `localhost[:port]`, `*.localhost`,
 * `127.x.y.z[:port]`, `[::1][:port]`. Names that only resolve to loopback through DNS are refused on purpose.
 */
export function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined || host.length > 300) return false;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::([0-9]{1,5}))?$/.exec(host);
  if (m === null) return false;
  if (m[1] !== undefined) return ipaddr.IPv6.isValid(m[1]) && isLoopbackAddress(m[1]);
  const name = m[2]!.toLowerCase();
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  // Only dotted-quad IPv4 literals: ipaddr also accepts `0x7f.1` and `2130706433`, which browsers canonicalise anyway.
  return ipaddr.IPv4.isValidFourPartDecimal(name) && isLoopbackAddress(name);
}
