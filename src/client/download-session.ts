// One download: wires the availability map, the picker, peer stats, the block client, the worker pool, the
// checkpointer, the tracker announcer and the served file together, and runs until the file is complete and its
// SHA-256 checked. The decisions live in the modules it wires; this file only moves events between them.

import type PQueue from 'p-queue';
import type { Logger } from 'pino';
import { KfetchError, fromFsError, isKfetchError } from '../errors.js';
import type { HashPool } from '../hashing/pool.js';
import { verifyFile } from '../hashing/verify-file.js';
import type { Kascade } from '../kascade/kascade.js';
import type { BlockClient } from '../peer/block-client.js';
import { isLoopbackHost } from '../util/address-policy.js';
import { peerKey, type PeerInfo } from '../peer/peer-info.js';
import { VerifiedServedFile, type Library } from '../server/library.js';
import type { DataFile } from '../store/data-file.js';
import type { DownloadRow, StateDb } from '../store/state-db.js';
import { Announcer } from '../tracker/announcer.js';
import { Bitfield } from '../util/bitfield.js';
import { Availability } from './availability.js';
import type { BlockSlab, Slot } from './block-slab.js';
import { Checkpointer, dataFileFacts } from './checkpointer.js';
import { crashArmed, crashPoint } from './crash-point.js';
import type { EventSink } from './events.js';
import type { EngineLimits } from './engine-limits.js';
import { PeerStats } from './peer-stats.js';
import { pickBlock } from './picker.js';
import { PrefixHasher } from './prefix-hasher.js';
import { RarityBuckets } from './rarity-buckets.js';

/** Consecutive worker failures that end a session (one is retried: piscina replaces a crashed thread). */
const MAX_WORKER_FAILURES = 3;
/** "Not here" answers from a peer only assumed to hold everything, with no block served, before it counts as empty. */
const NOT_HERE_LIMIT = 16;

export interface SessionDeps {
  db: StateDb;
  workers: HashPool;
  client: BlockClient;
  /** The process-wide request queue: its concurrency is the global in-flight limit. */
  queue: PQueue;
  /** Block buffers, one per request in flight (slots at least this session's block size). */
  slab: BlockSlab;
  log: Logger;
  emit: EventSink;
  limits: EngineLimits;
  /** Where verified blocks are served from while downloading (undefined: not serving). */
  library?: Library;
  /** The port our block server listens on (announced to the tracker; also used to skip ourselves). */
  ourPort?: number;
  random?: () => number;
}

export interface SessionInit {
  row: DownloadRow;
  kascade: Kascade;
  dataFile: DataFile;
  /** Blocks trusted at start (checkpointed, re-verified where needed). */
  durable: Bitfield;
  /** Peers known before the tracker answers, with where each came from. */
  peers: readonly { addr: string; source: string }[];
  /** The mtime (whole seconds) workers keep on the data file, so outside changes show at resume. */
  mtimeSec: number;
}

export type SessionResult = { outcome: 'complete'; seconds: number } | { outcome: 'stopped' };

export class DownloadSession {
  private readonly d: SessionDeps;
  private readonly s: SessionInit;
  private readonly k: Kascade;
  private readonly blockSize: number;
  private readonly n: number;
  private readonly availability: Availability;
  private readonly peers = new Map<string, PeerStats>();
  private readonly written: Bitfield;
  /** Needed blocks not in flight, by rarity. */
  private readonly waiting: RarityBuckets;
  private readonly writing = new Set<number>();
  private readonly inFlight = new Map<number, Set<string>>();
  private readonly controllers = new Map<number, Set<AbortController>>();
  /** Whether a request's controller belongs to a single-block request (the endgame aborts only those). */
  private readonly single = new Map<AbortController, boolean>();
  private readonly served: VerifiedServedFile;
  private readonly checkpointer: Checkpointer;
  /** The whole-file SHA-256 over the verified prefix, kept up to date while downloading (finalCheck uses it). */
  private readonly prefix: PrefixHasher;
  private announcer: Announcer | undefined;
  private received = 0;
  private lastProgressAt = performance.now();
  private fatal: KfetchError | undefined;
  private wake: (() => void) | undefined;
  private stopping = false;
  private workerFailures = 0;
  private ticks = 0;
  private readonly random: () => number;

