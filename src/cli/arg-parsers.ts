// Option value parsers shared by the commands: each throws commander's InvalidArgumentError with what was wrong,
// so commander prints `error: option '--x <n>' argument 'y' is invalid. <reason>` and exits 2.

import { InvalidArgumentError } from 'commander';
import { parsePeerAddress } from '../util/peer-address.js';
import { checkCidr } from '../peer/access-list.js';

/** A canonical decimal integer in [min, max]. */
export function intArg(min: number, max: number): (v: string) => number {
  return (v: string) => {
    if (!/^(0|[1-9][0-9]{0,15})$/.test(v) || Number(v) < min || Number(v) > max) {
      throw new InvalidArgumentError(`must be an integer ${min}..${max}`);
    }
    return Number(v);
  };
}

/** A decimal number of seconds in (0, max]. */
export function secondsArg(max: number): (v: string) => number {
  return (v: string) => {
    if (!/^[0-9]+(\.[0-9]+)?$/.test(v) || !(Number(v) > 0) || Number(v) > max) {
      throw new InvalidArgumentError(`must be a number of seconds, > 0 and at most ${max}`);
    }
    return Number(v);
  };
}

/** Seconds where 0 means "never". */
export function secondsOrZeroArg(max: number): (v: string) => number {
  return (v: string) => (v === '0' ? 0 : secondsArg(max)(v));
}

/** A repeatable `--peer host:port`; collects into an array of canonical `host:port` keys. */
export function peerArg(v: string, previous: string[] | undefined): string[] {
  const p = parsePeerAddress(v);
  if ('problem' in p) throw new InvalidArgumentError(`"${v}" ${p.problem}`);
  return [...(previous ?? []), p.key];
}

const RATE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };

/** A rate in bytes per second: `0` (no limit), `500000`, `512K`, `10M`, `1.5GiB`, optionally ending in `/s` (K = 1024). */
export function rateArg(v: string): number {
  const m = /^([0-9]{1,12}(?:\.[0-9]{1,6})?)\s*([a-zA-Z]{0,3})(?:\/s)?$/.exec(v.trim());
  const unit = m === null ? undefined : RATE_UNITS[m[2]!.toLowerCase()];
  if (m === null || unit === undefined) throw new InvalidArgumentError('must be bytes per second, e.g. 0 (no limit), 512K, 10M or 1G');
  const bytes = Math.round(Number(m[1]) * unit);
  if (bytes > 0 && bytes < 1024) throw new InvalidArgumentError('must be 0 (no limit) or at least 1K per second');
  return bytes;
}

/** A repeatable address or CIDR block (`127.0.0.1`, `10.0.0.0/8`, `::1`); collects the canonical strings. */
export function cidrArg(v: string, previous: string[] | undefined): string[] {
  const err = checkCidr(v);
  if (err !== undefined) throw new InvalidArgumentError(err);
  return [...(previous ?? []), v];
}

/** A repeatable DNS host name (`box.example.org`), lower-cased; no port, no IP literal (those are always accepted). */
export function hostNameArg(v: string, previous: string[] | undefined): string[] {
  const name = v.toLowerCase().replace(/\.$/, '');
  if (!/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(name)) {
    throw new InvalidArgumentError('must be a DNS host name such as box.example.org (no port, no scheme)');
  }
  return [...(previous ?? []), name];
}

/** A web origin (`https://dash.example:8443`): scheme, host and optional port, nothing else. */
export function originArg(v: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new InvalidArgumentError('must be an origin such as https://dash.example:8443');
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.origin !== v.replace(/\/$/, '') || u.username !== '' || u.password !== '') {
    throw new InvalidArgumentError('must be an origin such as https://dash.example:8443 (scheme://host[:port], no path)');
  }
  return u.origin;
}
