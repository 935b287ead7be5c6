// Fits an announce reply's peer list into a byte budget (issue 10): bitfields are left out first, then peers, so
// no reply grows with what peers announced and none exceeds what kfetch's clients read. Pure; used by
// tracker-server.ts for every peer list it sends (replies and the arrays original clients get with a refusal).

import type { PeerInfo } from '../peer/peer-info.js';

/** Bytes a `blocks`/`blocksize` pair adds to an entry: `,"blocks":"<hex>","blocksize":<n>`. */
function blocksBytes(hex: string, blockSize: number): number {
  return 25 + hex.length + String(blockSize).length;
}

/**
 * The peers to send so that `JSON.stringify(result)` is at most `budgetBytes`: every peer without its bitfield as
 * long as they fit (in the given, random, order), then each bitfield that still fits. Entries are ASCII (IP
 * literals, ISO times, hex), so characters are bytes.
 */
export function fitReply(peers: readonly PeerInfo[], budgetBytes: number): PeerInfo[] {
  const out: PeerInfo[] = [];
  const blocks: Array<PeerInfo['blocks']> = [];
  let used = 2; // the brackets
  for (const p of peers) {
    // SPEC §2's key order: ip, port, progress, updated, feeder (then the extension keys). `wire` (issue 14, at most
    // 13 bytes) is part of the entry's cost: a peer is sent with its wire port or not at all.
    const bare: PeerInfo = { ip: p.ip, port: p.port, progress: p.progress, ...(p.updated === undefined ? {} : { updated: p.updated }), feeder: p.feeder };
    if (p.wire !== undefined) bare.wire = p.wire;
    const cost = Buffer.byteLength(JSON.stringify(bare)) + (out.length > 0 ? 1 : 0);
    if (used + cost > budgetBytes) break;
    used += cost;
    out.push(bare);
    blocks.push(p.blocksize === undefined ? undefined : p.blocks);
  }
  for (let i = 0; i < out.length; i++) {
    const hex = blocks[i];
    const size = peers[i]!.blocksize;
    if (hex === undefined || size === undefined) continue;
    const cost = blocksBytes(hex, size);
    if (used + cost > budgetBytes) continue;
    used += cost;
    out[i]!.blocks = hex;
    out[i]!.blocksize = size;
  }
  return out;
}