  constructor(deps: SessionDeps, init: SessionInit) {
    this.d = deps;
    this.s = init;
    this.k = init.kascade;
    this.blockSize = init.row.blockSize;
    this.n = init.row.blockCount;
    this.random = deps.random ?? Math.random;
    this.availability = new Availability(this.n, (i, count) => this.waiting.update(i, count));
    this.written = new Bitfield(this.n, init.durable.toBytes());
    this.waiting = new RarityBuckets(this.n);
    for (let i = 0; i < this.n; i++) if (!this.written.has(i)) this.waiting.add(i, 0);
    this.served = new VerifiedServedFile(this.k, init.dataFile, init.durable, this.blockSize);
    this.checkpointer = new Checkpointer({
      db: deps.db,
      downloadId: init.row.id,
      dataFile: init.dataFile,
      durable: init.durable,
      mtimeMs: init.mtimeSec * 1000,
      everyBlocks: deps.limits.checkpointBlocks,
      everyMs: deps.limits.checkpointMs,
      bytesFetched: () => init.row.bytesFetched + this.received,
      onCheckpoint: (blocks) => {
        for (const b of blocks) this.served.markHeld(b.idx);
        this.emitProgress();
      },
      onError: (err) => this.fail(err),
    });
    this.prefix = new PrefixHasher({
      size: init.row.filesize,
      blockSize: this.blockSize,
      isVerified: (i) => this.written.has(i),
      read: (buf, length, position) => init.dataFile.read(buf, length, position),
    });
  }

  get id(): number {
    return this.s.row.id;
  }

  /** Download until complete (resolves `complete`), stopped by `signal` (resolves `stopped`), or failed (throws). */
  async run(signal: AbortSignal): Promise<SessionResult> {
    const t0 = performance.now();
    const { row, dataFile } = this.s;
    this.d.emit({
      event: 'start', id: row.id, name: row.filename, filehash: row.filehash, size: row.filesize, blocks: this.n,
      blockSize: this.blockSize, have: this.s.durable.count, path: dataFile.path,
    });
    this.d.library?.add(this.served);
    this.checkpointer.start();
    this.prefix.advance(); // blocks trusted at start: their prefix is hashed in the background
    for (const p of this.s.peers) this.addPeer(p.addr, p.source, undefined, signal);
    this.remember(this.s.peers);
    this.startAnnouncer();
    const onAbort = (): void => this.wake?.();
    signal.addEventListener('abort', onAbort);
    // Ref'd on purpose: while the session runs, this timer keeps the process alive even when every peer is
    // backing off and nothing else is pending (cleared in `finally`).
    const ticker = setInterval(() => this.tick(), 500);
    try {
      let hashSeconds = 0;
      for (let round = 0; ; round++) {
        while (!signal.aborted && this.fatal === undefined && this.written.count < this.n) {
          this.schedule(signal);
          await new Promise<void>((res) => (this.wake = res));
          this.wake = undefined;
        }
        this.stopping = true;
        this.abortAll();
        if (this.fatal !== undefined) throw this.fatal;
        // Let in-flight writes finish (their results are discarded if not checkpointed), then checkpoint.
        await this.drain();
        await this.checkpointer.flush();
        if (signal.aborted || this.written.count < this.n) {
          await this.checkpointer.stop();
          this.d.db.setStatus(row.id, 'stopped');
          return { outcome: 'stopped' };
        }
        const h0 = performance.now();
        const ok = await this.finalCheck(signal, round);
        hashSeconds += (performance.now() - h0) / 1000;
        if (ok) break;
        this.stopping = false; // blocks that failed re-verification are missing again: fetch them
      }
      await this.checkpointer.stop();
      const seconds = (performance.now() - t0) / 1000;
      this.d.db.setStatus(row.id, 'complete');
      this.d.emit({
        event: 'done', id: row.id, name: row.filename, path: dataFile.path, size: row.filesize, filehash: row.filehash,
        seconds, hashSeconds, bytesPerSecond: this.received / Math.max(seconds, 1e-3),
      });
      return { outcome: 'complete', seconds };
    } catch (err) {
      this.stopping = true;
      this.abortAll();
      await this.drain();
      if (signal.aborted && this.fatal === undefined) {
        // Interrupted (for instance during the final hash): what was written is checkpointed, nothing failed.
        await this.checkpointer.stop().catch(() => undefined);
        this.d.db.setStatus(row.id, 'stopped');
        return { outcome: 'stopped' };
      }
      const e = isKfetchError(err) ? err : fromFsError(err, dataFile.path, 'download failed');
      // Keep what is safe: a final checkpoint of what was written, unless the store itself is what failed.
      if (e.code !== 'KF_E_STATE_CORRUPT') await this.checkpointer.stop().catch(() => undefined);
      try {
        this.d.db.setStatus(row.id, e.code === 'KF_E_DISK_FULL' ? 'stopped' : 'failed', `${e.code}: ${e.message}`);
      } catch {
        // the store failing too changes nothing about the error we report
      }
      throw e;
    } finally {
      clearInterval(ticker);
      signal.removeEventListener('abort', onAbort);
      await this.prefix.stop(); // no read of the data file outlives the session
      await this.announcer?.stop();
    }
  }

