// Whom a download believes. A block that fails its MD5 bans its sender at once (blame is certain with per-block
// hashes); failed requests earn strikes and back-off until too many drop the peer; "not here" for a block the peer
// (or the tracker for it) claimed is a small strike, and a peer only assumed to hold everything that serves
// nothing is taken to hold nothing. Decisions on PeerStats and the availability map; the session records and
// reports them. No I/O.

import { isKfetchError, type KfetchError } from '../errors.js';
import { Bitfield } from '../util/bitfield.js';
import type { Availability } from './availability.js';
import type { PeerStats } from './peer-stats.js';

/** "Not here" answers from a peer only assumed to hold everything, with no block served, before it counts as empty. */
export const NOT_HERE_LIMIT = 16;

/** What a failed request means. */
export type FailureVerdict =
  /** We cancelled it (another copy won, the session stops): nothing against the peer. */
  | { kind: 'ours' }
  /** Our own trouble (disk, store, worker, a bug): it ends the session. */
  | { kind: 'fatal' }
  /** The peer's trouble, a warning; `dropped` when the peer is no longer asked (with the reason). */
  | { kind: 'peer'; err: KfetchError; dropped?: string };

export interface FailedRequest {
  err: unknown;
  peer: PeerStats;
  /** The blocks asked for (a multi-block refusal means single blocks from now on). */
  runLength: number;
  block: number;
  /** Aborted by us, not by its deadline. */
  cancelled: boolean;
  availability: Availability;
  now: number;
  random: () => number;
}

/** Judge a failed request and apply it to the peer's stats and the availability map. */
export function judgeFailure(f: FailedRequest): FailureVerdict {
  const { err, peer, availability } = f;
  if (f.cancelled) return { kind: 'ours' };
  if (!isKfetchError(err)) return { kind: 'fatal' };
  if (err.code === 'KF_E_DISK_FULL' || err.code === 'KF_E_IO' || err.code === 'KF_E_WORKER' || err.code.startsWith('KF_E_STATE')) {
    return { kind: 'fatal' };
  }
  // A 206 whose own head announces fewer bytes than asked: the peer (a plain HTTP server with a shorter file, say)
  // holds only part of the range. Like a 404/416 it is an answer about what it has, not a broken connection.
  const partial = err.code === 'KF_E_PEER_SHORT' && typeof err.detail?.announcedBytes === 'number';
  if ((err.code === 'KF_E_PEER_LIED' || partial) && f.runLength > 1) {
    // An original peer (a headerless 404 for anything but one block; a strict one 416) or a partial one: single
    // blocks from now on.
    peer.multiBlock = false;
    return { kind: 'peer', err };
  }
  if (err.code === 'KF_E_PEER_LIED' || partial) {
    // Not there after all. A strike only if it (or the tracker for it) said it was: a peer merely assumed to hold
    // everything did not lie.
    availability.dropBlock(peer.addr, f.block);
    if (!peer.assumedHeld) peer.strikes++;
    else if (peer.blocksOk === 0 && ++peer.notHere >= NOT_HERE_LIMIT) {
      // Assumed to hold everything, yet it has served nothing (a web server without the file, an original still
      // downloading): it holds nothing until a bitfield or the tracker says otherwise — not one request per block.
      peer.assumedHeld = false;
      availability.setPeer(peer.addr, new Bitfield(availability.blockCount));
      return { kind: 'peer', err, dropped: `answered "not here" ${peer.notHere} times and served no block` };
    }
    return { kind: 'peer', err };
  }
  peer.failure(f.now, f.random);
  if (peer.banned === undefined) return { kind: 'peer', err };
  availability.removePeer(peer.addr);
  return { kind: 'peer', err, dropped: peer.banned };
}

/** A block from `peer` failed its MD5: ban it and forget what it holds. True for the first ban (report it once). */
export function banForBadBlock(peer: PeerStats, reason: string, availability: Availability): boolean {
  const first = peer.banned === undefined;
  peer.ban(reason);
  availability.removePeer(peer.addr);
  return first;
}
