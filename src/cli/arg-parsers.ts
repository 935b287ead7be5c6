// Option value parsers shared by the commands: each throws commander's InvalidArgumentError with what was wrong,
// so commander prints `error: option '--x <n>' argument 'y' is invalid. <reason>` and exits 2.

import { InvalidArgumentError } from 'commander';
import { parsePeerAddress } from '../peer/peer-address.js';

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
  if (typeof p === 'string') throw new InvalidArgumentError(p);
  return [...(previous ?? []), p.key];
}