  private startAnnouncer(): void {
    if (this.d.ourPort === undefined && this.k.tracker === '') return;
    this.announcer = new Announcer({
      url: this.k.tracker,
      log: this.d.log,
      state: () => ({
        port: this.d.ourPort ?? 0,
        progress: this.n === 0 ? 1 : this.s.durable.count / this.n,
        blocks: { blockSize: this.blockSize, bitfield: this.s.durable },
      }),
      onPeers: (r) => {
        const fresh = r.peers.map((p) => peerKey(p.ip, p.port)).filter((a) => !this.peers.has(a));
        for (const p of r.peers) this.addTrackerPeer(p);
        // Tracker peers are remembered too: a resume after the tracker is gone still knows them.
        this.remember(fresh.map((addr) => ({ addr, source: 'tracker' })));
        this.wake?.();
      },
      onError: (err) => this.d.emit({ event: 'warning', id: this.id, code: err.code, message: err.message }),
    });
    this.announcer.start();
  }

  private remember(peers: readonly { addr: string; source: string }[]): void {
    try {
      this.d.db.rememberPeers(this.id, peers);
    } catch (err) {
      this.fail(err);
    }
  }

  private addTrackerPeer(p: PeerInfo): void {
    const addr = peerKey(p.ip, p.port);
    if (this.d.ourPort !== undefined && p.port === this.d.ourPort && isLoopbackHost(p.ip)) return; // ourselves
    let held: Bitfield | undefined;
    if (p.blocks !== undefined && p.blocksize === this.blockSize) held = Bitfield.fromHex(p.blocks, this.n);
    else if (p.progress >= 1) held = Bitfield.full(this.n);
    const known = this.peers.get(addr);
    if (known !== undefined) {
      if (held !== undefined && known.banned === undefined) {
        this.availability.setPeer(addr, held);
        known.assumedHeld = false; // claimed now (its bitfield, or complete), by the tracker
        known.trackerClaimed = true;
      }
      return;
    }
    // A tracker peer short of complete that does not offer /blocks (an original 2015 peer, which serves only a
    // complete file) holds nothing we can ask for until the tracker says it is complete.
    this.addPeer(addr, 'tracker', held, undefined, () => new Bitfield(this.n));
  }

