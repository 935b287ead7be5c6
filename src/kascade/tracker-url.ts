// The rule for a .kascade `tracker` URL, and the conventional announce URL for a file (SPEC §1).
// Used by parse.ts and by `kfetch create --tracker`.

import { KfetchError } from '../errors.js';
import { NAMED_ADDRESS_POLICY, canonicalIp, judgeAddress, verdictReason } from '../util/address-policy.js';

/**
 * Why `url` is not an acceptable tracker URL, or undefined if it is.
 * Accepted: an absolute http: or https: URL with a host and no user name or password, whose host, if an IP
 * literal, passes the address policy as a `peers` entry of the same file would (private and loopback hosts pass:
 * trackers on a LAN and in tests; unspecified, link-local, multicast … do not). A host name is judged at the dial.
 */
export function trackerProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'is not an absolute URL';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `uses the scheme "${u.protocol}"; only http: and https: are allowed`;
  if (u.username !== '' || u.password !== '') return 'contains credentials (user:password@); they would be sent to the tracker and logged';
  if (u.hostname === '') return 'has no host';
  // The WHATWG parser already turned `2852039166`, `0xa9.254.1.1` and `[::ffff:169.254.169.254]` into canonical form.
  const ip = canonicalIp(u.hostname.replace(/^\[(.*)\]$/, '$1'));
  const verdict = ip === undefined ? 'ok' : judgeAddress(ip, NAMED_ADDRESS_POLICY);
  if (verdict !== 'ok') return `points at ${u.hostname}, ${verdictReason(verdict)}; kfetch never dials it`;
  return undefined;
}

/**
 * The announce URL `kfetch create --tracker BASE` writes: a base with no path (or `/`) becomes
 * `<origin>/peers/<filehash>.json` (SPEC §1 convention); a URL with a path or query is kept as given.
 * Throws KF_E_KASCADE_TRACKER (field `field`: `tracker`, or `trackers[i]` for a failover tracker) for an
 * unacceptable base.
 */
export function trackerUrlFor(base: string, filehash: string, field = 'tracker'): string {
  const problem = trackerProblem(base);
  if (problem !== undefined) throw new KfetchError('KF_E_KASCADE_TRACKER', `the tracker URL ${problem}`, { field });
  const u = new URL(base);
  if (u.pathname === '/' && u.search === '' && u.hash === '') return `${u.origin}/peers/${filehash.toLowerCase()}.json`;
  return base;
}
