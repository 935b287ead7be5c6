// Hands out requests: each usable peer, fastest first, gets requests while it has free slots — its slot count
// sized by the bytes of its own requests (PeerStats.slots) — and while the process has room (the global queue and
// the BlockSlab). Each request is the picked block plus, for a peer that takes ranges, the waiting blocks after it
// that it holds, up to one slab slot. Pure apart from `issue`, which sends the request; no I/O, no clock.

import type { Availability } from './availability.js';
import type { BlockTable } from './block-table.js';
import type { PeerStats } from './peer-stats.js';
import { pickBlock, type PickerOptions } from './picker.js';

export interface ScheduleInput {
  peers: Iterable<PeerStats>;
  table: BlockTable;
  availability: Availability;
  blockSize: number;
  /** Bytes of one slab slot: the largest request. */
  slotBytes: number;
  /** A multi-block range asks about this many ms of its peer's measured throughput (EngineLimits.requestMs; 0: a slot). */
  requestMs: number;
  /**
   * Bytes of buffer for all requests in flight (the slab). With it and requestMs, a peer whose throughput is known
   * holds at most its share of them, in proportion to its throughput among the usable peers (never less than one
   * request), so slow peers cannot hold the memory fast ones need.
   */
  bufferBytesTotal?: number;
  now: number;
  /** Whether the process can take one more request at all (global queue, a slot or piece of the block size). */
  room: () => boolean;
  /** Whether the slab can give `bytes` of buffer now. */
  canBuffer: (bytes: number) => boolean;
  picker: PickerOptions;
  /** Whether a request at this peer counts as a copy in the endgame (see PickerState). */
  countsAsCopy: (peer: string) => boolean;
}

/** Sends a request for `run` to `peer` with `bufferBytes` of slab; `swarmBytesPerMs` (best rate seen) sets a new peer's deadline. */
export type Issue = (run: number[], peer: PeerStats, bufferBytes: number, swarmBytesPerMs: number | undefined) => void;

/** Issue every request there is room for now; returns how many went out. */
export function schedule(s: ScheduleInput, issue: Issue): number {
  const order: PeerStats[] = [];
  let best: number | undefined;
  for (const p of s.peers) {
    if (p.bytesPerMs !== undefined && (best === undefined || p.bytesPerMs > best)) best = p.bytesPerMs;
    if (p.usable(s.now) && s.availability.held(p.addr) !== undefined) order.push(p);
  }
  order.sort((a, b) => b.bytesPerSecond - a.bytesPerSecond);
  // One picker view per round: issuing requests changes what waits and flies, not what remains to be written.
  const picking = {
    availability: s.availability,
    waiting: s.table.waiting,
    inFlight: s.table.requests,
    remaining: s.table.remaining,
    isNeeded: (j: number) => s.table.isNeeded(j),
    countsAsCopy: s.countsAsCopy,
  };
  const share = bufferShares(s, order);
  let issued = 0;
  let progress = true;
  while (progress && s.room()) {
    progress = false;
    for (const p of order) {
      if (!s.room()) break;
      if (p.inFlight > 0 && p.inFlightBytes >= share(p)) continue;
      // Slots from the bytes this peer's requests carry: one block from a single-block peer, else what its
      // requests have been (a run of up to a slot).
      const bytes = p.multiBlock === false ? s.blockSize : (p.requestBytes ?? s.slotBytes);
      if (p.inFlight >= p.slots(bytes, s.now)) continue;
      const i = pickBlock(p.addr, picking, s.picker);
      if (i === undefined) continue;
      const run = runFrom(s, i, p);
      const buffer = bufferBytes(s, run, p);
      if (!s.canBuffer(buffer)) continue;
      issue(run, p, buffer, best);
      issued++;
      progress = true;
    }
  }
  return issued;
}

/** Headroom over a peer's proportional share of the buffer: throughput estimates lag, and a share is not a quota to fill exactly. */
const SHARE_HEADROOM = 1.25;

/**
 * Each peer's share of the buffer memory in flight: in proportion to its measured throughput among `peers` (with
 * headroom), once requestMs and the total are set and at least two peers are measured; otherwise unbounded.
 */