  /**
   * Learn of a peer; without a bitfield, ask its /blocks, and treat one that does not offer it as `unknown()` gives
   * (default complete: a plain HTTP server or a peer named by the user; the first request tells).
   */
  private addPeer(addr: string, source: string, held: Bitfield | undefined, signal: AbortSignal | undefined, unknown = (): Bitfield => Bitfield.full(this.n)): void {
    if (this.peers.has(addr) || this.peers.size >= this.d.limits.peersKnownMax) return;
    const stats = new PeerStats(addr, this.d.limits.peer);
    this.peers.set(addr, stats);
    this.d.emit({ event: 'peer', id: this.id, peer: addr, action: 'added', source });
    if (held !== undefined) {
      this.availability.setPeer(addr, held);
      return;
    }
    const ask = AbortSignal.any([AbortSignal.timeout(this.d.limits.peer.minDeadlineMs), ...(signal ? [signal] : [])]);
    const assume = (): Bitfield => {
      const bf = unknown();
      stats.assumedHeld = bf.count > 0;
      return bf;
    };
    this.d.client
      .fetchBitfield(addr, this.k.swarmId, this.blockSize, this.n, ask)
      .catch(() => undefined) // unreachable now: as if it did not offer /blocks; the first request tells
      .then((bf) => {
        if (stats.banned === undefined) {
          if (bf !== undefined) this.availability.setPeer(addr, bf);
          // What the tracker said it holds meanwhile stands over an assumption.
          else if (!stats.trackerClaimed) this.availability.setPeer(addr, assume());
        }
        this.wake?.();
      })
      .catch((err: unknown) => this.fail(err));
  }

  /** Hand out requests: each usable peer, fastest first, gets requests up to its slots while the queue has room. */
  private schedule(signal: AbortSignal): void {
    if (this.stopping || signal.aborted) return;
    const now = performance.now();
    const q = this.d.queue;
    const slab = this.d.slab;
    const room = (): boolean => q.size === 0 && q.pending < q.concurrency && slab.canAcquire(this.blockSize);
    const order = [...this.peers.values()]
      .filter((p) => p.usable(now) && this.availability.held(p.addr) !== undefined)
      .sort((a, b) => b.bytesPerSecond - a.bytesPerSecond);
    let best: number | undefined;
    for (const p of this.peers.values()) if (p.bytesPerMs !== undefined && (best === undefined || p.bytesPerMs > best)) best = p.bytesPerMs;
    let progress = true;
    while (progress && room()) {
      progress = false;
      for (const p of order) {
        if (!room()) break;
        // Slots from the bytes this peer's requests carry: one block from a single-block peer, else what its
        // requests have been (a run of up to a slot).
        const bytes = p.multiBlock === false ? this.blockSize : (p.requestBytes ?? slab.slotBytes);
        if (p.inFlight >= p.slots(bytes, now)) continue;
        const i = this.pick(p.addr);
        if (i === undefined) continue;
        const run = this.runFrom(i, p);
        if (!slab.canAcquire(this.bufferBytes(run, p))) continue;
        this.request(run, p, best);
        progress = true;
      }
    }
  }

  /**
   * Buffer space a request for `run` takes: a whole slot, except a block from a peer that takes only single blocks,
   * which gets a piece of a slot its own size. (Pieces for the odd single block asked of a multi-block peer cost
   * whole slots for its next runs: measured ~10% more CPU per GiB from 4 HTTP mirrors.)
   */
  private bufferBytes(run: number[], peer: PeerStats): number {
    return run.length === 1 && peer.multiBlock === false ? this.blockSize : this.d.slab.slotBytes;
  }

  private pick(peer: string): number | undefined {
    return pickBlock(
      peer,
      {
        availability: this.availability,
        waiting: this.waiting,
        inFlight: this.inFlight,
        remaining: this.n - this.written.count - this.writing.size,
        isNeeded: (i) => !this.written.has(i) && !this.writing.has(i),
        countsAsCopy: (p) => (this.peers.get(p)?.blocksOk ?? 0) > 0,
      },
      { endgameBlocks: this.d.limits.endgameBlocks, endgameCopies: this.d.limits.endgameCopies, random: this.random, lowFirst: true },
    );
  }

