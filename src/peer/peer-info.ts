// A remote peer as a tracker describes it (SPEC §2 reply entry). Produced by the tracker reply parser,
// consumed by the download engine's peer list.

/** One peer from a tracker reply, already validated (IP literal, port 1..65535). */
export interface PeerInfo {
  /** An IP literal in canonical form (IPv4 dotted decimal, IPv6 RFC 5952); never a host name. */
  ip: string;
  port: number;
  /** Fraction of the file held, 0..1. */
  progress: number;
  /** When the tracker last heard from the peer (ISO 8601 UTC), if it said. */
  updated?: string;
  /** The tracker's operator vouches for this peer. */
  feeder: boolean;
  /** Extension: the peer's bitfield (SPEC §4, lowercase hex) for block size `blocksize`. */
  blocks?: string;
  blocksize?: number;
  /**
   * Extension (issue 14): the port of the peer's binary peer wire (docs/spec-peer-wire.md), 1..65535, on the same
   * address `ip`. The tracker passes on what the peer announced; a client only ever tries it, HTTP on any doubt.
   */
  wire?: number;
}

/** The `ip:port` key peers are deduplicated by (IPv6 in brackets). */
export function peerKey(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}