function bufferShares(s: Pick<ScheduleInput, 'requestMs' | 'bufferBytesTotal'>, peers: readonly PeerStats[]): (p: PeerStats) => number {
  const unbounded = (): number => Infinity;
  if (s.requestMs <= 0 || s.bufferBytesTotal === undefined) return unbounded;
  let total = 0;
  let measured = 0;
  for (const p of peers) {
    const t = p.throughputBytesPerMs;
    if (t !== undefined && t > 0) {
      total += t;
      measured++;
    }
  }
  if (measured < 2) return unbounded;
  const budget = s.bufferBytesTotal;
  return (p) => {
    const t = p.throughputBytesPerMs;
    return t === undefined || t <= 0 ? Infinity : (budget * SHARE_HEADROOM * t) / total;
  };
}

/**
 * Buffer space a request for `run` takes: a whole slot, except a block from a peer that takes only single blocks,
 * which gets a piece of a slot its own size. (Pieces for the odd single block asked of a multi-block peer cost
 * whole slots for its next runs: measured ~10% more CPU per GiB from 4 HTTP mirrors.)
 */
export function bufferBytes(s: Pick<ScheduleInput, 'blockSize' | 'slotBytes'>, run: readonly number[], peer: PeerStats): number {
  if (run.length === 1 && peer.multiBlock === false) return s.blockSize;
  // A run cut short by its peer's speed (runBlocks) takes a piece its size; one cut short by a written or absent
  // block keeps a whole slot.
  return run.length < runBlocks(s, peer) ? s.slotBytes : Math.min(s.slotBytes, run.length * s.blockSize);
}

/**
 * Blocks in a full run for `peer`: a slot's worth, or fewer for a peer whose throughput (its per-request rate until
 * that is measured) covers less in requestMs; one block for a peer not measured at all, so a slow peer's first
 * requests do not hold whole slots for long (its first answer measures it).
 */
export function runBlocks(s: Pick<ScheduleInput, 'blockSize' | 'slotBytes'> & Partial<Pick<ScheduleInput, 'requestMs'>>, peer: PeerStats): number {
  const slot = Math.max(1, Math.floor(s.slotBytes / s.blockSize));
  if (s.requestMs === undefined || s.requestMs <= 0) return slot;
  const t = peer.throughputBytesPerMs ?? peer.bytesPerMs;
  if (t === undefined) return 1;
  return Math.min(slot, Math.max(1, Math.ceil((t * s.requestMs) / s.blockSize)));
}

/**
 * The blocks to ask `peer` for around the picked block `i`: with a peer that takes multi-block ranges (kfetch
 * seeders, plain HTTP servers), a run of waiting blocks it holds, up to one slot's worth — one request and one
 * worker task instead of several. The run starts at the slot-aligned boundary below `i` when the blocks between
 * are waiting too, so a pick inside a free stretch does not cut it into two short runs (issue 11: with the picker's
 * random low window, 1 GiB from mirrors took ~1,600 requests of 0.64 MiB on average instead of 1,024 of 1 MiB).
 * A peer whose measured throughput covers less than a slot in `requestMs` gets shorter runs (`runBlocks`).
 * Duplicates in the endgame stay single blocks.
 */
export function runFrom(s: Pick<ScheduleInput, 'table' | 'availability' | 'blockSize' | 'slotBytes'> & Partial<Pick<ScheduleInput, 'requestMs'>>, i: number, peer: PeerStats): number[] {
  if (peer.multiBlock === false || !s.table.isWaiting(i)) return [i];
  const held = s.availability.held(peer.addr)!;
  const max = runBlocks(s, peer);
  const n = s.table.blockCount;
  let first = i;
  const aligned = i - (i % max);
  while (first > aligned && s.table.isWaiting(first - 1) && held.has(first - 1)) first--;
  const run = [first];
  for (let j = first + 1; j < n && run.length < max && s.table.isWaiting(j) && held.has(j); j++) run.push(j);
  return run;
}