  /**
   * The blocks to ask `peer` for, starting at the picked block `i`: with a peer that takes multi-block ranges
   * (kfetch seeders, plain HTTP servers), the waiting blocks after `i` that it holds, up to one slot's worth —
   * one request and one worker task instead of several. Duplicates in the endgame stay single blocks.
   */
  private runFrom(i: number, peer: PeerStats): number[] {
    const run = [i];
    if (peer.multiBlock === false || !this.waiting.has(i)) return run;
    const held = this.availability.held(peer.addr)!;
    const max = Math.max(1, Math.floor(this.d.slab.slotBytes / this.blockSize));
    for (let j = i + 1; j < this.n && run.length < max && this.waiting.has(j) && held.has(j); j++) run.push(j);
    return run;
  }

  /** Ask `peer` for `run`; `swarmBytesPerMs` (the best rate seen) sets the deadline of an unmeasured peer. */
  private request(run: number[], peer: PeerStats, swarmBytesPerMs: number | undefined): void {
    const g = this.k.geometry(this.blockSize);
    const first = g.range(run[0]!).first;
    const last = g.range(run[run.length - 1]!).last;
    const len = last - first + 1;
    const ctrl = new AbortController();
    this.single.set(ctrl, run.length === 1);
    for (const i of run) {
      let flying = this.inFlight.get(i);
      if (flying === undefined) this.inFlight.set(i, (flying = new Set()));
      flying.add(peer.addr);
      this.waiting.remove(i);
      let ctrls = this.controllers.get(i);
      if (ctrls === undefined) this.controllers.set(i, (ctrls = new Set()));
      ctrls.add(ctrl);
    }
    peer.inFlight++;
    const slot = this.d.slab.acquire(this.bufferBytes(run, peer))!;
    const deadline = Math.ceil(peer.deadlineMs(len, swarmBytesPerMs));
    this.d.queue
      .add(async () => {
        // One controller per request: the deadline and a session stop abort it (abortAll), another copy too.
        const timer = setTimeout(() => ctrl.abort(new DOMException('deadline', 'TimeoutError')), deadline);
        const t = performance.now();
        try {
          await this.d.client.fetchRange(peer.addr, this.k.swarmId, first, last, slot.view, ctrl.signal);
        } finally {
          clearTimeout(timer);
        }
        this.received += len;
        this.lastProgressAt = performance.now();
        const done = performance.now();
        peer.success(len, done - t, done);
        await this.store(run, slot, peer, ctrl);
      })
      .catch((err: unknown) => this.requestFailed(run, peer, err, ctrl))
      .finally(() => {
        for (const i of run) {
          const flying = this.inFlight.get(i);
          flying?.delete(peer.addr);
          if (flying === undefined || flying.size === 0) {
            this.inFlight.delete(i);
            // Not written after all (failed, bad, aborted): it waits for another peer.
            if (!this.written.has(i) && !this.writing.has(i)) this.waiting.add(i, this.availability.count(i));
          }
          const ctrls = this.controllers.get(i);
          ctrls?.delete(ctrl);
          if (ctrls !== undefined && ctrls.size === 0) this.controllers.delete(i);
        }
        this.single.delete(ctrl);
        peer.inFlight--;
        this.d.slab.release(slot);
        this.wake?.();
      });
  }

  /**
   * Verify and write fetched blocks in a worker. The first verified copy of a block wins: other single-block
   * requests for it are aborted (a multi-block request elsewhere is left to finish; its copy is skipped).
   */
  private async store(run: number[], slot: Slot, peer: PeerStats, own: AbortController): Promise<void> {
    if (this.stopping) return;
    const g = this.k.geometry(this.blockSize);
    // Only blocks nobody has written or is writing; the rest of the slot is skipped.
    const mine: { i: number; at: number }[] = [];
    let at = slot.byteOffset;
    for (const i of run) {
      if (!this.written.has(i) && !this.writing.has(i)) mine.push({ i, at });
      at += g.size(i);
    }
    if (mine.length === 0) return;
    for (const { i } of mine) {
      this.writing.add(i);
      for (const c of this.controllers.get(i) ?? []) if (c !== own && this.single.get(c) === true) c.abort(new Error('another copy arrived'));
    }
    try {
      crashPoint('before-write');
      // Consecutive pieces of the slot go to the worker as separate tasks when a skipped block splits them.
      const groups: { i: number; at: number }[][] = [];
      for (const m of mine) {
        const prev = groups[groups.length - 1];
        const tail = prev?.[prev.length - 1];
        if (prev !== undefined && tail !== undefined && tail.i === m.i - 1) prev.push(m);
        else groups.push([m]);
      }
      for (const grp of groups) await this.verifyAndWrite(grp, slot, peer);
    } finally {
      for (const { i } of mine) this.writing.delete(i);
    }
  }

