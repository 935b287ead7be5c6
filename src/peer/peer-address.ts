// Parses a peer address given by a user or a .kascade (`host:port`, `[v6]:port`) into its parts and the
// canonical `host:port` key the engine uses. Pure.

import { canonicalIp } from './address-policy.js';

export interface PeerAddress {
  host: string;
  port: number;
  /** `ip:port`, `[v6]:port` or `name:port`. */
  key: string;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** The parsed address, or a sentence saying what is wrong with it. */
export function parsePeerAddress(text: string): PeerAddress | string {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(text);
  if (m === null) return `"${text}" is not host:port (IPv6 as [addr]:port)`;
  const port = Number(m[3]);
  if (!/^[1-9][0-9]*$/.test(m[3]!) || port > 65535) return `port in "${text}" must be 1..65535`;
  const raw = m[1] ?? m[2]!;
  const ip = canonicalIp(raw);
  if (ip !== undefined) return { host: ip, port, key: ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}` };
  if (m[1] !== undefined || !HOSTNAME.test(raw)) return `host in "${text}" is not an IP address or a host name`;
  return { host: raw.toLowerCase(), port, key: `${raw.toLowerCase()}:${port}` };
}
