// The rule for a .kascade `tracker` URL, and the conventional announce URL for a file (SPEC §1).
// Used by parse.ts and by `kfetch create --tracker`.

import { KfetchError } from '../errors.js';

/** Policy knobs for tracker URLs. */
export interface TrackerPolicy {
  /** Allow link-local hosts (169.254.0.0/16 — cloud metadata lives there — and fe80::/10). Default false. */
  allowLinkLocal?: boolean;
}

/**
 * True for a WHATWG-canonical URL hostname in 169.254.0.0/16, fe80::/10 or IPv4-mapped 169.254.0.0/16.
 * The URL parser already turned `2852039166`, `0xa9.254.1.1` and `[::ffff:169.254.169.254]` into canonical form.
 */
function isLinkLocal(hostname: string): boolean {
  if (/^169\.254\.\d+\.\d+$/.test(hostname)) return true;
  if (!hostname.startsWith('[')) return false;
  const v6 = hostname.slice(1, -1);
  return /^fe[89ab][0-9a-f]:/.test(v6) || /^::ffff:a9fe:[0-9a-f]{1,4}$/.test(v6);
}

/**
 * Why `url` is not an acceptable tracker URL, or undefined if it is.
 * Accepted: an absolute http: or https: URL with a host and no user name or password. Private and loopback
 * hosts are allowed (trackers on a LAN and in tests); link-local ones only with `allowLinkLocal`.
 */
export function trackerProblem(url: string, policy: TrackerPolicy = {}): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'is not an absolute URL';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `uses the scheme "${u.protocol}"; only http: and https: are allowed`;
  if (u.username !== '' || u.password !== '') return 'contains credentials (user:password@); they would be sent to the tracker and logged';
  if (u.hostname === '') return 'has no host';
  if (policy.allowLinkLocal !== true && isLinkLocal(u.hostname)) {
    return `points at the link-local address ${u.hostname} (cloud metadata services live there)`;
  }
  return undefined;
}

/**
 * The announce URL `kfetch create --tracker BASE` writes: a base with no path (or `/`) becomes
 * `<origin>/peers/<filehash>.json` (SPEC §1 convention); a URL with a path or query is kept as given.
 * Throws KF_E_KASCADE_TRACKER (field `tracker`) for an unacceptable base.
 */
export function trackerUrlFor(base: string, filehash: string, policy: TrackerPolicy = {}): string {
  const problem = trackerProblem(base, policy);
  if (problem !== undefined) throw new KfetchError('KF_E_KASCADE_TRACKER', `the tracker URL ${problem}`, { field: 'tracker' });
  const u = new URL(base);
  if (u.pathname === '/' && u.search === '' && u.hash === '') return `${u.origin}/peers/${filehash.toLowerCase()}.json`;
  return base;
}