  private async verifyAndWrite(grp: { i: number; at: number }[], slot: Slot, peer: PeerStats): Promise<void> {
    const g = this.k.geometry(this.blockSize);
    let r: Awaited<ReturnType<HashPool['verifyWrite']>>;
    try {
      r = await this.d.workers.verifyWrite({
        kind: 'verify-write',
        fd: this.s.dataFile.fd,
        shared: slot.shared,
        byteOffset: grp[0]!.at,
        blocks: grp.map(({ i }) => ({ offset: g.start(i), length: g.size(i), expectedMd5: this.k.blockHash(this.blockSize, i) })),
        mtimeSec: this.s.mtimeSec,
        ...(crashArmed('mid-write') ? { crashMidWrite: true } : {}),
      });
      this.workerFailures = 0;
    } catch (err) {
      // A crashed worker (piscina replaces the thread): the blocks are simply not written and are fetched again.
      // Only repeated failures end the session.
      if (isKfetchError(err) && err.code === 'KF_E_WORKER' && ++this.workerFailures < MAX_WORKER_FAILURES) {
        this.d.emit({ event: 'warning', id: this.id, code: err.code, message: err.message, block: grp[0]!.i });
        return;
      }
      throw err;
    }
    crashPoint('mid-write'); // counts hits so the n-th write is the one armed above
    r.blocks.forEach((o, k) => {
      const i = grp[k]!.i;
      if (o.status === 'written') {
        this.written.set(i);
        this.checkpointer.written(i, peer.addr);
      } else if (o.status === 'bad') {
        this.banForHash(peer, i, o.actualMd5);
      }
    });
    this.prefix.advance();
    if (r.io !== undefined) {
      throw fromFsError(Object.assign(new Error(r.io.message), { code: r.io.code }), this.s.dataFile.path, `writing block ${grp[0]!.i}`);
    }
  }

  private banForHash(peer: PeerStats, i: number, actual: string): void {
    const reason = `block ${i} failed its MD5 check`;
    const first = peer.banned === undefined;
    peer.ban(reason);
    this.availability.removePeer(peer.addr);
    try {
      this.d.db.recordBadBlock(this.id, { idx: i, peer: peer.addr, expected: this.k.blockHash(this.blockSize, i), actual });
      if (first) this.d.db.banPeer(this.id, peer.addr, reason);
    } catch (err) {
      this.fail(err);
    }
    if (!first) return; // more bad blocks that were already in flight: evidence recorded, one ban
    this.d.log.warn({ peer: peer.addr, block: i, code: 'KF_E_PEER_HASH_MISMATCH' }, `peer banned: ${reason}`);
    this.d.emit({ event: 'peer', id: this.id, peer: peer.addr, action: 'banned', reason, code: 'KF_E_PEER_HASH_MISMATCH' });
  }

