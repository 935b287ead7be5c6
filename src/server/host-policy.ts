// DNS-rebinding guard for servers bound to loopback: a browser tricked into calling 127.0.0.1 through an attacker's
// DNS name still sends that name as Host, so a loopback-bound server accepts only loopback Host values. Pure.

import { isLoopbackHost as isLoopbackName } from '../util/address-policy.js';

/**
 * True if a Host header value names this machine over loopback: `localhost[:port]`, `*.localhost`,
 * `127.x.y.z[:port]`, `[::1][:port]`. Names that only resolve to loopback through DNS are refused on purpose,
 * and so are IPv4 spellings other than dotted-quad decimal (`0x7f.1`, `2130706433`).
 */
export function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined || host.length > 300) return false;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::([0-9]{1,5}))?$/.exec(host);
  if (m === null) return false;
  return isLoopbackName(m[1] ?? m[2]!);
}
