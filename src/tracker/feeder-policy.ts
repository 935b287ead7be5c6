// Which peers the tracker marks `feeder: true` in its replies (SPEC §2: "peers the tracker's operator vouches
// for"). Original 2015 Python peers download only from feeders (SPEC §6), so a tracker that marks none starves
// them. Pure: the operator's flags in, a decision per listed peer out. Used by swarm-registry.ts and
// `kfetch tracker` (--feeders, --feeder).
//
// What each mode trusts:
// - `complete` (default): a peer whose last announce said progress 1, plus every operator-listed address. This
//   trusts the peer's own word: anyone can announce progress=1. Original peers check each block's MD5 against the
//   .kascade, so a lying "feeder" costs them failed blocks, not a wrong file.
// - `listed`: only the addresses the operator named (--feeder ip:port), whatever they announce.
// - `none`: never (the pre-issue-9 behaviour; original Python peers then find nobody to download from).

import { KfetchError } from '../errors.js';
import { canonicalIp } from '../util/address-policy.js';
import { peerKey } from '../peer/peer-info.js';

export type FeederMode = 'complete' | 'listed' | 'none';

export const FEEDER_MODES: readonly FeederMode[] = ['complete', 'listed', 'none'];

export interface FeederPolicy {
  mode: FeederMode;
  /** Operator-listed peers as canonical `ip:port` / `[v6]:port` keys (peer-info.ts peerKey). */
  listed: ReadonlySet<string>;
}

/** The default policy: peers that announced complete are feeders, nobody is listed. */
export const DEFAULT_FEEDER_POLICY: FeederPolicy = { mode: 'complete', listed: new Set() };

/**
 * Parse an operator's `ip:port` (IPv6 as `[v6]:port`) into the canonical key peers are listed under. IP literals
 * only: the tracker lists peers by the address they announced from, never by a host name.
 * @throws KfetchError KF_E_USAGE naming `--feeder`.
 */
export function parseFeederAddress(text: string): string {
  const m = /^(?:\[([^\]]{1,45})\]|([0-9.]{7,15})):([0-9]{1,5})$/.exec(text);
  const bad = (why: string): KfetchError => new KfetchError('KF_E_USAGE', `--feeder ${JSON.stringify(text.slice(0, 80))}: ${why}`, { field: '--feeder' });
  if (m === null) throw bad('must be ip:port (IPv6 as [addr]:port)');
  const raw = m[1] ?? m[2]!;
  const ip = canonicalIp(raw);
  if (ip === undefined) throw bad('not an IPv4 or IPv6 address');
  // An IPv4-mapped v6 literal canonicalises to plain IPv4; a bare dotted quad inside brackets is not v6.
  if (m[1] !== undefined && !raw.includes(':')) throw bad('brackets are for IPv6 only');
  const port = Number(m[3]);
  if (!/^[1-9][0-9]*$/.test(m[3]!) || port > 65535) throw bad('port must be 1..65535');
  return peerKey(ip, port);
}

/**
 * Build a policy from the flags. @throws KfetchError KF_E_USAGE for an unknown mode, for listed addresses in
 * mode `none` (they would be ignored, which is surely not what the operator meant) and for `listed` with none.
 */
export function makeFeederPolicy(mode: string, listed: readonly string[] = []): FeederPolicy {
  if (!(FEEDER_MODES as readonly string[]).includes(mode)) {
    throw new KfetchError('KF_E_USAGE', `--feeders must be one of ${FEEDER_MODES.join(', ')}`, { field: '--feeders' });
  }
  const keys = new Set(listed.map(parseFeederAddress));
  if (mode === 'none' && keys.size > 0) {
    throw new KfetchError('KF_E_USAGE', '--feeder cannot be combined with --feeders none', { field: '--feeder' });
  }
  if (mode === 'listed' && keys.size === 0) {
    throw new KfetchError('KF_E_USAGE', '--feeders listed needs at least one --feeder ip:port', { field: '--feeder' });
  }
  return { mode: mode as FeederMode, listed: keys };
}

/** Whether the tracker reports this peer (canonical ip, port, last announced progress) as a feeder. */
export function isFeeder(policy: FeederPolicy, ip: string, port: number, progress: number): boolean {
  switch (policy.mode) {
    case 'none':
      return false;
    case 'listed':
      return policy.listed.has(peerKey(ip, port));
    case 'complete':
      // Most trackers list nobody: then no key is built (it was a string and a hash per listed peer, per reply).
      return progress === 1 || (policy.listed.size > 0 && policy.listed.has(peerKey(ip, port)));
  }
}
