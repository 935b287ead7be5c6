// Parses a peer address given by a user (`--peer`) or a .kascade (`peers`) — `host:port`, `[v6]:port` — into its
// parts and the canonical `host:port` key the engine uses, judging an IP literal by the address policy (loopback
// allowed: the user named it). A host name is judged at the dial, by what it resolves to. Pure.

import { NAMED_ADDRESS_POLICY, canonicalIp, judgeAddress, verdictReason } from './address-policy.js';

export interface PeerAddress {
  host: string;
  port: number;
  /** `ip:port`, `[v6]:port` or `name:port`. */
  key: string;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
/**
 * A name whose last label is all digits (`127.1`, `2852039166`) or a hex number (`0x7f.1`, `0xa9fe`) is not a DNS
 * name: getaddrinfo reads it as an IPv4 number, past the policy's IP-literal check.
 */
const NUMERIC_NAME = /(?:^|\.)(?:[0-9]+|0x[0-9a-f]*)$/i;

/** What is wrong with an address: a phrase to follow its text (which it does not repeat); `policy` when well-formed but refused. */
export interface PeerAddressProblem {
  problem: string;
  policy: boolean;
}

/** The parsed address, or what is wrong with it. */
export function parsePeerAddress(text: string): PeerAddress | PeerAddressProblem {
  const shape = (problem: string): PeerAddressProblem => ({ problem, policy: false });
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(text);
  if (m === null) return shape('is not host:port (IPv6 as [addr]:port)');
  const port = Number(m[3]);
  if (!/^[1-9][0-9]*$/.test(m[3]!) || port > 65535) return shape('has a port that is not a decimal 1..65535');
  const raw = m[1] ?? m[2]!;
  const ip = canonicalIp(raw);
  if (ip !== undefined) {
    const verdict = judgeAddress(ip, NAMED_ADDRESS_POLICY);
    if (verdict !== 'ok') return { problem: `names ${verdictReason(verdict)}; kfetch never dials it`, policy: true };
    return { host: ip, port, key: ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}` };
  }
  if (m[1] !== undefined || !HOSTNAME.test(raw) || NUMERIC_NAME.test(raw)) return shape('has a host that is not an IP address or a DNS name');
  return { host: raw.toLowerCase(), port, key: `${raw.toLowerCase()}:${port}` };
}