  private requestFailed(run: number[], peer: PeerStats, err: unknown, ctrl: AbortController): void {
    const i = run[0]!;
    const reason: unknown = ctrl.signal.reason;
    const deadline = reason instanceof DOMException && reason.name === 'TimeoutError';
    // We cancelled it (another copy won, or we are stopping): not the peer's fault. A missed deadline is.
    if (this.stopping || (ctrl.signal.aborted && !deadline)) return;
    if (!isKfetchError(err)) {
      this.fail(err);
      return;
    }
    if (err.code === 'KF_E_DISK_FULL' || err.code === 'KF_E_IO' || err.code === 'KF_E_WORKER' || err.code.startsWith('KF_E_STATE')) {
      this.fail(err);
      return;
    }
    // A 206 whose own head announces fewer bytes than asked: the peer (a plain HTTP server with a shorter file, say)
    // holds only part of the range. Like a 404/416 it is an answer about what it has, not a broken connection.
    const partial = err.code === 'KF_E_PEER_SHORT' && typeof err.detail?.announcedBytes === 'number';
    if ((err.code === 'KF_E_PEER_LIED' || partial) && run.length > 1) {
      // An original peer (a headerless 404 for anything but one block; a strict one 416) or a partial one: single
      // blocks from now on.
      peer.multiBlock = false;
    } else if (err.code === 'KF_E_PEER_LIED' || partial) {
      // Not there after all. A strike only if it (or the tracker for it) said it was: a peer merely assumed to
      // hold everything did not lie.
      this.availability.dropBlock(peer.addr, i);
      if (!peer.assumedHeld) peer.strikes++;
      else if (peer.blocksOk === 0 && ++peer.notHere >= NOT_HERE_LIMIT) {
        // Assumed to hold everything, yet it has served nothing (a web server without the file, an original still
        // downloading): it holds nothing until a bitfield or the tracker says otherwise — not one request per block.
        peer.assumedHeld = false;
        this.availability.setPeer(peer.addr, new Bitfield(this.n));
        const reason = `answered "not here" ${peer.notHere} times and served no block`;
        this.d.emit({ event: 'peer', id: this.id, peer: peer.addr, action: 'dropped', reason, code: err.code });
      }
    } else {
      peer.failure(performance.now(), this.random);
      if (peer.banned !== undefined) {
        this.availability.removePeer(peer.addr);
        this.d.emit({ event: 'peer', id: this.id, peer: peer.addr, action: 'dropped', reason: peer.banned, code: err.code });
      }
    }
    this.d.log.debug({ peer: peer.addr, block: i, code: err.code }, err.message);
    this.d.emit({ event: 'warning', id: this.id, code: err.code, message: err.message, peer: peer.addr, block: i });
  }

  private fail(err: unknown): void {
    if (this.fatal !== undefined) return;
    this.fatal = isKfetchError(err) ? err : fromFsError(err, this.s.dataFile.path, 'download failed');
    this.wake?.();
  }

  private abortAll(): void {
    for (const set of this.controllers.values()) for (const c of set) c.abort(new Error('stopping'));
  }

