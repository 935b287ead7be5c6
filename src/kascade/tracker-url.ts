// The rule for a .kascade `tracker` URL (and the `trackers` extension's, which may also be udp:), and the
// conventional announce URL for a file (SPEC §1).
// Used by parse.ts and by `kfetch create --tracker`.

import { KfetchError } from '../errors.js';
import { NAMED_ADDRESS_POLICY, canonicalIp, judgeAddress, verdictReason } from '../util/address-policy.js';

/**
 * Why `url` is not an acceptable tracker URL, or undefined if it is.
 * Accepted: an absolute http: or https: URL with a host and no user name or password, whose host, if an IP
 * literal, passes the address policy as a `peers` entry of the same file would (private and loopback hosts pass:
 * trackers on a LAN and in tests; unspecified, link-local, multicast … do not). A host name is judged at the dial.
 * With `udp`, also a `udp://HOST:PORT/…` URL (the UDP tracker extension, docs/spec-udp-tracker.md: only in the
 * `trackers` list, never in `tracker`, which original peers read) under the same host rule, with a port.
 */
export function trackerProblem(url: string, o: { udp?: boolean } = {}): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'is not an absolute URL';
  }
  const udp = u.protocol === 'udp:' && o.udp === true;
  if (u.protocol !== 'http:' && u.protocol !== 'https:' && !udp) {
    return o.udp === true ? `uses the scheme "${u.protocol}"; only http:, https: and udp: are allowed` : `uses the scheme "${u.protocol}"; only http: and https: are allowed`;
  }
  if (u.username !== '' || u.password !== '') return 'contains credentials (user:password@); they would be sent to the tracker and logged';
  if (u.hostname === '') return 'has no host';
  if (udp && u.port === '') return 'has no port (a udp: tracker URL needs one)';
  // The WHATWG parser already turned `2852039166`, `0xa9.254.1.1` and `[::ffff:169.254.169.254]` into canonical form
  // for http(s); a udp: host is opaque to it, so it is read as an http host would be.
  let hostname = u.hostname;
  if (udp) {
    try {
      hostname = new URL(`http://${u.host}/`).hostname;
    } catch {
      return 'has a host that is not a valid host name or address';
    }
  }
  const ip = canonicalIp(hostname.replace(/^\[(.*)\]$/, '$1'));
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
  // udp: only in the `trackers` extension (original peers read `tracker`).
  const problem = trackerProblem(base, { udp: field !== 'tracker' });
  if (problem !== undefined) throw new KfetchError('KF_E_KASCADE_TRACKER', `the tracker URL ${problem}`, { field });
  const u = new URL(base);
  if ((u.pathname === '/' || u.pathname === '') && u.search === '' && u.hash === '') {
    // A udp: URL has no origin (`null`): its scheme and host are written out.
    return `${u.protocol === 'udp:' ? `udp://${u.host}` : u.origin}/peers/${filehash.toLowerCase()}.json`;
  }
  return base;
}
