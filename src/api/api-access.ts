// Who may use the control API: the remote address (loopback, or --api-allow) and the Host header (DNS rebinding:
// an IP literal, localhost, or a name given with --api-host). Pure. Used by api-server.ts.

import { canonicalIp } from '../util/address-policy.js';

/** Whether a Host header value is one the API answers: an IP literal, `localhost` (or `*.localhost`), or a listed name. */
export function apiHostAllowed(host: string | undefined, names: ReadonlySet<string>): boolean {
  // HTTP/1.0 without Host: a plain client on an allowed address, not a browser (browsers always send Host).
  if (host === undefined) return true;
  if (host.length > 300) return false;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::([0-9]{1,5}))?$/.exec(host);
  if (m === null) return false;
  if (m[1] !== undefined) return canonicalIp(m[1]) !== undefined;
  const name = m[2]!.toLowerCase().replace(/\.$/, '');
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  // Dotted-quad decimal only: other IPv4 spellings (0x7f.1, 2130706433) are names to a browser's resolver.
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return canonicalIp(name) !== undefined;
  return names.has(name);
}