  /** Wait (bounded) for requests and writes of this session to settle. */
  private async drain(): Promise<void> {
    const deadline = performance.now() + 10_000;
    while ((this.inFlight.size > 0 || this.writing.size > 0) && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private tick(): void {
    this.emitProgress();
    if (++this.ticks % 10 === 0 && this.d.log.isLevelEnabled('debug')) {
      const m = process.memoryUsage();
      this.d.log.debug({ rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers }, 'memory');
    }
    const usable = [...this.peers.values()].some((p) => p.banned === undefined);
    const stalledMs = performance.now() - this.lastProgressAt;
    if (this.d.limits.stallTimeoutMs > 0 && stalledMs > this.d.limits.stallTimeoutMs) {
      this.fail(
        new KfetchError(
          'KF_E_NO_PEERS',
          usable
            ? `no block arrived for ${Math.round(stalledMs / 1000)} s; peers known but not serving (resume later with kfetch resume)`
            : `no usable peer for ${Math.round(stalledMs / 1000)} s (resume later with kfetch resume)`,
          { file: this.s.dataFile.path },
        ),
      );
    }
    this.wake?.(); // peers whose backoff ended can take requests again
  }

  private emitProgress(): void {
    const secs = Math.max(1e-3, (performance.now() - this.startedAt) / 1000);
    this.d.emit({
      event: 'progress', id: this.id, received: this.received, verified: this.bytesOf(this.written),
      durable: this.bytesOf(this.s.durable), size: this.s.row.filesize,
      peers: [...this.peers.values()].filter((p) => p.banned === undefined).length,
      bytesPerSecond: this.received / secs,
    });
  }

  private readonly startedAt = performance.now();

  private bytesOf(bf: Bitfield): number {
    if (this.n === 0) return 0;
    const full = bf.count * this.blockSize;
    const lastShort = bf.has(this.n - 1) ? this.blockSize - this.k.geometry(this.blockSize).lastSize : 0;
    return full - lastShort;
  }

  /**
   * The whole-file SHA-256. In the first round the prefix hasher has hashed the blocks verified so far and only the
   * rest is read now; when it cannot give a digest, in later rounds, and to confirm a mismatch, a full pass over the
   * file runs in a worker, so the verdict is always that of the bytes on disk. On a mismatch (blocks trusted from a
   * checkpoint can have been changed behind kfetch's back with their mtime restored) every block is re-hashed once:
   * bad ones become missing again and the download goes on (returns false). Only when every block matches its MD5
   * and the file still does not is it KF_E_FILE_HASH_MISMATCH: the .kascade contradicts itself.
   */
  private async finalCheck(signal: AbortSignal, round: number): Promise<boolean> {
    this.d.db.setStatus(this.id, 'verifying');
    crashPoint('during-final-hash');
    const size = this.s.row.filesize;
    // Later rounds follow a repair: blocks were re-written after the prefix hash read them. A prefix that lags far
    // behind (a resumed, already complete file) is left to the worker's full pass, which is faster.
    const usePrefix = round === 0 && this.prefix.worthFinishing;
    if (!usePrefix) await this.prefix.stop();
    this.d.emit({ event: 'verify', id: this.id, phase: 'file', done: usePrefix ? this.prefix.hashed : 0, total: size });
    let r = usePrefix ? await this.prefix.finish(signal) : undefined;
    if (r === undefined || r.hex !== this.s.row.filehash) {
      r = await this.d.workers.sha256File({ kind: 'sha256-file', fd: this.s.dataFile.fd, size }, signal);
    }
    this.d.emit({ event: 'verify', id: this.id, phase: 'file', done: r.read, total: size });
    if (r.hex === this.s.row.filehash) return true;
    const mismatch = new KfetchError(
      'KF_E_FILE_HASH_MISMATCH',
      `every block matches its MD5 but the file's SHA-256 is ${r.hex}, not ${this.s.row.filehash}: the .kascade contradicts itself`,
      { file: this.s.dataFile.path },
    );
    if (round > 0) throw mismatch;
    await this.prefix.invalidate(); // blocks found bad are written again below what it hashed
    this.d.emit({ event: 'verify', id: this.id, phase: 'blocks', done: 0, total: size });
    const good = await verifyFile({
      kascade: this.k,
      blockSize: this.blockSize,
      fd: this.s.dataFile.fd,
      pool: this.d.workers,
      signal,
      onProgress: (done, total) => this.d.emit({ event: 'verify', id: this.id, phase: 'blocks', done, total }),
    });
    const bad: number[] = [];
    for (let i = 0; i < this.n; i++) {
      if (good.has(i)) continue;
      bad.push(i);
      this.written.set(i, false);
      this.waiting.add(i, this.availability.count(i));
      this.s.durable.set(i, false);
      this.served.markMissing(i);
    }
    if (bad.length === 0) throw mismatch;
    this.d.db.checkpoint(this.id, {
      complete: this.s.durable, blocks: [], bytesFetched: this.s.row.bytesFetched + this.received,
      ...dataFileFacts(this.s.dataFile, this.s.mtimeSec * 1000),
    });
    this.d.db.setStatus(this.id, 'downloading');
    this.d.emit({
      event: 'warning', id: this.id, code: 'KF_E_FILE_HASH_MISMATCH',
      message: `the file hash did not match; ${bad.length} block(s) changed on disk (first: ${bad[0]}) and are fetched again`,
    });
    return false;
  }
}
